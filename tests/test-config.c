/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-config.c: unit tests for agent/core/ph-config.h: defaults, every kind of
 * problem reported as FILE:LINE: [group] key: message, and the helpers. */
#include "ph-config.h"
#include "ph-error.h"

#include <string.h>
#include <glib/gstdio.h>

typedef struct
{
  char *dir;
  GPtrArray *files; /* paths to remove on teardown */
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  f->dir = g_dir_make_tmp ("pinhole-config-XXXXXX", &error);
  g_assert_no_error (error);
  f->files = g_ptr_array_new_with_free_func (g_free);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  for (guint i = 0; i < f->files->len; i++)
    g_unlink (g_ptr_array_index (f->files, i));
  g_rmdir (f->dir);
  g_ptr_array_unref (f->files);
  g_free (f->dir);
}

/* Writes @contents to @name in the fixture's directory with @mode. */
static char *
write_file (Fixture *f, const char *name, const char *contents, int mode)
{
  g_autoptr (GError) error = NULL;
  char *path = g_build_filename (f->dir, name, NULL);

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
  g_ptr_array_add (f->files, g_strdup (path));
  return path;
}

static PhConfig *
load (Fixture *f, const char *contents, char **path, GError **error)
{
  g_autofree char *p = write_file (f, "pinhole.conf", contents, 0644);
  PhConfig *cfg = ph_config_load (p, error);

  if (path != NULL)
    *path = g_steal_pointer (&p);
  return cfg;
}

static PhConfig *
load_ok (Fixture *f, const char *contents)
{
  g_autoptr (GError) error = NULL;
  PhConfig *cfg = load (f, contents, NULL, &error);

  if (error != NULL)
    g_test_message ("refused:\n%s", error->message);
  /* Fatal even with non-fatal assertions: callers use the result. */
  g_assert (cfg != NULL);
  return cfg;
}

/* Loads a file that must be refused and returns the problem text. */
static char *
load_bad (Fixture *f, const char *contents, char **path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PhConfig) cfg = load (f, contents, path, &error);

  if (cfg != NULL)
    {
      g_test_fail_printf ("accepted:\n%s", contents);
      return g_strdup ("");
    }
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
  g_test_message ("problems:\n%s", error->message);
  return g_strdup (error->message);
}

static guint
count_lines (const char *message)
{
  g_auto (GStrv) lines = g_strsplit (message, "\n", -1);
  return g_strv_length (lines);
}

/* Checks that @message holds a line "PATH:LINE: [group] key: ..." whose
 * text after the prefix contains @needle. */
static void
assert_problem (const char *message, const char *path, guint line, const char *group,
                const char *key, const char *needle)
{
  g_autoptr (GString) prefix = g_string_new (NULL);
  g_auto (GStrv) lines = g_strsplit (message, "\n", -1);

  g_string_printf (prefix, "%s:%u: ", path, line);
  if (group != NULL)
    g_string_append_printf (prefix, "[%s] ", group);
  if (key != NULL)
    g_string_append_printf (prefix, "%s: ", key);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix->str)
        && strstr (lines[i] + prefix->len, needle ? needle : "") != NULL)
      return;
  g_test_fail_printf ("no problem “%s…%s” in:\n%s", prefix->str, needle ? needle : "", message);
}

static char *
make_pin (guint8 fill)
{
  guint8 digest[PH_PIN_LEN];
  g_autofree char *b64 = NULL;

  memset (digest, fill, sizeof digest);
  b64 = g_base64_encode (digest, sizeof digest);
  return g_strconcat ("sha256//", b64, NULL);
}

static void
assert_listener (PhConfig *cfg, guint i, const char *address, guint16 port)
{
  GInetSocketAddress *sa;
  g_autofree char *s = NULL;

  g_assert (i < ph_config_get_listen (cfg)->len);
  sa = g_ptr_array_index (ph_config_get_listen (cfg), i);
  s = g_inet_address_to_string (g_inet_socket_address_get_address (sa));
  g_assert_cmpstr (s, ==, address);
  g_assert_cmpuint (g_inet_socket_address_get_port (sa), ==, port);
}

/* upstream.host as a list: each entry's port and server name, and what they default to. */
static void
test_proxies (Fixture *f, gconstpointer data)
{
  g_autoptr (PhConfig) cfg = load_ok (f, "[upstream]\n"
                                         "host=a.example; b.example:8443 , 192.0.2.7 "
                                         "server-name=c.example;[2001:db8::9]:444;2001:db8::10\n"
                                         "port=1443\n"
                                         "failover=round-robin\n");
  g_autoptr (PhConfig) named = load_ok (f, "[upstream]\nhost=a.example,b.example\n"
                                           "server-name=proxy.example\n");
  g_autoptr (PhConfig) one = load_ok (f, "[upstream]\nhost=a.example\n");
  g_autofree char *name3 = NULL;
  g_autofree char *name4 = NULL;

  g_assert_cmpuint (ph_config_get_n_proxies (cfg), ==, 5);
  g_assert_cmpstr (ph_config_get_host (cfg), ==, "a.example");
  g_assert_cmpint (ph_config_get_failover (cfg), ==, PH_FAILOVER_ROUND_ROBIN);
  g_assert_cmpuint (ph_config_get_proxy_port (cfg, 0), ==, 1443);
  g_assert_cmpstr (ph_config_get_proxy_server_name (cfg, 0), ==, "a.example");
  g_assert_cmpstr (ph_config_get_proxy_host (cfg, 1), ==, "b.example");
  g_assert_cmpuint (ph_config_get_proxy_port (cfg, 1), ==, 8443);
  g_assert_cmpstr (ph_config_get_proxy_host (cfg, 2), ==, "192.0.2.7");
  g_assert_cmpstr (ph_config_get_proxy_server_name (cfg, 2), ==, "c.example");
  g_assert_cmpstr (ph_config_get_proxy_host (cfg, 3), ==, "2001:db8::9");
  g_assert_cmpuint (ph_config_get_proxy_port (cfg, 3), ==, 444);
  name3 = ph_config_dup_proxy_name (cfg, 3);
  g_assert_cmpstr (name3, ==, "[2001:db8::9]:444");
  g_assert_cmpstr (ph_config_get_proxy_host (cfg, 4), ==, "2001:db8::10");
  name4 = ph_config_dup_proxy_name (cfg, 4);
  g_assert_cmpstr (name4, ==, "[2001:db8::10]:1443");
  /* upstream.server-name applies to every entry that names none. */
  g_assert_cmpstr (ph_config_get_proxy_server_name (named, 0), ==, "proxy.example");
  g_assert_cmpstr (ph_config_get_proxy_server_name (named, 1), ==, "proxy.example");
  g_assert_cmpint (ph_config_get_failover (one), ==, PH_FAILOVER_PRIORITY);
  /* Another list is another upstream; the same one is not. */
  g_assert_false (ph_config_same_upstream (named, one));
  g_assert_true (ph_config_same_upstream (one, one));
}

/* ---- accepted files ---- */

