/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-machine-proxy.c: platform/ph-machine-proxy.h's file edits under a temporary root
 * ($PINHOLE_MACHINE_ROOT) and systemctl's stand-in (tests/machine-proxy-systemctl.sh): each
 * consumer's file pointed at the agent, then put back byte for byte; an admin's change meanwhile
 * left alone; a second apply and a crash (the journal read by a new object); a consumer dropped
 * from the list; Docker present (daemon-reload, never a restart); a write that fails; Windows'
 * consumer in the list (skipped, shown as another system's). Windows' own parts that are
 * portable: WinHTTP's bypass list and its registry value read back (the registry itself is
 * tests/windows/test-machine-proxy.sh's, under Wine). */
#include "ph-error.h"
#include "ph-machine-proxy-private.h"
#include "ph-win-bypass.h"
#include "ph-test-util.h"

#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

/* Someone's /etc/environment: a comment, a proxy line of their own, no final newline. */
#define ENVIRONMENT                                                                                \
  "# system-wide environment\nPATH=\"/usr/local/bin:/usr/bin:/bin\"\n"                             \
  "http_proxy=http://old.example:8080\nLANG=C.UTF-8"
#define OTHER_APT "APT::Install-Recommends \"false\";\n"
#define URL "http://127.0.0.1:3128"
#define DIRECT ".corp.example, 10.0.0.0/8;[fd00::1] *.lan <local> intranet"
#define NO_PROXY "localhost,127.0.0.1,::1,.corp.example,10.0.0.0/8,fd00::1,.lan,intranet"

static const char *const all[] = { "environment", "systemd", "apt", "docker", NULL };

typedef struct
{
  char *root;    /* PINHOLE_MACHINE_ROOT */
  char *state;   /* the stand-in's directory */
  char *journal; /* in a directory that does not exist yet */
} Fixture;

static char *
at (Fixture *f, const char *path)
{
  return g_build_filename (f->root, path, NULL);
}

static void
put (Fixture *f, const char *path, const char *text)
{
  g_autofree char *full = at (f, path);
  g_autofree char *dir = g_path_get_dirname (full);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (full, text, -1, NULL));
}

/* The file's content, NULL when it is not there. */
static char *
get (Fixture *f, const char *path)
{
  g_autofree char *full = at (f, path);
  char *text = NULL;

  if (!g_file_get_contents (full, &text, NULL, NULL))
    return NULL;
  return text;
}

static gboolean
exists (Fixture *f, const char *path)
{
  g_autofree char *full = at (f, path);

  return g_file_test (full, G_FILE_TEST_EXISTS);
}

