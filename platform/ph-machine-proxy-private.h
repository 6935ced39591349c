/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-machine-proxy-private.h: what each system's machine-proxy file (ph-machine-proxy-linux.c,
 * ph-machine-proxy-win32.c) shares through the portable ph-machine-proxy.c: the names of every
 * system's consumers, the journal's file (a key file written durably before any change, its
 * owner checked by the platform's file), and WinHTTP's stored setting read back. Not for use
 * outside platform/ (and its unit test). */
#pragma once

#include "ph-machine-proxy.h"

G_BEGIN_DECLS

#define PH_MACHINE_JOURNAL_GROUP "journal"
#define PH_MACHINE_JOURNAL_VERSION 1

/* @consumers (names of [system-proxy] machine=) without those of another system ("winhttp" on
 * Linux, "environment" on Windows: one configuration serves both). NULL and an error for a name
 * that is no system's consumer. */
GStrv ph_machine_proxy_this_system (const char *const *consumers, GError **error);

/* Adds to @all (aa{sv}) a row for each name of @consumers that is another system's consumer:
 * configured, not applied, no files, note "other-system". */
void ph_machine_proxy_add_other_systems (GVariantBuilder *all, const char *const *consumers);

/* The journal at @path: *@journal NULL when there is none. Fails when it cannot be read, is
 * not this version, or (PH_ERROR_PERMISSION_DENIED) when ph_machine_journal_check_owner()
 * refuses it. */
gboolean ph_machine_journal_load (const char *path, GKeyFile **journal, GError **error);
/* At start: the journal a previous run left (*journal NULL when there is none). One that cannot
 * be read is moved aside to PATH.corrupt (unless it is not ours) and the error says so. */
gboolean ph_machine_journal_load_left (const char *path, GKeyFile **journal, GError **error);
/* Implemented by each system's file: FALSE (PH_ERROR_PERMISSION_DENIED) when the journal at
 * @path, which says what to write to the machine's settings, was not written by this process's
 * user (or, on Windows, by the administrators or the system). TRUE when it is not there. */
gboolean ph_machine_journal_check_owner (const char *path, GError **error);
/* On disk, durably (its directory made), before the caller changes anything. */
gboolean ph_machine_journal_save (const char *path, GKeyFile *journal, GError **error);

/* Journal values are base64: a file's or a registry value's exact bytes. */
char *ph_machine_journal_encode (const void *data, gsize len);
/* @text decoded, NUL-terminated (*@len without it). */
char *ph_machine_journal_decode (const char *text, gsize *len);
/* Adds @value to the string list @key of @group unless it is there. */
void ph_machine_journal_list_add (GKeyFile *journal, const char *group, const char *key,
                                  const char *value);
/* Every value of the list @key of @group, decoded. */
GStrv ph_machine_journal_list_decoded (GKeyFile *journal, const char *group, const char *key);

/* The registry value WinHttpSettings as WinHttpSetDefaultProxyConfiguration and netsh write it
 * (a DWORD version: 0x28 on Windows, 0x18 under Wine; a DWORD counter; DWORD flags, 2 when a
 * proxy is named; then the proxy and the bypass list, each a DWORD length and that many bytes):
 * TRUE with *@proxy and *@bypass (NULL when none is named: direct) when @data is one. */
gboolean ph_winhttp_settings_parse (const guint8 *data, gsize len, char **proxy, char **bypass);

G_END_DECLS