static void
test_defaults (Fixture *f, gconstpointer data)
{
  g_autoptr (PhConfig) cfg = load_ok (f, "[upstream]\nhost=proxy.example.com\n");

  g_assert_cmpuint (ph_config_get_listen (cfg)->len, ==, 2);
  assert_listener (cfg, 0, "127.0.0.1", 3128);
  assert_listener (cfg, 1, "::1", 3128);
  g_assert_cmpuint (ph_config_get_allow (cfg)->len, ==, 0);
  g_assert_cmpstr (ph_config_get_host (cfg), ==, "proxy.example.com");
  g_assert_cmpuint (ph_config_get_port (cfg), ==, 443);
  g_assert_cmpstr (ph_config_get_server_name (cfg), ==, "proxy.example.com");
  g_assert_cmpuint (ph_config_get_n_pins (cfg), ==, 0);
  g_assert_cmpint (ph_config_get_verify (cfg), ==, PH_VERIFY_CA);
  g_assert_null (ph_config_get_ca_file (cfg));
  g_assert_cmpint (ph_config_get_ktls (cfg), ==, PH_KTLS_AUTO);
  g_assert_null (ph_config_get_username (cfg));
  g_assert_null (ph_config_get_password_file (cfg));
  g_assert_null (ph_config_get_password (cfg));
  g_assert_cmpuint (ph_config_get_connect_timeout_ms (cfg), ==, 10000);
  g_assert_cmpuint (ph_config_get_handshake_timeout_ms (cfg), ==, 10000);
  g_assert_cmpuint (ph_config_get_response_timeout_ms (cfg), ==, 60000);
  g_assert_cmpuint (ph_config_get_warm (cfg), ==, 2);
  g_assert_cmpint (ph_config_get_http2 (cfg), ==, PH_HTTP2_AUTO);
  g_assert_cmpuint (ph_config_get_h2_connections (cfg), ==, 1);
  g_assert_cmpuint (ph_config_get_idle_connections (cfg), ==, 64);
  g_assert_cmpuint (ph_config_get_idle_lifetime_ms (cfg), ==, 50000);
  g_assert_cmpuint (ph_config_get_idle_timeout_ms (cfg), ==, 300000);
  g_assert_cmpuint (ph_config_get_head_timeout_ms (cfg), ==, 10000);
  g_assert_cmpuint (ph_config_get_max_tunnels (cfg), ==, PH_CONFIG_MAX_TUNNELS_AUTO);
  g_assert_cmpstr (ph_config_get_value (cfg, "tunnel.max-tunnels"), ==, "auto");
  g_assert_cmpint (ph_config_get_log_level (cfg), ==, PH_LOG_LEVEL_INFO);
}

static void
test_full (Fixture *f, gconstpointer data)
{
  g_autofree char *pin1 = make_pin (0x11);
  g_autofree char *pin2 = make_pin (0x22);
  g_autofree char *text = g_strdup_printf ("# Pinhole\n"
                                           "[listener]\n"
                                           "address = 127.0.0.1:8080 ; [::1]:8081\n"
                                           "[upstream]\n"
                                           "host=[2001:db8::5]\n"
                                           "port=8443\n"
                                           "server-name=proxy.example.com\n"
                                           "pins=%s, %s\n"
                                           "ca-file=/etc/ssl/certs/ca.pem\n"
                                           "connect-timeout=500ms\n"
                                           "handshake-timeout=2s\n"
                                           "response-timeout=1min\n"
                                           "warm=0\n"
                                           "http2=off\n"
                                           "h2-connections=4\n"
                                           "idle-connections=0\n"
                                           "idle-lifetime=5s\n"
                                           "[tunnel]\n"
                                           "idle-timeout=1h\n"
                                           "head-timeout=30\n"
                                           "max-tunnels=7\n"
                                           "[log]\n"
                                           "level=debug\n",
                                           pin1, pin2);
  g_autoptr (PhConfig) cfg = load_ok (f, text);
  g_autoptr (PhPin) expected = NULL;

  g_assert_cmpuint (ph_config_get_listen (cfg)->len, ==, 2);
  assert_listener (cfg, 0, "127.0.0.1", 8080);
  assert_listener (cfg, 1, "::1", 8081);
  g_assert_cmpstr (ph_config_get_host (cfg), ==, "2001:db8::5");
  g_assert_cmpuint (ph_config_get_port (cfg), ==, 8443);
  g_assert_cmpstr (ph_config_get_server_name (cfg), ==, "proxy.example.com");
  g_assert (ph_config_get_n_pins (cfg) == 2);
  g_assert_true ((expected = ph_pin_parse (pin2, NULL)) != NULL);
  g_assert_cmpmem (ph_pin_get_digest (ph_config_get_pin (cfg, 1)), PH_PIN_LEN,
                   ph_pin_get_digest (expected), PH_PIN_LEN);
  /* Pins given and verify= not: the pin alone decides. */
  g_assert_cmpint (ph_config_get_verify (cfg), ==, PH_VERIFY_PIN);
  g_assert_cmpstr (ph_config_get_ca_file (cfg), ==, "/etc/ssl/certs/ca.pem");
  g_assert_cmpuint (ph_config_get_connect_timeout_ms (cfg), ==, 500);
  g_assert_cmpuint (ph_config_get_handshake_timeout_ms (cfg), ==, 2000);
  g_assert_cmpuint (ph_config_get_response_timeout_ms (cfg), ==, 60000);
  g_assert_cmpuint (ph_config_get_warm (cfg), ==, 0);
  g_assert_cmpint (ph_config_get_http2 (cfg), ==, PH_HTTP2_OFF);
  g_assert_cmpuint (ph_config_get_h2_connections (cfg), ==, 4);
  g_assert_cmpuint (ph_config_get_idle_connections (cfg), ==, 0);
  g_assert_cmpuint (ph_config_get_idle_lifetime_ms (cfg), ==, 5000);
  g_assert_cmpuint (ph_config_get_idle_timeout_ms (cfg), ==, 3600000);
  g_assert_cmpuint (ph_config_get_head_timeout_ms (cfg), ==, 30000);
  g_assert_cmpuint (ph_config_get_max_tunnels (cfg), ==, 7);
  g_assert_cmpint (ph_config_get_log_level (cfg), ==, PH_LOG_LEVEL_DEBUG);
}

static void
test_verify_modes (Fixture *f, gconstpointer data)
{
  g_autofree char *pin = make_pin (0x33);
  const struct
  {
    const char *verify;
    gboolean with_pin;
    PhVerifyMode expected;
  } cases[] = {
    { NULL, TRUE, PH_VERIFY_PIN },  { NULL, FALSE, PH_VERIFY_CA },
    { "ca", TRUE, PH_VERIFY_CA },   { "ca", FALSE, PH_VERIFY_CA },
    { "pin", TRUE, PH_VERIFY_PIN }, { "pin+ca", TRUE, PH_VERIFY_PIN_AND_CA },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GString) text = g_string_new ("[upstream]\nhost=h.example\n");
      g_autoptr (PhConfig) cfg = NULL;

      if (cases[i].with_pin)
        g_string_append_printf (text, "pins=%s\n", pin);
      if (cases[i].verify != NULL)
        g_string_append_printf (text, "verify=%s\n", cases[i].verify);
      cfg = load_ok (f, text->str);
      g_assert_cmpint (ph_config_get_verify (cfg), ==, cases[i].expected);
    }
}

static void
test_ktls_modes (Fixture *f, gconstpointer data)
{
  const struct
  {
    const char *value;
    PhKtlsMode expected;
  } cases[] = {
    { "auto", PH_KTLS_AUTO },
    { "on", PH_KTLS_ON },
    { "off", PH_KTLS_OFF },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text
          = g_strdup_printf ("[upstream]\nhost=h.example\nktls=%s\n", cases[i].value);
      g_autoptr (PhConfig) cfg = load_ok (f, text);

      g_assert_cmpint (ph_config_get_ktls (cfg), ==, cases[i].expected);
    }
}

