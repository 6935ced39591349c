/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-test-util.h: helpers several test binaries share: a real gnome-keyring-daemon (Secret
 * Service) on the test's session bus, and removing a temp tree. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PH_TEST_KEYRING_PASSWORD "pinhole-test-keyring"

/* Starts gnome-keyring-daemon with HOME and the XDG directories under @root and a login
 * keyring unlocked by a password on its stdin, the way a PAM login does; waits until it owns
 * org.freedesktop.secrets on the session bus. NULL with a message in @error if it did not. */
#ifdef G_OS_UNIX
GSubprocess *ph_test_keyring_start (const char *root, GError **error);
/* The same; without @login_keyring no password is given, so there is no login keyring (nor any
 * other collection on disk), as in a session that PAM did not unlock: an SSH login, a bare
 * test bus. */
GSubprocess *ph_test_keyring_start_full (const char *root, gboolean login_keyring, GError **error);
void ph_test_keyring_stop (GSubprocess *daemon);
#endif

/* Removes @path and everything below it (not following links). */
void ph_test_remove_tree (const char *path);

G_END_DECLS
