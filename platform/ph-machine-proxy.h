/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-machine-proxy.h: the machine-wide proxy consumers the system service points at the agent
 * ([system-proxy] machine=): on Linux /etc/environment, systemd's DefaultEnvironment (drop-ins
 * and the running manager), an apt.conf.d file and a docker.service.d drop-in
 * (ph-machine-proxy-linux.c); on Windows WinHTTP's default proxy, both registry views
 * (ph-machine-proxy-win32.c). Like the desktop proxy (ph-system-proxy.h) a journal of what each
 * held is written before any change, and only what still holds Pinhole's value is put back.
 * The portable part (ph-machine-proxy.c) knows every system's consumers: another system's in
 * the list is skipped and shown as such, so one configuration serves both. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _PhMachineProxy PhMachineProxy;

/* The consumers this platform has, in the order they are applied ("environment", "systemd",
 * "apt", "docker" on Linux; "winhttp" on Windows). */
const char *const *ph_machine_proxy_consumers (void);

/* @journal_path: e.g. /var/lib/pinhole/machine-proxy.journal,
 * %ProgramData%\Pinhole\state\machine-proxy.journal. On Linux every path the consumers edit is
 * under the directory named by $PINHOLE_MACHINE_ROOT when it is set (tests); systemctl is then
 * run only when $PINHOLE_SYSTEMCTL names one (a stand-in), never the machine's. Nothing is read
 * or changed yet. */
PhMachineProxy *ph_machine_proxy_new (const char *journal_path);
void ph_machine_proxy_free (PhMachineProxy *mp);

/* When a journal is left from a run that did not restore (crash, kill -9), restores from it
 * (as restore() does) and removes it. *restored FALSE when there was none. */
gboolean ph_machine_proxy_recover (PhMachineProxy *mp, gboolean *restored, GError **error);

/* The no_proxy value for @direct (route.direct as written: names, ".suffix", "*.suffix",
 * addresses, CIDRs): "localhost,127.0.0.1,::1" and then what curl, wget and Go's net/http
 * accept of it, comma-separated ("*.suffix" as ".suffix", no brackets, "<local>" left out). */
char *ph_machine_proxy_no_proxy (const char *direct);

/* WinHTTP's bypass list for @direct (route.direct as written), ';'-separated:
 * "localhost;127.0.0.1;[::1]" and then each rule in the form WinHTTP matches (names and
 * "*.suffix" as they are, ".suffix" as "suffix;*.suffix", "<local>", IPv6 addresses in
 * brackets, IPv4 networks as "10.*"-style wildcards); an IPv6 network is left out (its requests
 * reach the agent, which sends them direct). Portable, for its unit test. */
char *ph_machine_proxy_winhttp_bypass (const char *direct);

/* Points each consumer of @consumers (names of ph_machine_proxy_consumers(); another system's
 * are skipped, a name that is no system's consumer fails) at http://127.0.0.1:@port, with
 * @direct (see no_proxy() and winhttp_bypass()) going direct. The journal (previous
 * content of each file, and what Pinhole writes) is on disk BEFORE any file changes. Consumers
 * applied before and no longer in @consumers are restored. Calling it again with the same
 * arguments changes nothing. A file that cannot be written undoes what was done and fails. */
gboolean ph_machine_proxy_apply (PhMachineProxy *mp, const char *const *consumers, guint port,
                                 const char *direct, GError **error);

/* Puts back every file (and the running manager's environment) that still holds Pinhole's
 * value; what someone changed meanwhile is left and logged. Removes the journal. TRUE when there
 * was nothing to do. On failure the journal stays for a later try. */
gboolean ph_machine_proxy_restore (PhMachineProxy *mp, GError **error);

/* TRUE while a journal says Pinhole's values may be in place. */
gboolean ph_machine_proxy_is_applied (PhMachineProxy *mp);

/* One a{sv} per consumer of this platform, then one per consumer of another system that
 * @consumers lists: "name" (s), "configured" (b, @consumers has it), "applied" (b, its files
 * hold Pinhole's values now), "points-at" (s, the proxy URL its files hold, "" when not
 * applied), "files" (as, the paths (registry values on Windows) it writes), "note" (s:
 * "changed" by someone else since, what the admin has to do, "other-system"; "" otherwise). */
GVariant *ph_machine_proxy_dup_status (PhMachineProxy *mp, const char *const *consumers);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhMachineProxy, ph_machine_proxy_free)

G_END_DECLS