/* ---- problems, with their lines ---- */

static void
test_problems_reported_together (Fixture *f, gconstpointer data)
{
  g_autofree char *path = NULL;
  g_autofree char *msg = load_bad (f,
                                   "# line 1: a comment\n"
                                   "[listener]\n"
                                   "address=127.0.0.1:3128\n"
                                   "colour=blue\n"
                                   "\n"
                                   "[upstream]\n"
                                   "host=proxy.example.com\n"
                                   "port=99999\n"
                                   "pins=sha256//tooshort\n"
                                   "verify=maybe\n"
                                   "connect-timeout=soon\n"
                                   "warm=lots\n"
                                   "[bogus]\n"
                                   "x=1\n"
                                   "[log]\n"
                                   "level=loud\n",
                                   &path);

  assert_problem (msg, path, 4, "listener", "colour", "unknown key");
  assert_problem (msg, path, 8, "upstream", "port", "99999");
  assert_problem (msg, path, 9, "upstream", "pins", "sha256//tooshort");
  assert_problem (msg, path, 10, "upstream", "verify", "maybe");
  assert_problem (msg, path, 11, "upstream", "connect-timeout", "soon");
  assert_problem (msg, path, 12, "upstream", "warm", "lots");
  assert_problem (msg, path, 13, "bogus", NULL, "unknown group");
  assert_problem (msg, path, 16, "log", "level", "loud");
  g_assert_cmpuint (count_lines (msg), ==, 8);
}

static void
test_syntax_problems (Fixture *f, gconstpointer data)
{
  g_autofree char *path = NULL;
  g_autofree char *msg = load_bad (f,
                                   "host=early.example\n"
                                   "[upstream]\n"
                                   "host=a.example\n"
                                   "this line is not a pair\n"
                                   "  host = b.example\n"
                                   "[listener\n"
                                   "[upstream]\n",
                                   &path);

  assert_problem (msg, path, 1, NULL, "host", "before any [group]");
  assert_problem (msg, path, 4, "upstream", NULL, "not key=value");
  assert_problem (msg, path, 5, "upstream", "host", "line 3");
  assert_problem (msg, path, 6, NULL, NULL, "[listener");
  assert_problem (msg, path, 7, "upstream", NULL, "line 2");
  g_assert_cmpuint (count_lines (msg), ==, 5);
}

static void
test_key_set_twice (Fixture *f, gconstpointer data)
{
  g_autofree char *path = NULL;
  g_autofree char *msg
      = load_bad (f, "[upstream]\nhost=a.example\nport=1\n\n# again\nport=2\n", &path);

  assert_problem (msg, path, 6, "upstream", "port", "set twice (first on line 3)");
  g_assert_cmpuint (count_lines (msg), ==, 1);
}

