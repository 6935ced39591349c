/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-test-secret.h: assertions the secret store tests share (file, DPAPI and Secret Service
 * stores alike). Header-only, so that the Windows build of test-secret needs nothing else. */
#pragma once

#include "ph-secret.h"

static inline void
save_ok (PhSecretStore *store, const char *upstream, const char *username, const char *password)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (ph_secret_store_save (store, upstream, username, password, &error));
  g_assert_no_error (error);
}

/* Asserts that @username at @upstream has @expected, or nothing when @expected is NULL. */
static inline void
assert_lookup (PhSecretStore *store, const char *upstream, const char *username,
               const char *expected)
{
  g_autoptr (GError) error = NULL;
  char *password = (char *) "untouched";

  g_assert_true (ph_secret_store_lookup (store, upstream, username, &password, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (password, ==, expected);
  ph_secret_free (password);
}