static char *
state_file (Fixture *f, const char *name)
{
  g_autofree char *path = g_build_filename (f->state, name, NULL);
  char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return g_strdup ("");
  return text;
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autofree char *standin
      = g_test_build_filename (G_TEST_DIST, "machine-proxy-systemctl.sh", NULL);
  g_autofree char *env = NULL;

  f->root = g_dir_make_tmp ("pinhole-machine-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  f->state = g_build_filename (f->root, "standin", NULL);
  g_assert_cmpint (g_mkdir (f->state, 0700), ==, 0);
  f->journal = g_build_filename (f->root, "var", "lib", "pinhole", "machine-proxy.journal", NULL);
  g_setenv ("PINHOLE_MACHINE_ROOT", f->root, TRUE);
  g_setenv ("PINHOLE_SYSTEMCTL", standin, TRUE);
  g_setenv ("PH_SYSTEMCTL_STATE", f->state, TRUE);
  /* The manager holds a proxy of someone else's and another variable. */
  env = g_build_filename (f->state, "manager.env", NULL);
  g_assert_true (
      g_file_set_contents (env, "LANG=C.UTF-8\nhttp_proxy=http://old.example:8080\n", -1, NULL));
  put (f, "/etc/environment", ENVIRONMENT);
  put (f, "/etc/apt/apt.conf.d/10recommends", OTHER_APT);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_unsetenv ("PINHOLE_MACHINE_ROOT");
  g_unsetenv ("PINHOLE_SYSTEMCTL");
  ph_test_remove_tree (f->root);
  g_free (f->root);
  g_free (f->state);
  g_free (f->journal);
}

/* The root's files as they are before any apply, for the byte-for-byte comparisons. */
static void
assert_original (Fixture *f)
{
  g_autofree char *environment = get (f, "/etc/environment");
  g_autofree char *apt = get (f, "/etc/apt/apt.conf.d/10recommends");
  g_autofree char *manager = state_file (f, "manager.env");

  g_assert_cmpstr (environment, ==, ENVIRONMENT);
  g_assert_cmpstr (apt, ==, OTHER_APT);
  g_assert_false (exists (f, "/etc/apt/apt.conf.d/80pinhole-proxy"));
  /* The directories apply() made are gone too. */
  g_assert_false (exists (f, "/etc/systemd"));
  g_assert_true (g_str_has_prefix (manager, "LANG=C.UTF-8\n"));
  g_assert_nonnull (strstr (manager, "http_proxy=http://old.example:8080\n"));
  g_assert_null (strstr (manager, "127.0.0.1"));
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
}

static void
assert_applied (Fixture *f, const char *url)
{
  g_autofree char *environment = get (f, "/etc/environment");
  g_autofree char *apt = get (f, "/etc/apt/apt.conf.d/80pinhole-proxy");
  g_autofree char *system = get (f, "/etc/systemd/system.conf.d/pinhole-proxy.conf");
  g_autofree char *user = get (f, "/etc/systemd/user.conf.d/pinhole-proxy.conf");
  g_autofree char *docker = get (f, "/etc/systemd/system/docker.service.d/pinhole-proxy.conf");
  g_autofree char *manager = state_file (f, "manager.env");
  g_autofree char *want_env = g_strdup_printf (
      "# system-wide environment\nPATH=\"/usr/local/bin:/usr/bin:/bin\"\n"
      "http_proxy=%s\nLANG=C.UTF-8\nhttps_proxy=%s\nno_proxy=" NO_PROXY "\nHTTP_PROXY=%s\n"
      "HTTPS_PROXY=%s\nNO_PROXY=" NO_PROXY "\n",
      url, url, url, url);
  g_autofree char *want_apt = g_strdup_printf (
      "Acquire::http::Proxy \"%s/\";\nAcquire::https::Proxy \"%s/\";\n", url, url);
  g_autofree char *want_manager = g_strdup_printf (
      "[Manager]\nDefaultEnvironment=\"http_proxy=%s\" \"https_proxy=%s\" "
      "\"no_proxy=" NO_PROXY "\" \"HTTP_PROXY=%s\" \"HTTPS_PROXY=%s\" \"NO_PROXY=" NO_PROXY "\"\n",
      url, url, url, url);
  g_autofree char *want_docker
      = g_strdup_printf ("[Service]\nEnvironment=\"HTTP_PROXY=%s\" \"HTTPS_PROXY=%s\" "
                         "\"NO_PROXY=" NO_PROXY "\"\n",
                         url, url);
  g_autofree char *manager_line = g_strdup_printf ("\nhttp_proxy=%s\n", url);

  /* Only the six lines changed; the comment, PATH and LANG are as they were. */
  g_assert_cmpstr (environment, ==, want_env);
  g_assert_true (g_str_has_prefix (apt, "// Written by Pinhole"));
  g_assert_true (g_str_has_suffix (apt, want_apt));
  g_assert_true (g_str_has_prefix (system, "# Written by Pinhole"));
  g_assert_true (g_str_has_suffix (system, want_manager));
  g_assert_cmpstr (user, ==, system);
  g_assert_true (g_str_has_suffix (docker, want_docker));
  g_assert_nonnull (strstr (manager, manager_line));
  g_assert_nonnull (strstr (manager, "\nNO_PROXY=" NO_PROXY "\n"));
  g_assert_true (g_file_test (f->journal, G_FILE_TEST_EXISTS));
}

static GVariant *
consumer_status (PhMachineProxy *mp, const char *name)
{
  g_autoptr (GVariant) status = ph_machine_proxy_dup_status (mp, all);
  GVariantIter iter;
  GVariant *one;

  g_variant_iter_init (&iter, status);
  while ((one = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *n = NULL;
      g_variant_lookup (one, "name", "&s", &n);
      if (g_strcmp0 (n, name) == 0)
        return one;
      g_variant_unref (one);
    }
  g_assert_not_reached ();
}

static void
test_no_proxy (void)
{
  g_autofree char *none = ph_machine_proxy_no_proxy (NULL);
  g_autofree char *some = ph_machine_proxy_no_proxy (DIRECT);

  g_assert_cmpstr (none, ==, "localhost,127.0.0.1,::1");
  g_assert_cmpstr (some, ==, NO_PROXY);
  g_assert_cmpstrv (ph_machine_proxy_consumers (), all);
}

/* route.direct in WinHTTP's bypass syntax: each rule exactly as the agent reads it. */
static void
test_winhttp_bypass (void)
{
  static const struct
  {
    const char *direct;
    const char *bypass;
  } cases[] = {
    { NULL, "localhost;127.0.0.1;[::1]" },
    { DIRECT, "localhost;127.0.0.1;[::1];corp.example;*.corp.example;10.*;[fd00::1];*.lan;"
              "<local>;intranet" },
    /* Case folded, repeats once, the loopback rules not twice. */
    { "Intranet.Corp, intranet.corp 127.0.0.1 ::1 <LOCAL>",
      "localhost;127.0.0.1;[::1];intranet.corp;<local>" },
    /* IPv4 networks as wildcards over their last partial byte. */
    { "192.168.1.0/24 192.0.2.7 198.51.100.1/32 10.1.2.5/30 192.168.0.0/16",
      "localhost;127.0.0.1;[::1];192.168.1.*;192.0.2.7;198.51.100.1;10.1.2.4;10.1.2.5;10.1.2.6;"
      "10.1.2.7;192.168.*" },
    { "172.16.0.0/12",
      "localhost;127.0.0.1;[::1];172.16.*;172.17.*;172.18.*;172.19.*;172.20.*;172.21.*;172.22.*;"
      "172.23.*;172.24.*;172.25.*;172.26.*;172.27.*;172.28.*;172.29.*;172.30.*;172.31.*" },
    /* No form: an IPv6 network, all of IPv4; an IPv6 address with /128 is the address. */
    { "fd00::/8 0.0.0.0/0 [2001:db8::1]/128", "localhost;127.0.0.1;[::1];[2001:db8::1]" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *bypass = ph_machine_proxy_winhttp_bypass (cases[i].direct);

      g_assert_cmpstr (bypass, ==, cases[i].bypass);
    }
}

/* ph-win-bypass.c, the one entry-to-pattern translation of WinINet's desktop list and WinHTTP's
 * route.direct: each kind of entry in both readings of a plain name. */
static void
test_win_bypass (void)
{
  static const struct
  {
    const char *entry;
    const char *exact;     /* PH_WIN_BYPASS_NAME_EXACT (route.direct); NULL: no form */
    const char *and_below; /* PH_WIN_BYPASS_NAME_AND_BELOW (the desktop list); NULL: no form */
  } cases[] = {
    { "intranet", "intranet", "intranet;*.intranet" },
    { "Corp.Example", "corp.example", "corp.example;*.corp.example" },
    { ".corp.example", "corp.example;*.corp.example", "corp.example;*.corp.example" },
    { "*.corp.example", "*.corp.example", "corp.example;*.corp.example" },
    { "<local>", "<local>", "<local>" },
    { "<-loopback>", "<-loopback>", "<-loopback>" },
    { "192.168.*", "192.168.*", "192.168.*" },
    { "192.0.2.7", "192.0.2.7", "192.0.2.7" },
    { "192.0.2.7/32", "192.0.2.7", "192.0.2.7" },
    { "10.0.0.0/8", "10.*", "10.*" },
    { "10.1.2.5/30", "10.1.2.4;10.1.2.5;10.1.2.6;10.1.2.7", "10.1.2.4;10.1.2.5;10.1.2.6;10.1.2.7" },
    { "192.168.128.0/23", "192.168.128.*;192.168.129.*", "192.168.128.*;192.168.129.*" },
    { "::1", "[::1]", "[::1]" },
    { "[FD00::1]", "[fd00::1]", "[fd00::1]" },
    { "2001:db8::1/128", "[2001:db8::1]", "[2001:db8::1]" },
    /* No form: an IPv6 network, all of IPv4 ("*" would take every name), bad prefixes, a name
     * with a slash or a colon, nothing. */
    { "fd00::/8", NULL, NULL },
    { "0.0.0.0/0", NULL, NULL },
    { "10.0.0.0/33", NULL, NULL },
    { "10.0.0.0/x", NULL, NULL },
    { "host/path", NULL, NULL },
    { "host:8080", NULL, NULL },
    { "", NULL, NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    for (guint reading = 0; reading < 2; reading++)
      {
        g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
        const char *want = reading == 0 ? cases[i].exact : cases[i].and_below;
        gboolean ok = ph_win_bypass_add (out, cases[i].entry,
                                         reading == 0 ? PH_WIN_BYPASS_NAME_EXACT
                                                      : PH_WIN_BYPASS_NAME_AND_BELOW);
        g_autofree char *got = NULL;

        g_ptr_array_add (out, NULL);
        got = g_strjoinv (";", (char **) out->pdata);
        g_test_message ("%s (%s): %s", cases[i].entry, reading == 0 ? "exact" : "and below",
                        ok ? got : "no form");
        g_assert_cmpint (ok, ==, want != NULL);
        g_assert_cmpstr (got, ==, want != NULL ? want : "");
      }
  /* Each pattern once, whichever entry brought it. */
  {
    g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);

    g_assert_true (ph_win_bypass_add (out, ".corp.example", PH_WIN_BYPASS_NAME_EXACT));
    g_assert_true (ph_win_bypass_add (out, "*.CORP.example", PH_WIN_BYPASS_NAME_EXACT));
    g_assert_true (ph_win_bypass_add (out, "corp.example", PH_WIN_BYPASS_NAME_AND_BELOW));
    g_assert_cmpuint (out->len, ==, 2);
  }
}

/* WinHttpSettings as Windows' netsh (version 0x28), Wine (0x18) and a direct setting store it. */
static void
test_winhttp_settings (void)
{
  static const guint8 windows[] = {
    0x28, 0,   0,   0,   0,   0,   0,   0,   3,   0,   0,   0,   14,  0,   0,   0,
    '1',  '2', '7', '.', '0', '.', '0', '.', '1', ':', '3', '1', '2', '8', 14,  0,
    0,    0,   '<', 'l', 'o', 'c', 'a', 'l', '>', ';', '*', '.', 'c', 'o', 'r', 'p',
  };
  static const guint8 wine_no_bypass[] = {
    0x18, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 6, 0, 0, 0, 'p', 'x', ':', '8', '0', '8', 0, 0, 0, 0,
  };
  static const guint8 direct[] = { 0x28, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
  /* A proxy length past the end. */
  static const guint8 truncated[] = { 0x28, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 99, 0, 0, 0, 'x' };
  char *proxy = NULL, *bypass = NULL;

  g_assert_true (ph_winhttp_settings_parse (windows, sizeof windows, &proxy, &bypass));
  g_assert_cmpstr (proxy, ==, "127.0.0.1:3128");
  g_assert_cmpstr (bypass, ==, "<local>;*.corp");
  g_clear_pointer (&proxy, g_free);
  g_clear_pointer (&bypass, g_free);
  g_assert_true (
      ph_winhttp_settings_parse (wine_no_bypass, sizeof wine_no_bypass, &proxy, &bypass));
  g_assert_cmpstr (proxy, ==, "px:808");
  g_assert_cmpstr (bypass, ==, "");
  g_clear_pointer (&proxy, g_free);
  g_clear_pointer (&bypass, g_free);
  g_assert_true (ph_winhttp_settings_parse (direct, sizeof direct, &proxy, &bypass));
  g_assert_null (proxy);
  g_assert_null (bypass);
  g_assert_false (ph_winhttp_settings_parse (truncated, sizeof truncated, &proxy, &bypass));
  g_assert_false (ph_winhttp_settings_parse (direct, 8, &proxy, &bypass));
  g_assert_false (ph_winhttp_settings_parse (NULL, 0, &proxy, &bypass));
}

/* One list for Linux and Windows: winhttp is skipped here and shown as Windows'; a list with
 * only Windows' consumer changes nothing; a word that is no system's still fails. */
static void
test_other_system (Fixture *f, gconstpointer data)
{
  g_autoptr (PhMachineProxy) mp = ph_machine_proxy_new (f->journal);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) status = NULL;
  g_autofree char *environment = NULL;
  const char *const shared[] = { "environment", "winhttp", NULL };
  const char *const windows_only[] = { "winhttp", NULL };
  const char *const bogus[] = { "winhttp", "snap", NULL };
  g_autofree const char **files = NULL;
  const char *name = NULL, *note = NULL;
  gboolean configured = FALSE, applied = TRUE;
  GVariantIter iter;
  GVariant *one, *last = NULL;

  g_assert_true (ph_machine_proxy_apply (mp, shared, 3128, DIRECT, &error));
  g_assert_no_error (error);
  environment = get (f, "/etc/environment");
  g_assert_nonnull (strstr (environment, "\nhttps_proxy=" URL "\n"));
  g_assert_false (exists (f, "/etc/apt/apt.conf.d/80pinhole-proxy"));

  status = ph_machine_proxy_dup_status (mp, shared);
  g_assert_cmpuint (g_variant_n_children (status), ==, 5);
  g_variant_iter_init (&iter, status);
  while ((one = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_clear_pointer (&last, g_variant_unref);
      last = one;
    }
  g_assert_true (g_variant_lookup (last, "name", "&s", &name));
  g_assert_cmpstr (name, ==, "winhttp");
  g_assert_true (g_variant_lookup (last, "configured", "b", &configured) && configured);
  g_assert_true (g_variant_lookup (last, "applied", "b", &applied));
  g_assert_false (applied);
  g_assert_true (g_variant_lookup (last, "note", "&s", &note));
  g_assert_cmpstr (note, ==, "other-system");
  g_assert_true (g_variant_lookup (last, "files", "^a&s", &files));
  g_assert_cmpuint (g_strv_length ((char **) files), ==, 0);
  g_variant_unref (last);

  /* Only Windows' left in the list: Linux's go back, nothing else is written. */
  g_assert_true (ph_machine_proxy_apply (mp, windows_only, 3128, DIRECT, &error));
  g_assert_no_error (error);
  g_assert_false (ph_machine_proxy_is_applied (mp));
  assert_original (f);
  g_assert_false (ph_machine_proxy_apply (mp, bogus, 3128, DIRECT, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING);
}

/* Every consumer applied, its status, and restored to the original bytes. */
static void
test_round_trip (Fixture *f, gconstpointer data)
{
  g_autoptr (PhMachineProxy) mp = ph_machine_proxy_new (f->journal);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) env_status = NULL;
  g_autoptr (GVariant) docker_status = NULL;
  g_autofree char *log = NULL;
  const char *points_at = NULL, *note = NULL;
  gboolean applied = FALSE;

  g_assert_false (ph_machine_proxy_is_applied (mp));
  g_assert_true (ph_machine_proxy_apply (mp, all, 3128, DIRECT, &error));
  g_assert_no_error (error);
  g_assert_true (ph_machine_proxy_is_applied (mp));
  assert_applied (f, URL);

  env_status = consumer_status (mp, "environment");
  g_assert_true (g_variant_lookup (env_status, "applied", "b", &applied) && applied);
  g_assert_true (g_variant_lookup (env_status, "points-at", "&s", &points_at));
  g_assert_cmpstr (points_at, ==, URL);
  docker_status = consumer_status (mp, "docker");
  g_assert_true (g_variant_lookup (docker_status, "note", "&s", &note));
  g_assert_cmpstr (note, ==, "no-docker");

  /* The same again changes nothing (no second set-environment). */
  g_assert_true (ph_machine_proxy_apply (mp, all, 3128, DIRECT, &error));
  log = state_file (f, "systemctl.log");
  g_assert_null (strstr (strstr (log, "set-environment") + 1, "set-environment"));
  /* No docker.service: no daemon-reload, and never a restart. */
  g_assert_null (strstr (log, "daemon-reload"));
  g_assert_null (strstr (log, "restart"));

  g_assert_true (ph_machine_proxy_restore (mp, &error));
  g_assert_no_error (error);
  g_assert_false (ph_machine_proxy_is_applied (mp));
  assert_original (f);
  /* The manager's variables went back (the old http_proxy set, the rest unset), then a
   * daemon-reload, so that a manager that re-read the drop-ins forgets them. */
  g_clear_pointer (&log, g_free);
  log = state_file (f, "systemctl.log");
  g_assert_nonnull (strstr (log, "set-environment http_proxy=http://old.example:8080\n"));
  g_assert_nonnull (strstr (log, "unset-environment https_proxy no_proxy HTTP_PROXY"));
  g_assert_true (g_str_has_suffix (log, "daemon-reload\n"));
  g_assert_null (strstr (log, "restart"));
  /* Restoring again: nothing to do. */
  g_assert_true (ph_machine_proxy_restore (mp, &error));
}

/* An admin's changes meanwhile stay; the rest goes back. */
static void
test_admin_changed (Fixture *f, gconstpointer data)
{
  g_autoptr (PhMachineProxy) mp = ph_machine_proxy_new (f->journal);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) apt_status = NULL;
  g_autofree char *environment = NULL;
  g_autofree char *changed = NULL;
  g_autofree char *apt = NULL;
  g_autofree char *manager = NULL;
  g_autofree char *env_path = at (f, "/etc/environment");
  g_autofree char *manager_path = g_build_filename (f->state, "manager.env", NULL);
  const char *note = NULL;
  gboolean applied = TRUE;
  GString *edit;

  g_assert_true (ph_machine_proxy_apply (mp, all, 3128, DIRECT, &error));
  g_assert_no_error (error);

  /* The admin points https_proxy elsewhere and adds a line; replaces the apt file; sets the
   * manager's HTTPS_PROXY. */
  environment = get (f, "/etc/environment");
  edit = g_string_new (environment);
  g_string_replace (edit, "https_proxy=" URL "\n", "https_proxy=http://admin.example:3128\n", 1);
  g_string_append (edit, "EDITOR=vi\n");
  changed = g_string_free (edit, FALSE);
  g_assert_true (g_file_set_contents (env_path, changed, -1, NULL));
  put (f, "/etc/apt/apt.conf.d/80pinhole-proxy", "Acquire::http::Proxy \"http://admin:1/\";\n");
  manager = state_file (f, "manager.env");
  {
    g_autoptr (GString) m = g_string_new (manager);
    g_string_replace (m, "HTTPS_PROXY=" URL "\n", "HTTPS_PROXY=http://admin.example:3128\n", 1);
    g_assert_true (g_file_set_contents (manager_path, m->str, -1, NULL));
  }

  apt_status = consumer_status (mp, "apt");
  g_assert_true (g_variant_lookup (apt_status, "applied", "b", &applied));
  g_assert_false (applied);
  g_assert_true (g_variant_lookup (apt_status, "note", "&s", &note));
  g_assert_cmpstr (note, ==, "changed");

  g_assert_true (ph_machine_proxy_restore (mp, &error));
  g_assert_no_error (error);
  g_clear_pointer (&environment, g_free);
  environment = get (f, "/etc/environment");
  /* Pinhole's lines went (http_proxy back to the old one), the admin's stayed. */
  g_assert_cmpstr (environment, ==,
                   "# system-wide environment\nPATH=\"/usr/local/bin:/usr/bin:/bin\"\n"
                   "http_proxy=http://old.example:8080\nLANG=C.UTF-8\n"
                   "https_proxy=http://admin.example:3128\nEDITOR=vi\n");
  g_clear_pointer (&apt, g_free);
  apt = get (f, "/etc/apt/apt.conf.d/80pinhole-proxy");
  g_assert_cmpstr (apt, ==, "Acquire::http::Proxy \"http://admin:1/\";\n");
  g_assert_false (exists (f, "/etc/systemd/system.conf.d/pinhole-proxy.conf"));
  g_clear_pointer (&manager, g_free);
  manager = state_file (f, "manager.env");
  g_assert_nonnull (strstr (manager, "http_proxy=http://old.example:8080\n"));
  g_assert_nonnull (strstr (manager, "HTTPS_PROXY=http://admin.example:3128\n"));
  g_assert_null (strstr (manager, "127.0.0.1"));
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
}

/* A second apply (another port) keeps the first previous values; a crash after it (the object
 * gone without restore) is put right by recover() in a new one. */
static void
test_crash (Fixture *f, gconstpointer data)
{
  g_autoptr (PhMachineProxy) second = NULL;
  g_autoptr (GError) error = NULL;
  gboolean restored = FALSE;

  {
    g_autoptr (PhMachineProxy) first = ph_machine_proxy_new (f->journal);

    g_assert_true (ph_machine_proxy_recover (first, &restored, &error));
    g_assert_false (restored);
    g_assert_true (ph_machine_proxy_apply (first, all, 3128, DIRECT, &error));
    g_assert_true (ph_machine_proxy_apply (first, all, 4000, DIRECT, &error));
    g_assert_no_error (error);
    assert_applied (f, "http://127.0.0.1:4000");
    /* Freed without restore: what a kill -9 leaves. */
  }
  second = ph_machine_proxy_new (f->journal);
  g_assert_true (ph_machine_proxy_recover (second, &restored, &error));
  g_assert_no_error (error);
  g_assert_true (restored);
  assert_original (f);
}

/* A journal that cannot be read is moved aside and reported; the next apply starts afresh. One
 * that is not this user's is refused and left where it is. */
static void
test_bad_journal (Fixture *f, gconstpointer data)
{
  g_autoptr (PhMachineProxy) mp = ph_machine_proxy_new (f->journal);
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_path_get_dirname (f->journal);
  g_autofree char *aside = g_strconcat (f->journal, ".corrupt", NULL);
  gboolean restored = TRUE;

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (f->journal, "[journal]\nversion=99\n", -1, NULL));
  g_assert_false (ph_machine_proxy_recover (mp, &restored, &error));
  g_assert_false (restored);
  g_assert_nonnull (strstr (error->message, ".corrupt"));
  g_assert_true (g_file_test (aside, G_FILE_TEST_EXISTS));
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
  g_clear_error (&error);
  g_assert_true (ph_machine_proxy_apply (mp, all, 3128, DIRECT, &error));
  g_assert_no_error (error);
  g_assert_true (ph_machine_proxy_restore (mp, &error));
  assert_original (f);

  /* Someone else's journal (here: nobody's). */
  if (geteuid () == 0)
    {
      g_autoptr (PhMachineProxy) other = ph_machine_proxy_new (f->journal);

      g_assert_true (g_file_set_contents (f->journal, "[journal]\nversion=1\n", -1, NULL));
      g_assert_cmpint (chown (f->journal, 65534, 65534), ==, 0);
      g_assert_false (ph_machine_proxy_recover (other, &restored, &error));
      g_assert_error (error, PH_ERROR, PH_ERROR_PERMISSION_DENIED);
      g_assert_true (g_file_test (f->journal, G_FILE_TEST_EXISTS));
      g_unlink (f->journal);
    }
}

/* A consumer taken off the list is restored at the next apply; the others stay. */
static void
test_dropped (Fixture *f, gconstpointer data)
{
  g_autoptr (PhMachineProxy) mp = ph_machine_proxy_new (f->journal);
  g_autoptr (GError) error = NULL;
  g_autofree char *environment = NULL;
  g_autofree char *apt = NULL;
  const char *const only_apt[] = { "apt", NULL };
  const char *const bogus[] = { "apt", "snap", NULL };

  g_assert_true (ph_machine_proxy_apply (mp, all, 3128, DIRECT, &error));
  g_assert_true (ph_machine_proxy_apply (mp, only_apt, 3128, DIRECT, &error));
  g_assert_no_error (error);
  environment = get (f, "/etc/environment");
  g_assert_cmpstr (environment, ==, ENVIRONMENT);
  g_assert_false (exists (f, "/etc/systemd"));
  apt = get (f, "/etc/apt/apt.conf.d/80pinhole-proxy");
  g_assert_nonnull (strstr (apt, "Acquire::https::Proxy \"" URL "/\";"));
  g_assert_false (ph_machine_proxy_apply (mp, bogus, 3128, DIRECT, &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING);
}

/* Docker installed: systemd reloads its units after the drop-in changes; Docker is never
 * restarted, and the status tells the admin to. */
static void
test_docker_present (Fixture *f, gconstpointer data)
{
  g_autoptr (PhMachineProxy) mp = ph_machine_proxy_new (f->journal);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) status = NULL;
  g_autofree char *marker = g_build_filename (f->state, "docker.present", NULL);
  g_autofree char *log = NULL;
  const char *const docker[] = { "docker", NULL };
  const char *note = NULL;

  g_assert_true (g_file_set_contents (marker, "", 0, NULL));
  g_assert_true (ph_machine_proxy_apply (mp, docker, 3128, NULL, &error));
  g_assert_no_error (error);
  status = consumer_status (mp, "docker");
  g_assert_true (g_variant_lookup (status, "note", "&s", &note));
  g_assert_cmpstr (note, ==, "restart-docker");
  g_assert_true (ph_machine_proxy_restore (mp, &error));
  log = state_file (f, "systemctl.log");
  /* One reload after writing, one after removing; no restart, no set-environment. */
  g_assert_nonnull (strstr (log, "daemon-reload"));
  g_assert_nonnull (strstr (strstr (log, "daemon-reload") + 1, "daemon-reload"));
  g_assert_null (strstr (log, "restart"));
  g_assert_null (strstr (log, "set-environment"));
  g_assert_false (exists (f, "/etc/systemd"));
}

/* A file that cannot be written: what was written goes back, the journal goes. */
static void
test_write_fails (Fixture *f, gconstpointer data)
{
  g_autoptr (PhMachineProxy) mp = ph_machine_proxy_new (f->journal);
  g_autoptr (GError) error = NULL;
  g_autofree char *systemd = at (f, "/etc/systemd");
  g_autofree char *environment = NULL;

  /* A file where the systemd directory would be. */
  g_assert_true (g_file_set_contents (systemd, "not a directory", -1, NULL));
  g_assert_false (ph_machine_proxy_apply (mp, all, 3128, DIRECT, &error));
  g_assert_nonnull (error);
  g_test_message ("apply failed as it should: %s", error->message);
  environment = get (f, "/etc/environment");
  g_assert_cmpstr (environment, ==, ENVIRONMENT);
  g_assert_false (ph_machine_proxy_is_applied (mp));
  g_assert_false (g_file_test (f->journal, G_FILE_TEST_EXISTS));
  g_unlink (systemd);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pinhole/machine-proxy/no-proxy", test_no_proxy);
  g_test_add_func ("/pinhole/machine-proxy/winhttp-bypass", test_winhttp_bypass);
  g_test_add_func ("/pinhole/machine-proxy/win-bypass", test_win_bypass);
  g_test_add_func ("/pinhole/machine-proxy/winhttp-settings", test_winhttp_settings);
#define ADD(name, fn)                                                                              \
  g_test_add ("/pinhole/machine-proxy/" name, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)
  ADD ("round-trip", test_round_trip);
  ADD ("admin-changed", test_admin_changed);
  ADD ("crash", test_crash);
  ADD ("bad-journal", test_bad_journal);
  ADD ("dropped", test_dropped);
  ADD ("docker-present", test_docker_present);
  ADD ("write-fails", test_write_fails);
  ADD ("other-system", test_other_system);
  return g_test_run ();
}
