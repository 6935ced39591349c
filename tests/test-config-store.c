/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-config-store.c: unit tests for agent/service/ph-config-store.h: the layers in a temp dir
 * (system file, user file, managed.d), "changed" after an edit on disk, the edit path that
 * leaves the file alone when the result would not load, and problems reported as FILE:LINE. */
#include "ph-config-store.h"
#include "ph-error.h"
#include "ph-test-util.h"

#include <string.h>
#include <glib/gstdio.h>

#define WAIT_US (5 * G_USEC_PER_SEC)
/* Longer than the store waits for a file to settle. */
#define SETTLE_US (400 * 1000)

typedef struct
{
  char *dir;
  char *system_path, *user_path, *managed_dir;
  PhConfigStore *store;
  guint changed;
} Fixture;

static void
write_text (const char *path, const char *text)
{
  g_autoptr (GError) error = NULL;

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

static char *
read_text (const char *path)
{
  g_autoptr (GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

static char *
dropin_path (Fixture *f, const char *name)
{
  return g_build_filename (f->managed_dir, name, NULL);
}

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("pinhole-config-store-XXXXXX", &error);
  g_assert_no_error (error);
  f->system_path = g_build_filename (f->dir, "pinhole.conf", NULL);
  /* In a folder that does not exist yet: the first edit makes it. */
  f->user_path = g_build_filename (f->dir, "user", "pinhole.conf", NULL);
  f->managed_dir = g_build_filename (f->dir, "managed.d", NULL);
  g_assert_cmpint (g_mkdir (f->managed_dir, 0755), ==, 0);
  write_text (f->system_path, "# the system file\n"  /* 1 */
                              "[upstream]\n"         /* 2 */
                              "host=proxy.example\n" /* 3 */
                              "port=8443\n"          /* 4 */
                              "[tunnel]\n"           /* 5 */
                              "max-tunnels=5\n"      /* 6 */
                              "idle-timeout=30s\n"); /* 7 */
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_clear_object (&f->store);
  ph_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->system_path);
  g_free (f->user_path);
  g_free (f->managed_dir);
}

static void
changed_cb (PhConfigStore *store, gpointer data)
{
  Fixture *f = data;

  f->changed++;
}

/* A session agent's store: the user's file is the one edited. */
static void
store_start (Fixture *f, gboolean with_user)
{
  PhConfigStoreSetup setup = {
    .system_path = f->system_path,
    .user_path = with_user ? f->user_path : NULL,
    .managed_dir = f->managed_dir,
    .writable_path = with_user ? f->user_path : f->system_path,
  };

  f->store = ph_config_store_new (&setup);
  g_signal_connect (f->store, "changed", G_CALLBACK (changed_cb), f);
}

static PhConfig *
load_ok (Fixture *f)
{
  g_autoptr (GError) error = NULL;
  PhConfig *config = ph_config_store_load (f->store, &error);

  g_assert_no_error (error);
  g_assert_nonnull (config);
  return config;
}

/* ---- layers ---- */

/* Defaults, then the system file, the user's file and the drop-ins in name order, key by key;
 * what a drop-in sets is locked. */
static void
test_layers (Fixture *f, gconstpointer data)
{
  g_autofree char *user_dir = g_path_get_dirname (f->user_path);
  g_autofree char *a = dropin_path (f, "10-a.conf");
  g_autofree char *b = dropin_path (f, "20-b.conf");
  g_autofree char *ignored = dropin_path (f, "30-c.conf.bak");
  g_autoptr (PhConfig) config = NULL;

  g_assert_cmpint (g_mkdir (user_dir, 0755), ==, 0);
  write_text (f->user_path, "[tunnel]\nmax-tunnels=7\nidle-timeout=40s\n");
  write_text (a, "[tunnel]\nidle-timeout=50s\nhead-timeout=9s\n");
  write_text (b, "[tunnel]\nidle-timeout=60s\n");
  write_text (ignored, "[tunnel]\nidle-timeout=70s\n");
  store_start (f, TRUE);

  config = load_ok (f);
  g_assert_cmpstr (ph_config_get_host (config), ==, "proxy.example");   /* system */
  g_assert_cmpuint (ph_config_get_max_tunnels (config), ==, 7);         /* user over system */
  g_assert_cmpuint (ph_config_get_idle_timeout_ms (config), ==, 60000); /* the last drop-in */
  g_assert_cmpuint (ph_config_get_head_timeout_ms (config), ==, 9000);  /* the first drop-in */
  g_assert_cmpstr (ph_config_get_value (config, "upstream.port"), ==, "8443");
  g_assert_true (ph_config_is_locked (config, "tunnel.idle-timeout"));
  g_assert_true (ph_config_is_locked (config, "tunnel.head-timeout"));
  g_assert_false (ph_config_is_locked (config, "tunnel.max-tunnels"));
  g_assert_false (ph_config_is_locked (config, "upstream.host"));
  g_assert_cmpstr (ph_config_store_get_managed_dir (f->store), ==, f->managed_dir);
  g_assert_cmpstr (ph_config_store_get_writable_path (f->store), ==, f->user_path);
}

/* A missing file is an empty layer, unless the system file is required (standalone). */
static void
test_missing_system_file (Fixture *f, gconstpointer data)
{
  PhConfigStoreSetup setup = { .system_path = f->system_path, .system_required = TRUE };
  g_autoptr (GError) error = NULL;
  g_autoptr (PhConfig) config = NULL;

  g_assert_cmpint (g_unlink (f->system_path), ==, 0);
  store_start (f, TRUE);
  config = load_ok (f);
  g_assert_null (ph_config_get_host (config));
  g_assert_cmpstr (ph_config_get_unready_reason (config), !=, NULL);
  g_clear_object (&f->store);

  f->store = ph_config_store_new (&setup);
  g_assert_null (ph_config_store_load (f->store, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
  g_assert_nonnull (strstr (error->message, f->system_path));
}

/* ---- problems ---- */

typedef struct
{
  const char *name;
  const char *dropin; /* NULL: the problem is in the system file */
  const char *text;   /* appended to the system file, or the drop-in's whole text */
  guint line;
  const char *group_key; /* "[group] key" as reported */
} BadConfigCase;

static const BadConfigCase bad_config_cases[] = {
  { "bad-value", NULL, "head-timeout=soon\n", 8, "[tunnel] head-timeout" },
  { "bad-dropin", "20-bad.conf", "[tunnel]\n\nmax-tunnels=-1\n", 3, "[tunnel] max-tunnels" },
  { "unknown-key", NULL, "[log]\nlevel=info\nverbose=yes\n", 10, "[log] verbose" },
};

/* A configuration that does not load names the file, the line and the key. */
static void
test_bad_config (Fixture *f, gconstpointer data)
{
  const BadConfigCase *c = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *where = NULL;

  if (c->dropin != NULL)
    {
      path = dropin_path (f, c->dropin);
      write_text (path, c->text);
    }
  else
    {
      g_autofree char *text = read_text (f->system_path);
      g_autofree char *more = g_strconcat (text, c->text, NULL);

      path = g_strdup (f->system_path);
      write_text (path, more);
    }
  where = g_strdup_printf ("%s:%u: %s: ", path, c->line, c->group_key);
  store_start (f, FALSE);
  g_assert_null (ph_config_store_load (f->store, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, where));
}

/* ---- edits ---- */

/* An edit lands in the writable file (made with its folder when missing), keeps the comments
 * around it, and an empty value removes the key so that the lower layer applies again. */
static void
test_set_value (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PhConfig) config = NULL;
  g_autofree char *text = NULL;
  g_autofree char *system_before = read_text (f->system_path);
  g_autofree char *system_after = NULL;

  store_start (f, TRUE);
  g_assert_true (ph_config_store_set_value (f->store, "tunnel.max-tunnels", "12", &error));
  g_assert_no_error (error);
  text = read_text (f->user_path);
  g_assert_nonnull (strstr (text, "max-tunnels=12"));
  config = load_ok (f);
  g_assert_cmpuint (ph_config_get_max_tunnels (config), ==, 12);
  system_after = read_text (f->system_path);
  g_assert_cmpstr (system_after, ==, system_before);

  /* The system file's own comment survives an edit of it. */
  g_clear_object (&f->store);
  store_start (f, FALSE);
  g_assert_true (ph_config_store_set_value (f->store, "tunnel.idle-timeout", "45s", &error));
  g_assert_no_error (error);
  g_clear_pointer (&text, g_free);
  text = read_text (f->system_path);
  g_assert_true (g_str_has_prefix (text, "# the system file\n"));
  g_assert_nonnull (strstr (text, "idle-timeout=45s"));
  g_assert_null (strstr (text, "idle-timeout=30s"));

  g_assert_true (ph_config_store_set_value (f->store, "tunnel.idle-timeout", "", &error));
  g_assert_no_error (error);
  g_clear_pointer (&config, ph_config_unref);
  config = load_ok (f);
  g_assert_cmpstr (ph_config_get_value (config, "tunnel.idle-timeout"), ==,
                   ph_config_get_default ("tunnel.idle-timeout"));
}

typedef struct
{
  const char *name;
  const char *key, *value;
  PhError code;
  const char *says; /* in the message */
} BadEditCase;

static const BadEditCase bad_edit_cases[] = {
  { "unknown-key", "tunnel.speed", "fast", PH_ERROR_INVALID_SETTING, "tunnel.speed" },
  { "unknown-key-unset", "tunnel.speed", "", PH_ERROR_INVALID_SETTING, "tunnel.speed" },
  { "bad-value", "tunnel.idle-timeout", "soon", PH_ERROR_INVALID_SETTING, "tunnel.idle-timeout" },
  { "two-lines", "upstream.host", "a.example\nport=1", PH_ERROR_INVALID_SETTING, "upstream.host" },
  /* Fine alone, but the whole configuration would not load: a LAN address needs allow=. */
  { "whole-invalid", "listener.address", "0.0.0.0:3128", PH_ERROR_INVALID_SETTING,
    "[listener] address" },
};

/* An edit that fails validation leaves the file byte for byte as it was. */
static void
test_set_value_invalid (Fixture *f, gconstpointer data)
{
  const BadEditCase *c = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *before = read_text (f->system_path);
  g_autofree char *after = NULL;

  store_start (f, FALSE);
  g_assert_false (ph_config_store_set_value (f->store, c->key, c->value, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_true (error->domain == PH_ERROR);
  g_assert_cmpint (error->code, ==, c->code);
  g_assert_nonnull (strstr (error->message, c->says));
  after = read_text (f->system_path);
  g_assert_cmpstr (after, ==, before);
}

/* ---- watching ---- */

static void
spin (gint64 us)
{
  gint64 deadline = g_get_monotonic_time () + us;

  while (g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
}

static gboolean
wait_changed (Fixture *f, guint count)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (f->changed < count && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  return f->changed >= count;
}

/* An edit on disk and a drop-in coming are each told once they settle; the next load has them.
 * Nothing is told before the store is asked to watch. */
static void
test_reload_on_change (Fixture *f, gconstpointer data)
{
  g_autofree char *dropin = dropin_path (f, "50-it.conf");
  g_autofree char *text = read_text (f->system_path);
  g_autofree char *edited = g_strconcat (text, "head-timeout=11s\n", NULL);
  g_autoptr (PhConfig) config = NULL;

  store_start (f, FALSE);
  write_text (f->system_path, edited);
  spin (2 * SETTLE_US);
  g_assert_cmpuint (f->changed, ==, 0);

  ph_config_store_watch (f->store);
  write_text (f->system_path, text);
  write_text (f->system_path, edited);
  g_assert_true (wait_changed (f, 1));
  config = load_ok (f);
  g_assert_cmpuint (ph_config_get_head_timeout_ms (config), ==, 11000);

  write_text (dropin, "[tunnel]\nmax-tunnels=3\n");
  g_assert_true (wait_changed (f, 2));
  g_clear_pointer (&config, ph_config_unref);
  config = load_ok (f);
  g_assert_cmpuint (ph_config_get_max_tunnels (config), ==, 3);
  g_assert_true (ph_config_is_locked (config, "tunnel.max-tunnels"));
}

#define ADD(path, func, data)                                                                      \
  g_test_add (path, Fixture, data, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  ADD ("/pinhole/config-store/layers", test_layers, NULL);
  ADD ("/pinhole/config-store/missing-system-file", test_missing_system_file, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (bad_config_cases); i++)
    {
      g_autofree char *path
          = g_strdup_printf ("/pinhole/config-store/bad-config/%s", bad_config_cases[i].name);
      ADD (path, test_bad_config, &bad_config_cases[i]);
    }
  ADD ("/pinhole/config-store/set-value", test_set_value, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (bad_edit_cases); i++)
    {
      g_autofree char *path
          = g_strdup_printf ("/pinhole/config-store/set-value-invalid/%s", bad_edit_cases[i].name);
      ADD (path, test_set_value_invalid, &bad_edit_cases[i]);
    }
  ADD ("/pinhole/config-store/reload-on-change", test_reload_on_change, NULL);

  return g_test_run ();
}