static void
test_bad_values (Fixture *f, gconstpointer data)
{
  const struct
  {
    const char *group;
    const char *key;
    const char *value;
    const char *needle; /* in the message; NULL: the value itself */
  } cases[] = {
    { "upstream", "port", "0", NULL },
    { "upstream", "port", "65536", NULL },
    { "upstream", "port", "https", NULL },
    { "upstream", "port", "-1", NULL },
    { "upstream", "host", "proxy example", "“example” is not an option of a cloud proxy" },
    { "upstream", "host", "a.example;b/c:443", "“b/c:443” is not a cloud proxy" },
    { "upstream", "host", "a.example:99999", NULL },
    { "upstream", "host", "[2001:db8::1", NULL },
    { "upstream", "host", "a.example sni=b.example", "“sni=b.example” is not an option" },
    { "upstream", "failover", "random", "not one of priority, round-robin" },
    { "upstream", "server-name", "a/b", NULL },
    { "upstream", "pins", "sha1//AAAAAAAAAAAAAAAAAAAAAAAAAAA=", NULL },
    { "upstream", "verify", "none", NULL },
    { "upstream", "ktls", "yes", "not one of auto, on, off" },
    { "upstream", "ktls", "On", NULL },
    { "upstream", "connect-timeout", "x", NULL },
    { "upstream", "connect-timeout", "1ms", NULL },
    { "upstream", "connect-timeout", "2d", NULL },
    { "upstream", "handshake-timeout", "-1", NULL },
    { "upstream", "warm", "65", NULL },
    { "upstream", "idle-connections", "4097", NULL },
    { "upstream", "idle-connections", "some", NULL },
    { "upstream", "idle-lifetime", "500ms", NULL },
    { "upstream", "idle-lifetime", "forever", NULL },
    { "tunnel", "idle-timeout", "500ms", NULL },
    { "tunnel", "max-tunnels", "0", "not “auto” or a whole number from 1 to 1000000" },
    { "tunnel", "max-tunnels", "1000001", NULL },
    { "tunnel", "max-tunnels", "Auto", NULL },
    { "tunnel", "max-tunnels", "auto1", NULL },
    { "tunnel", "max-tunnels", "-5", NULL },
    { "listener", "address", "localhost:3128", "localhost" },
    { "listener", "address", "127.0.0.1", NULL },
    { "listener", "address", "127.0.0.1:0", "not a port" },
    { "listener", "address", "::1:3128", NULL },
    { "listener", "address", ";", "at least one address" },
    { "listener", "allow", "10.0.0.0/33", NULL },
    { "listener", "allow", "everyone", NULL },
    { "log", "level", "verbose", NULL },
    /* Each bad item of a host list is named, whatever stands beside it. */
    { "route", "direct", "intranet.example, bad_host!", "“bad_host!” is not a host rule" },
    { "route", "direct", "10.0.0.0/8 10.0.0.0/33", "“10.0.0.0/33” is not an address" },
    { "route", "direct", "*.", "“*.” is not a host rule" },
    { "route", "direct", "*.corp.example;[fd00::1", "“[fd00::1”" },
    { "route", "direct", "fd00::/129", "“fd00::/129”" },
    { "route", "direct", "<LOCAL> <lan>", "“<lan>”" },
    { "route", "block", "a..b.example", "“a..b.example”" },
    { "route", "block", "**.ads.example", "“**.ads.example”" },
    { "route", "block", "http://ads.example/", "“http://ads.example/”" },
    { "route", "resolve-for-cidr", "maybe", NULL },
    { "route", "when-unreachable", "allow", NULL },
    { "route", "when-unreachable", "Direct", NULL },
    { "route", "portal-check", "https://portal.example/", NULL },
    { "route", "portal-check", "portal.example", NULL },
    { "route", "portal-minutes", "0", NULL },
    { "route", "portal-minutes", "1441", NULL },
    { "route", "portal-minutes", "five", NULL },
    { "route", "portal", "deny", NULL },
    { "system-proxy", "mode", "auto", NULL },
    { "doctor", "target", "probe.example", "not a HOST:PORT" },
    { "doctor", "target", "probe.example:0", NULL },
    { "doctor", "target", "probe.example:65536", NULL },
    { "doctor", "target", "bad_host!:443", NULL },
    { "doctor", "target", "fd00::1:443:x", NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = NULL;
      g_autofree char *text = NULL;
      g_autofree char *msg = NULL;

      gboolean upstream = g_str_equal (cases[i].group, "upstream");
      gboolean is_host = upstream && g_str_equal (cases[i].key, "host");

      /* The key goes on line 3 or 5, so that a wrong line number shows. */
      if (upstream)
        text = g_strdup_printf ("# test\n[upstream]\n%s=%s\n%s", cases[i].key, cases[i].value,
                                is_host ? "" : "host=ok.example\n");
      else
        text = g_strdup_printf ("# test\n[upstream]\nhost=ok.example\n[%s]\n%s=%s\n",
                                cases[i].group, cases[i].key, cases[i].value);
      msg = load_bad (f, text, &path);
      assert_problem (msg, path, upstream ? 3 : 5, cases[i].group, cases[i].key,
                      cases[i].needle ? cases[i].needle : cases[i].value);
      g_assert_cmpuint (count_lines (msg), ==, 1);
    }
}

/* [doctor] target: the doctor's probe, kept in authority form; empty means each proxy's own
 * name. */
static void
test_doctor_target (Fixture *f, gconstpointer data)
{
  const struct
  {
    const char *value;
    const char *want;
  } cases[] = {
    { "", NULL },
    { "probe.example:443", "probe.example:443" },
    { "10.0.0.1:8443", "10.0.0.1:8443" },
    { "[fd00::1]:443", "[fd00::1]:443" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text
          = g_strdup_printf ("[upstream]\nhost=h.example\n[doctor]\ntarget=%s\n", cases[i].value);
      g_autoptr (PhConfig) cfg = load_ok (f, text);

      g_assert_cmpstr (ph_config_get_doctor_target (cfg), ==, cases[i].want);
      g_assert_cmpstr (ph_config_get_value (cfg, "doctor.target"), ==, cases[i].value);
    }
  g_assert_cmpstr (ph_config_get_default ("doctor.target"), ==, "");
}

/* max-tunnels is "auto" (the listener derives it from the descriptor limit) or a number, and
 * the control interface shows what was written. */
static void
test_max_tunnels (Fixture *f, gconstpointer data)
{
  const struct
  {
    const char *value;
    guint want;
  } cases[] = {
    { "auto", PH_CONFIG_MAX_TUNNELS_AUTO },
    { "1", 1 },
    { "1024", 1024 },
    { "20000", 20000 },
    { "1000000", 1000000 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = g_strdup_printf (
          "[upstream]\nhost=h.example\n[tunnel]\nmax-tunnels=%s\n", cases[i].value);
      g_autoptr (PhConfig) cfg = load_ok (f, text);
      g_autoptr (GError) error = NULL;

      g_assert_cmpuint (ph_config_get_max_tunnels (cfg), ==, cases[i].want);
      g_assert_cmpstr (ph_config_get_value (cfg, "tunnel.max-tunnels"), ==, cases[i].value);
      g_assert_true (ph_config_check_value ("tunnel.max-tunnels", cases[i].value, &error));
      g_assert_no_error (error);
    }
  for (gsize i = 0; i < 2; i++)
    {
      g_autoptr (GError) error = NULL;
      const char *bad[] = { "0", "lots" };

      g_assert_false (ph_config_check_value ("tunnel.max-tunnels", bad[i], &error));
      g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING);
      g_assert_nonnull (strstr (error->message, "auto"));
    }
}

/* An agent with no cloud proxy yet still starts, so that the control
 * interface can configure it; it says why it cannot carry traffic. */
static void
test_missing_host (Fixture *f, gconstpointer data)
{
  g_autoptr (PhConfig) cfg = load_ok (f, "# nothing yet\n\n[upstream]\nport=8443\n");
  g_autoptr (PhConfig) ready = load_ok (f, "[upstream]\nhost=h.example\n");

  g_assert_null (ph_config_get_host (cfg));
  g_assert_null (ph_config_get_server_name (cfg));
  g_assert_nonnull (strstr (ph_config_get_unready_reason (cfg), "upstream.host"));
  g_assert_null (ph_config_get_unready_reason (ready));
}

/* verify=pin before any pin is trusted is the first-use state: every
 * handshake fails, naming the pin seen, until one is trusted. */
static void
test_verify_pin_without_pins (Fixture *f, gconstpointer data)
{
  const char *modes[] = { "pin", "pin+ca" };
  const PhVerifyMode want[] = { PH_VERIFY_PIN, PH_VERIFY_PIN_AND_CA };

  for (gsize i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      g_autofree char *text
          = g_strdup_printf ("[upstream]\nhost=h.example\n\nverify=%s\n", modes[i]);
      g_autoptr (PhConfig) cfg = load_ok (f, text);

      g_assert_cmpint (ph_config_get_verify (cfg), ==, want[i]);
      g_assert_cmpuint (ph_config_get_n_pins (cfg), ==, 0);
    }
}

static void
test_password_file_mode (Fixture *f, gconstpointer data)
{
  const int modes[] = { 0644, 0640, 0604, 0660 };

#ifdef G_OS_WIN32 /* the agent checks POSIX modes only; Windows gets DPAPI (platform/) */
  g_test_skip ("file modes do not apply on Windows");
  return;
#endif

  for (gsize i = 0; i < G_N_ELEMENTS (modes); i++)
    {
      g_autofree char *secret = write_file (f, "password", "s3cret\n", modes[i]);
      g_autofree char *path = NULL;
      g_autofree char *text = g_strdup_printf (
          "[upstream]\nhost=h.example\nusername=alice\npassword-file=%s\n", secret);
      g_autofree char *msg = load_bad (f, text, &path);

      assert_problem (msg, path, 4, "upstream", "password-file", "chmod 600");
      g_assert_cmpuint (count_lines (msg), ==, 1);
      /* Refusing is not enough: the password must not be echoed. */
      g_assert_null (strstr (msg, "s3cret"));
    }
}

static void
test_password_file_ok (Fixture *f, gconstpointer data)
{
  const struct
  {
    const char *contents;
    const char *password;
  } cases[] = {
    { "s3cret\n", "s3cret" },
    { "s3cret\r\n", "s3cret" },
    { "s3cret", "s3cret" },
    { "with spaces inside \n", "with spaces inside " },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *secret = write_file (f, "password", cases[i].contents, 0600);
      g_autofree char *text = g_strdup_printf (
          "[upstream]\nhost=h.example\nusername=alice\npassword-file=%s\n", secret);
      g_autoptr (PhConfig) cfg = load_ok (f, text);

      g_assert_cmpstr (ph_config_get_username (cfg), ==, "alice");
      g_assert_cmpstr (ph_config_get_password_file (cfg), ==, secret);
      g_assert_cmpstr (ph_config_get_password (cfg), ==, cases[i].password);
    }
}

static void
test_password_file_problems (Fixture *f, gconstpointer data)
{
  g_autofree char *empty = write_file (f, "empty", "\n", 0600);
  g_autofree char *missing = g_build_filename (f->dir, "does-not-exist", NULL);
  const char *files[] = { empty, missing };

  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = NULL;
      g_autofree char *text = g_strdup_printf (
          "[upstream]\nhost=h.example\nusername=alice\n\npassword-file=%s\n", files[i]);
      g_autofree char *msg = load_bad (f, text, &path);

      assert_problem (msg, path, 5, "upstream", "password-file", files[i]);
      g_assert_cmpuint (count_lines (msg), ==, 1);
    }
}

/* A user name alone is fine: the password comes from the secret store.
 * A password file without a user name is a mistake. */
static void
test_username_without_password (Fixture *f, gconstpointer data)
{
  g_autofree char *secret = write_file (f, "password", "s3cret\n", 0600);
  g_autoptr (PhConfig) cfg = load_ok (f, "[upstream]\nhost=h.example\n# who\nusername=alice\n");
  g_autofree char *path2 = NULL;
  g_autofree char *text2
      = g_strdup_printf ("[upstream]\nhost=h.example\npassword-file=%s\n", secret);
  g_autofree char *msg2 = load_bad (f, text2, &path2);

  g_assert_cmpstr (ph_config_get_username (cfg), ==, "alice");
  g_assert_null (ph_config_get_password (cfg));
  assert_problem (msg2, path2, 3, "upstream", "username", "password-file=");
  g_assert_cmpuint (count_lines (msg2), ==, 1);
}

static void
test_non_loopback_listener (Fixture *f, gconstpointer data)
{
  const char *addresses[] = { "0.0.0.0:3128", "[::]:3128", "192.168.1.10:3128" };

  for (gsize i = 0; i < G_N_ELEMENTS (addresses); i++)
    {
      g_autofree char *path = NULL;
      g_autofree char *text = g_strdup_printf (
          "[upstream]\nhost=h.example\n[listener]\naddress=127.0.0.1:3128;%s\n", addresses[i]);
      g_autofree char *msg = load_bad (f, text, &path);

      assert_problem (msg, path, 4, "listener", "address", "allow=");
      assert_problem (msg, path, 4, "listener", "address", "not a loopback address");
      g_assert_cmpuint (count_lines (msg), ==, 1);
    }
}

static void
test_allow (Fixture *f, gconstpointer data)
{
  g_autoptr (PhConfig) cfg
      = load_ok (f, "[listener]\naddress=0.0.0.0:3128\nallow=10.0.0.0/8, fd00::/8\n"
                    "[upstream]\nhost=h.example\n");
  g_autoptr (PhConfig) local = load_ok (f, "[upstream]\nhost=h.example\n");
  const struct
  {
    const char *address;
    gboolean allowed;
    gboolean allowed_locally;
  } cases[] = {
    { "10.0.0.1", TRUE, FALSE },  { "10.255.255.255", TRUE, FALSE },
    { "11.0.0.1", FALSE, FALSE }, { "192.168.1.1", FALSE, FALSE },
    { "127.0.0.1", TRUE, TRUE },  { "127.1.2.3", TRUE, TRUE },
    { "::1", TRUE, TRUE },        { "fd12::1", TRUE, FALSE },
    { "fe80::1", FALSE, FALSE },
  };

  g_assert_cmpuint (ph_config_get_listen (cfg)->len, ==, 1);
  assert_listener (cfg, 0, "0.0.0.0", 3128);
  g_assert_cmpuint (ph_config_get_allow (cfg)->len, ==, 2);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GInetAddress) addr = g_inet_address_new_from_string (cases[i].address);

      g_assert (addr != NULL);
      if (ph_config_allows_client (cfg, addr) != cases[i].allowed)
        g_test_message ("%s", cases[i].address);
      g_assert_cmpint (ph_config_allows_client (cfg, addr), ==, cases[i].allowed);
      g_assert_cmpint (ph_config_allows_client (local, addr), ==, cases[i].allowed_locally);
    }
}

