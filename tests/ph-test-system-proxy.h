/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-test-system-proxy.h: assertions the system-proxy tests share (GNOME and KDE on Linux,
 * WinINet on Windows). Header-only, like ph-test-secret.h. */
#pragma once

#include "ph-system-proxy.h"

#include <glib.h>

static inline void
enable_ok (PhSystemProxy *sp, const char *host, guint port, const char *const *bypass)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (ph_system_proxy_enable (sp, host, port, bypass, &error));
  g_assert_no_error (error);
  g_assert_true (ph_system_proxy_is_enabled (sp));
}

static inline void
enable_pac_ok (PhSystemProxy *sp, const char *url, const char *const *bypass)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (ph_system_proxy_enable_pac (sp, url, bypass, &error));
  g_assert_no_error (error);
  g_assert_true (ph_system_proxy_is_enabled (sp));
}

/* The journal records the mode Pinhole set last. */
static inline void
assert_journal_mode (const char *journal, const char *mode)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) error = NULL;
  g_autofree char *value = NULL;

  g_assert_true (g_key_file_load_from_file (kf, journal, G_KEY_FILE_NONE, &error));
  g_assert_no_error (error);
  value = g_key_file_get_string (kf, "journal", "mode", NULL);
  g_assert_cmpstr (value, ==, mode);
}

static inline void
disable_ok (PhSystemProxy *sp)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (ph_system_proxy_disable (sp, &error));
  g_assert_no_error (error);
  g_assert_false (ph_system_proxy_is_enabled (sp));
}

/* A new shim on @journal recovers (restoring when @expect_restored) and leaves no journal. */
static inline void
recover_ok (const char *journal, gboolean expect_restored)
{
  g_autoptr (PhSystemProxy) sp = ph_system_proxy_new (journal);
  g_autoptr (GError) error = NULL;
  gboolean restored = !expect_restored;

  g_assert_true (ph_system_proxy_recover (sp, &restored, &error));
  g_assert_no_error (error);
  g_assert_cmpint (restored, ==, expect_restored);
  g_assert_false (ph_system_proxy_is_enabled (sp));
  g_assert_false (g_file_test (journal, G_FILE_TEST_EXISTS));
}
