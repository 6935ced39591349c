/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-proxy.h: the system proxy follows the tunnel: pointed at the agent's listener while
 * the tunnel is switched on (when the preferences ask for it), and put back otherwise: when
 * the tunnel goes off or the agent goes away, on quit, at the session's end, at exit, and at
 * the next start after a crash (from the journal platform/ph-system-proxy.c keeps). */
#pragma once

#include <gio/gio.h>

#include "ph-agent1-generated.h"
#include "ph-tray-prefs.h"

G_BEGIN_DECLS

typedef struct _PhTrayProxy PhTrayProxy;

/* Puts back what a previous run left set, and puts back what this one sets if the process
 * exits without ph_tray_proxy_free() (GTK exits when the display goes at the session's end). */
PhTrayProxy *ph_tray_proxy_new (void);
void ph_tray_proxy_free (PhTrayProxy *proxy);

/* Sets the system proxy to @agent's first listener while its tunnel is enabled (even in error:
 * the agent then answers with an explanation), and @prefs says so; else puts it back. With the
 * agent's system-proxy.mode=pac, to its PAC file (http://ADDRESS/proxy.pac of its first
 * loopback listener) rather than to the listener itself. @agent: NULL while there is none. */
void ph_tray_proxy_follow (PhTrayProxy *proxy, PhAgent1 *agent, PhTrayPrefs *prefs);
/* The system proxy's exception list for the agent's route.direct (@direct, its text; NULL for
 * none): localhost and the loopback networks, then each rule the desktop can say without
 * sending direct more than the agent would (".suffix", addresses, CIDRs); plain names,
 * "*.suffix" and "<local>" are left to the agent, which sends them direct itself. */
GStrv ph_tray_proxy_desktop_list (const char *direct);
/* Puts the system proxy back now, if it is set. */
void ph_tray_proxy_restore (PhTrayProxy *proxy);
/* The session ends: puts it back, and from now on leaves it alone. */
void ph_tray_proxy_end_session (PhTrayProxy *proxy);

/* --restore-proxy, with no tray running (the uninstaller runs it): puts back what a previous
 * run left set and says what it did; the exit code. */
int ph_tray_proxy_restore_left (void);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTrayProxy, ph_tray_proxy_free)

G_END_DECLS