static void
test_unreadable_files (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *missing = g_build_filename (f->dir, "nope.conf", NULL);
  g_autofree char *latin1 = write_file (f, "latin1.conf", "[upstream]\nhost=caf\xe9\n", 0644);
  g_autoptr (PhConfig) cfg = ph_config_load (missing, &error);

  g_assert_null (cfg);
  g_assert (error != NULL);
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
  g_assert_true (g_str_has_prefix (error->message, missing));
  g_clear_error (&error);

  cfg = ph_config_load (latin1, &error);
  g_assert_null (cfg);
  g_assert (error != NULL);
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
  g_assert_true (g_str_has_prefix (error->message, latin1));
  g_assert_nonnull (strstr (error->message, "UTF-8"));
}

/* GKeyFile reports a bad escape but still returns a value: the problem
 * must be reported on its line, and not trip GLib's "GError set over the
 * top of a previous GError" warning (fatal in tests, so in a subprocess). */
static void
test_invalid_escape (Fixture *f, gconstpointer data)
{
  if (g_test_subprocess ())
    {
      g_autofree char *path = NULL;
      g_autofree char *msg = load_bad (f, "[upstream]\nhost=proxy\\x.example\n", &path);

      assert_problem (msg, path, 2, "upstream", "host", "");
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr_unmatched ("*GError set over the top*");
}

/* ---- helpers ---- */

static void
test_parse_duration (void)
{
  const struct
  {
    const char *text;
    gboolean ok;
    guint ms;
  } cases[] = {
    { "30", TRUE, 30000 },    { "30s", TRUE, 30000 },  { "500ms", TRUE, 500 },
    { "5min", TRUE, 300000 }, { "1h", TRUE, 3600000 }, { "0", TRUE, 0 },
    { "1.5s", TRUE, 1500 },   { "0.25", TRUE, 250 },   { "x", FALSE, 0 },
    { "-1", FALSE, 0 },       { "", FALSE, 0 },        { "s", FALSE, 0 },
    { "30 s", FALSE, 0 },     { " 30", FALSE, 0 },     { "30sec", FALSE, 0 },
    { "30m", FALSE, 0 },      { "30S", FALSE, 0 },     { "5minutes", FALSE, 0 },
    { "1000000h", FALSE, 0 }, { "+5", FALSE, 0 },      { ".5s", FALSE, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      guint ms = 4242;
      gboolean ok = ph_config_parse_duration (cases[i].text, &ms, &error);

      if (ok != cases[i].ok)
        g_test_message ("“%s”: expected %s", cases[i].text, cases[i].ok ? "success" : "failure");
      g_assert_cmpint (ok, ==, cases[i].ok);
      if (ok)
        {
          g_assert_no_error (error);
          g_assert_cmpuint (ms, ==, cases[i].ms);
        }
      else
        {
          g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
          g_assert_cmpuint (ms, ==, 4242);
        }
    }
}

static void
test_parse_listen_address (void)
{
  const struct
  {
    const char *text;
    const char *address; /* NULL: refused */
    guint16 port;
  } cases[] = {
    { "127.0.0.1:3128", "127.0.0.1", 3128 },
    { "[::1]:1", "::1", 1 },
    { "0.0.0.0:65535", "0.0.0.0", 65535 },
    { "[::]:80", "::", 80 },
    { "localhost:3128", NULL, 0 },
    { "127.0.0.1", NULL, 0 },
    { "127.0.0.1:", NULL, 0 },
    { "127.0.0.1:65536", NULL, 0 },
    { "::1:3128", NULL, 0 },
    { "[::1]3128", NULL, 0 },
    { "[::1", NULL, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GInetSocketAddress) sa = ph_config_parse_listen_address (cases[i].text, &error);

      g_test_message ("%s", cases[i].text);
      if (cases[i].address == NULL)
        {
          g_assert_null (sa);
          g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
        }
      else
        {
          g_autofree char *s = NULL;

          g_assert_no_error (error);
          if (sa == NULL)
            continue;
          s = g_inet_address_to_string (g_inet_socket_address_get_address (sa));
          g_assert_cmpstr (s, ==, cases[i].address);
          g_assert_cmpuint (g_inet_socket_address_get_port (sa), ==, cases[i].port);
        }
    }
}

static void
test_same (Fixture *f, gconstpointer data)
{
  g_autofree char *pin = make_pin (0x44);
  g_autofree char *with_pin = g_strdup_printf ("[upstream]\nhost=h.example\npins=%s\n", pin);
  g_autoptr (PhConfig) a = load_ok (f, "[upstream]\nhost=h.example\n");
  g_autoptr (PhConfig) b
      = load_ok (f, "# same, spelled differently\n[upstream]\nhost = h.example\nport=443\n");
  g_autoptr (PhConfig) c = load_ok (f, with_pin);
  g_autoptr (PhConfig) d
      = load_ok (f, "[upstream]\nhost=h.example\n[listener]\naddress=127.0.0.1:3128\n");

  g_assert_true (ph_config_same_upstream (a, b));
  g_assert_false (ph_config_same_upstream (a, c));
  g_assert_true (ph_config_same_listeners (a, b));
  g_assert_false (ph_config_same_listeners (a, d));
  g_assert_true (ph_config_same_credentials (a, c));
}

/* Layers: system, then user, then managed drop-ins in name order; later
 * wins key by key, and what a drop-in sets is locked. */
static void
test_layers (Fixture *f, gconstpointer data)
{
  g_autofree char *managed = g_build_filename (f->dir, "managed.d", NULL);
  g_autofree char *system
      = write_file (f, "system.conf", "[upstream]\nhost=a.example\nport=1000\n", 0644);
  g_autofree char *user = write_file (f, "user.conf", "[upstream]\nhost=b.example\n", 0644);
  g_autofree char *m20 = NULL, *m10 = NULL, *ignored = NULL;
  g_autofree char *missing = g_build_filename (f->dir, "absent.conf", NULL);
  g_autoptr (GPtrArray) layers = NULL;
  g_autoptr (PhConfig) cfg = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (g_mkdir (managed, 0755), ==, 0);
  m20 = write_file (f, "managed.d" G_DIR_SEPARATOR_S "20-b.conf", "[upstream]\nport=2000\n", 0644);
  m10 = write_file (f, "managed.d" G_DIR_SEPARATOR_S "10-a.conf",
                    "[upstream]\nport=3000\n[log]\nlevel=debug\n", 0644);
  ignored = write_file (f, "managed.d" G_DIR_SEPARATOR_S "30-c.conf.dpkg-old",
                        "[upstream]\nport=4000\n", 0644);

  layers = ph_config_layers_new (system, user, managed);
  g_assert_cmpuint (layers->len, ==, 4);
  cfg = ph_config_load_layers (layers, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (ph_config_get_host (cfg), ==, "b.example");
  g_assert_cmpuint (ph_config_get_port (cfg), ==, 2000);
  g_assert_cmpint (ph_config_get_log_level (cfg), ==, PH_LOG_LEVEL_DEBUG);
  g_assert_cmpstr (ph_config_get_value (cfg, "upstream.host"), ==, "b.example");
  g_assert_cmpstr (ph_config_get_value (cfg, "upstream.port"), ==, "2000");
  g_assert_cmpstr (ph_config_get_value (cfg, "tunnel.idle-timeout"), ==, "300s");
  g_assert_true (ph_config_is_locked (cfg, "upstream.port"));
  g_assert_true (ph_config_is_locked (cfg, "log.level"));
  g_assert_false (ph_config_is_locked (cfg, "upstream.host"));
  g_assert_cmpuint (ph_config_get_n_locked (cfg), ==, 2);
  g_clear_pointer (&layers, g_ptr_array_unref);
  g_clear_pointer (&cfg, ph_config_unref);

  /* Every layer is optional in a service; a problem names its own file. */
  layers = ph_config_layers_new (missing, NULL, NULL);
  cfg = ph_config_load_layers (layers, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ph_config_get_unready_reason (cfg));
  g_clear_pointer (&layers, g_ptr_array_unref);
  g_clear_pointer (&cfg, ph_config_unref);

  g_file_set_contents (m20, "[upstream]\n\nport=none\n", -1, &error);
  g_assert_no_error (error);
  layers = ph_config_layers_new (system, user, managed);
  cfg = ph_config_load_layers (layers, &error);
  g_assert_null (cfg);
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
  assert_problem (error->message, m20, 3, "upstream", "port", "none");
  g_assert_cmpuint (count_lines (error->message), ==, 1);

  for (guint i = 0; i < f->files->len; i++)
    g_unlink (g_ptr_array_index (f->files, i));
  g_ptr_array_set_size (f->files, 0);
  g_assert_cmpint (g_rmdir (managed), ==, 0);
}

/* The control interface checks one value as the file's loader would. */
static void
test_check_value (Fixture *f, gconstpointer data)
{
  const struct
  {
    const char *key, *value, *needle; /* needle NULL: accepted */
  } cases[] = {
    { "upstream.port", "8443", NULL },
    { "upstream.port", "99999", "upstream.port: " },
    { "upstream.host", "proxy example", "not an option of a cloud proxy" },
    { "upstream.host", "a.example:8443, [2001:db8::1]:443 server-name=b.example", NULL },
    { "listener.address", "127.0.0.1:3128;[::1]:3128", NULL },
    { "listener.address", "localhost:3128", "not an IP address" },
    { "upstream.pins", "sha256//short", "SHA-256 pin" },
    { "tunnel.idle-timeout", "5min", NULL },
    { "upstream.verify", "pin\nx=y", "one line" },
    { "upstream.colour", "red", "unknown setting" },
    { "nodot", "1", "unknown setting" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      gboolean ok = ph_config_check_value (cases[i].key, cases[i].value, &error);

      if (cases[i].needle == NULL)
        {
          g_assert_no_error (error);
          g_assert_true (ok);
          continue;
        }
      g_assert_false (ok);
      g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING);
      if (strstr (error->message, cases[i].needle) == NULL)
        g_error ("%s=%s: “%s” lacks “%s”", cases[i].key, cases[i].value, error->message,
                 cases[i].needle);
    }
  g_assert_true (ph_config_has_key ("upstream.host"));
  g_assert_false (ph_config_has_key ("upstream"));
  g_assert_cmpstr (ph_config_get_default ("upstream.port"), ==, "443");
  g_assert_cmpuint (g_strv_length ((GStrv) ph_config_list_keys ()), >=, 18);
}

/* Saving a setting keeps the user's comments and the other keys. */
static void
test_edit (Fixture *f, gconstpointer data)
{
  const char *before = "# Office proxy, ticket 42\n[upstream]\n# the cloud end\nhost=a.example\n"
                       "port=443\n";
  g_autoptr (GError) error = NULL;
  g_autofree char *set = ph_config_edit (before, "upstream.host", "b.example", &error);
  g_autofree char *unset = NULL, *added = NULL, *fresh = NULL;

  g_assert_no_error (error);
  g_assert_nonnull (strstr (set, "# Office proxy, ticket 42"));
  g_assert_nonnull (strstr (set, "# the cloud end\nhost=b.example"));
  g_assert_nonnull (strstr (set, "port=443"));
  unset = ph_config_edit (set, "upstream.port", NULL, &error);
  g_assert_no_error (error);
  g_assert_null (strstr (unset, "port="));
  added = ph_config_edit (unset, "tunnel.idle-timeout", "10min", &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (added, "[tunnel]\nidle-timeout=10min"));
  /* Backslashes survive the round trip, as Windows paths need. */
  fresh = ph_config_edit (NULL, "upstream.ca-file", "C:\\ca\\corp.pem", &error);
  g_assert_no_error (error);
  {
    g_autofree char *path = write_file (f, "edited.conf", fresh, 0644);
    g_autoptr (PhConfig) cfg = ph_config_load (path, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (ph_config_get_ca_file (cfg), ==, "C:\\ca\\corp.pem");
  }
  /* As a Windows administrator types it, without doubling backslashes. */
  {
    g_autofree char *path = write_file (
        f, "windows.conf", "[upstream]\nca-file=C:\\ProgramData\\Pinhole\\ca.pem\n", 0644);
    g_autoptr (PhConfig) cfg = ph_config_load (path, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (ph_config_get_ca_file (cfg), ==, "C:\\ProgramData\\Pinhole\\ca.pem");
  }
  g_assert_null (ph_config_edit ("[x]\ny=1\n", "no.such", "1", &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING);
  g_clear_error (&error);
  g_assert_null (ph_config_edit ("[upstream\nhost=a\n", "upstream.port", "1", &error));
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
}

/* [transparent] and [listener] socks-users: defaults, values, and each key's problems with its
 * line. */
static void
test_transparent (Fixture *f, gconstpointer data)
{
  g_autoptr (PhConfig) def = load_ok (f, "[upstream]\nhost=h.example\n");
  g_autoptr (PhConfig) cfg = NULL;
  const char *iface = "x";
  const guint16 *ports;
  guint n = 0;
  struct
  {
    const char *text;
    guint line;
    const char *group, *key, *needle;
  } bad[] = {
    { "[transparent]\nports=80,http\n", 2, "transparent", "ports", "“http” is not a port" },
    { "[transparent]\nports=0\n", 2, "transparent", "ports", "not a port" },
    { "[transparent]\nports=;\n", 2, "transparent", "ports", "at least one port" },
    { "[transparent]\ncapture=on\n", 2, "transparent", "capture", "not off, local or gateway" },
    { "[transparent]\ncapture=gateway\n", 2, "transparent", "capture", "gateway IFACE" },
    { "[transparent]\naddress=127.0.0.1:3129\ncapture=gateway eth0;x\n", 3, "transparent",
      "capture", "gateway IFACE" },
    { "[transparent]\ncapture=gateway eth0/1\n", 2, "transparent", "capture", "gateway" },
    { "[transparent]\ncapture=local\n", 2, "transparent", "capture",
      "needs a transparent listener" },
    { "[transparent]\naddress=0.0.0.0:3129\ncapture=gateway lan0\n", 2, "transparent", "address",
      "allow=" },
    { "[listener]\nallow=10.0.0.0/8\n[transparent]\naddress=127.0.0.1:3129\ncapture=gateway "
      "lan0\n",
      5, "transparent", "capture", "only loopback" },
    { "[listener]\nallow=10.0.0.0/8\n[transparent]\naddress=10.0.0.1:3129\ncapture=local\n", 5,
      "transparent", "capture", "no loopback address" },
    { "[transparent]\nmark=-1\n", 2, "transparent", "mark", "whole number" },
    { "[transparent]\naddress=localhost:3129\n", 2, "transparent", "address", "not an IP address" },
    { "[listener]\nsocks-users=alice,bob smith\n", 2, "listener", "socks-users",
      "“bob smith” is not a user name" },
    { "[system-proxy]\nmode=pac\nmachine=apt, snap\n", 3, "system-proxy", "machine",
      "“snap” is not environment, systemd, apt, docker or winhttp" },
    { "[system-proxy]\nmachine=WinHTTP\n", 2, "system-proxy", "machine", "“WinHTTP”" },
  };

  g_assert_cmpuint (ph_config_get_transparent (def)->len, ==, 0);
  g_assert_cmpint (ph_config_get_capture (def, &iface), ==, PH_CAPTURE_OFF);
  g_assert_null (iface);
  g_assert_cmpuint (ph_config_get_mark (def), ==, 28776);
  ports = ph_config_get_capture_ports (def, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpuint (ports[0], ==, 80);
  g_assert_cmpuint (ports[1], ==, 443);
  g_assert_true (ph_config_get_socks_users (def) == NULL
                 || ph_config_get_socks_users (def)[0] == NULL);
  g_assert_cmpstrv (ph_config_get_machine_proxy (def), ((const char *[]){ NULL }));

  cfg = load_ok (f, "[upstream]\nhost=h.example\n[listener]\nallow=192.168.1.0/24\n"
                    "socks-users=alice; bob.b@corp\n"
                    "[transparent]\naddress=0.0.0.0:3129;[::1]:3129\nports=443, 8443\n"
                    "mark=7\ncapture=gateway   lan0\n");
  g_assert_cmpuint (ph_config_get_transparent (cfg)->len, ==, 2);
  g_assert_cmpint (ph_config_get_capture (cfg, &iface), ==, PH_CAPTURE_GATEWAY);
  g_assert_cmpstr (iface, ==, "lan0");
  g_assert_cmpuint (ph_config_get_mark (cfg), ==, 7);
  ports = ph_config_get_capture_ports (cfg, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpuint (ports[1], ==, 8443);
  g_assert_cmpstrv (ph_config_get_socks_users (cfg),
                    ((const char *[]){ "alice", "bob.b@corp", NULL }));
  g_assert_false (ph_config_same_listeners (def, cfg));
  g_clear_pointer (&cfg, ph_config_unref);

  /* [system-proxy] machine=: any of the five words (Linux's and Windows', on every system),
   * each once, in the table's order. */
  cfg = load_ok (f, "[upstream]\nhost=h.example\n[system-proxy]\n"
                    "machine=docker; winhttp apt,environment , apt systemd\n");
  g_assert_cmpstrv (
      ph_config_get_machine_proxy (cfg),
      ((const char *[]){ "environment", "systemd", "apt", "docker", "winhttp", NULL }));
  g_assert_cmpstr (ph_config_get_value (cfg, "system-proxy.machine"), ==,
                   "docker; winhttp apt,environment , apt systemd");

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *path = NULL;
      g_autofree char *text = g_strconcat ("[upstream]\nhost=h.example\n", bad[i].text, NULL);
      g_autofree char *msg = load_bad (f, text, &path);

      assert_problem (msg, path, bad[i].line + 2, bad[i].group, bad[i].key, bad[i].needle);
    }
}

static void
test_capture_words (void)
{
  const char *ok[] = { "off", "local", "gateway eth0", " gateway\tlan-1 ", "gateway br0.10" };
  const char *bad[] = { "",
                        "on",
                        "gateway",
                        "gateway a b",
                        "local x",
                        "gateway ../x",
                        "gateway abcdefghijklmnop",
                        "gateway a\"b",
                        "gateway a;b" };

  for (gsize i = 0; i < G_N_ELEMENTS (ok); i++)
    {
      g_autofree char *iface = NULL;
      PhCaptureMode mode;
      g_assert_true (ph_capture_mode_parse (ok[i], &mode, &iface));
      g_assert_true ((mode == PH_CAPTURE_GATEWAY) == (iface != NULL));
      g_assert_cmpstr (ph_capture_mode_to_string (mode), ==,
                       i == 0   ? "off"
                       : i == 1 ? "local"
                                : "gateway");
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *iface = NULL;
      PhCaptureMode mode;
      g_assert_false (ph_capture_mode_parse (bad[i], &mode, &iface));
      g_assert_null (iface);
    }
}

/* Checks @value for the key @k as ph_config_check_value does; FALSE with the message kept. */
static gboolean
key_takes (const PhConfigKey *k, const char *value)
{
  g_autofree char *name
      = g_strconcat (ph_config_key_get_group (k), ".", ph_config_key_get_name (k), NULL);
  g_autoptr (GError) error = NULL;

  return ph_config_check_value (name, value, &error);
}

/* The key table as tools read it (the Group Policy templates' generator): every row described,
 * and each kind, bound and word what the row's parser really takes. */
static void
test_key_table (void)
{
  guint n = ph_config_get_n_keys ();
  guint choices = 0;

  g_assert_cmpuint (n, ==, g_strv_length ((GStrv) ph_config_list_keys ()));
  for (guint i = 0; i < n; i++)
    {
      const PhConfigKey *k = ph_config_get_key (i);
      const char *const *words = ph_config_key_get_words (k);
      g_autofree char *name
          = g_strconcat (ph_config_key_get_group (k), ".", ph_config_key_get_name (k), NULL);
      guint min = ph_config_key_get_min (k), max = ph_config_key_get_max (k);
      g_autofree char *text = NULL;

      g_test_message ("%s", name);
      g_assert_cmpstr (name, ==, ph_config_list_keys ()[i]);
      g_assert_cmpstr (ph_config_key_get_default (k), ==, ph_config_get_default (name));
      g_assert_true (key_takes (k, ph_config_key_get_default (k)));
      g_assert_nonnull (ph_config_key_get_summary (k));
      g_assert_cmpuint (strlen (ph_config_key_get_summary (k)), >, 3);
      g_assert_nonnull (ph_config_key_get_explanation (k));
      g_assert_true (g_str_has_suffix (ph_config_key_get_explanation (k), "."));
      switch (ph_config_key_get_kind (k))
        {
          case PH_CONFIG_KIND_UINT:
          case PH_CONFIG_KIND_UINT_OR_AUTO:
            g_assert_cmpuint (min, <=, max);
            g_assert_cmpuint (max, >, 0);
            text = g_strdup_printf ("%u", min);
            g_assert_true (key_takes (k, text));
            g_free (text);
            text = g_strdup_printf ("%u", max);
            g_assert_true (key_takes (k, text));
            g_free (text);
            text = g_strdup_printf ("%" G_GUINT64_FORMAT, (guint64) max + 1);
            g_assert_false (key_takes (k, text));
            if (min > 0)
              {
                g_free (text);
                text = g_strdup_printf ("%u", min - 1);
                g_assert_false (key_takes (k, text));
              }
            g_assert_true (ph_config_key_get_kind (k) == PH_CONFIG_KIND_UINT
                           || key_takes (k, "auto"));
            g_assert_null (words);
            break;
          case PH_CONFIG_KIND_DURATION:
            g_assert_cmpuint (min, >, 0);
            g_assert_cmpuint (min, <, max);
            text = g_strdup_printf ("%ums", min);
            g_assert_true (key_takes (k, text));
            g_free (text);
            text = g_strdup_printf ("%ums", min - 1);
            g_assert_false (key_takes (k, text));
            g_free (text);
            text = g_strdup_printf ("%ums", max);
            g_assert_true (key_takes (k, text));
            g_free (text);
            text = g_strdup_printf ("%" G_GUINT64_FORMAT "ms", (guint64) max + 1);
            g_assert_false (key_takes (k, text));
            g_assert_null (words);
            break;
          case PH_CONFIG_KIND_BOOL:
            g_assert_true (key_takes (k, "true"));
            g_assert_true (key_takes (k, "false"));
            g_assert_false (key_takes (k, "1"));
            g_assert_null (words);
            break;
          case PH_CONFIG_KIND_CHOICE:
            choices++;
            g_assert_nonnull (words);
            g_assert_cmpuint (g_strv_length ((GStrv) words), >=, 2);
            for (guint w = 0; words[w] != NULL; w++)
              g_assert_true (key_takes (k, words[w]));
            g_assert_false (key_takes (k, "no-such-word"));
            /* The default is one of them, or empty: decided by other keys (upstream.verify). */
            g_assert_true (*ph_config_key_get_default (k) == '\0'
                           || g_strv_contains (words, ph_config_key_get_default (k)));
            break;
          case PH_CONFIG_KIND_STRING:
          case PH_CONFIG_KIND_LIST:
            g_assert_cmpuint (min, ==, 0);
            g_assert_cmpuint (max, ==, 0);
            g_assert_null (words);
            break;
          default:
            g_assert_not_reached ();
        }
    }
  /* failover, http2, verify, ktls, when-unreachable, portal, system-proxy mode, log level. */
  g_assert_cmpuint (choices, ==, 8);
  g_assert_cmpint (ph_config_key_get_kind (ph_config_get_key (0)), ==, PH_CONFIG_KIND_LIST);
}

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* A failed check fails its case, and the other cases still run. */
  g_test_set_nonfatal_assertions ();

  ADD ("/pinhole/config/defaults", test_defaults);
  ADD ("/pinhole/config/full", test_full);
  ADD ("/pinhole/config/verify-modes", test_verify_modes);
  ADD ("/pinhole/config/ktls-modes", test_ktls_modes);
  ADD ("/pinhole/config/problems-reported-together", test_problems_reported_together);
  ADD ("/pinhole/config/syntax-problems", test_syntax_problems);
  ADD ("/pinhole/config/key-set-twice", test_key_set_twice);
  ADD ("/pinhole/config/bad-values", test_bad_values);
  ADD ("/pinhole/config/max-tunnels", test_max_tunnels);
  ADD ("/pinhole/config/missing-host", test_missing_host);
  ADD ("/pinhole/config/verify-pin-without-pins", test_verify_pin_without_pins);
  ADD ("/pinhole/config/password-file-mode", test_password_file_mode);
  ADD ("/pinhole/config/password-file-ok", test_password_file_ok);
  ADD ("/pinhole/config/password-file-problems", test_password_file_problems);
  ADD ("/pinhole/config/username-without-password", test_username_without_password);
  ADD ("/pinhole/config/non-loopback-listener", test_non_loopback_listener);
  ADD ("/pinhole/config/allow", test_allow);
  ADD ("/pinhole/config/unreadable-files", test_unreadable_files);
  ADD ("/pinhole/config/invalid-escape", test_invalid_escape);
  ADD ("/pinhole/config/same", test_same);
  ADD ("/pinhole/config/layers", test_layers);
  ADD ("/pinhole/config/check-value", test_check_value);
  ADD ("/pinhole/config/edit", test_edit);
  ADD ("/pinhole/config/proxies", test_proxies);
  ADD ("/pinhole/config/doctor-target", test_doctor_target);
  ADD ("/pinhole/config/transparent", test_transparent);
  g_test_add_func ("/pinhole/config/key-table", test_key_table);
  g_test_add_func ("/pinhole/config/capture-words", test_capture_words);
  g_test_add_func ("/pinhole/config/parse-duration", test_parse_duration);
  g_test_add_func ("/pinhole/config/parse-listen-address", test_parse_listen_address);

  return g_test_run ();
}
