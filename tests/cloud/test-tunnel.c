/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-tunnel.c: integration tests of the real pinhole-agent binary against a real cloud end
 * (stunnel + Squid with Basic auth) and the test origin, all on loopback; each case in a
 * subprocess of its own, set up by one fixture from its line in a table. */

#define _GNU_SOURCE /* unshare */

#include <glib/gstdio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ph-test-cloud.h"

#define PH_100MB ((guint64) 100 * 1000 * 1000)
#define PH_CASE_TIMEOUT_S 180

/* A password the cloud end does not take; no agent's log may hold it either. */
#define PH_WRONG_PASSWORD "not-the-password"

/* The cloud end a case runs against. */
typedef enum
{
  PH_TUNNEL_CLOUD_SHARED,     /* the binary's, shared by the cases (ph_test_shared_cloud) */
  PH_TUNNEL_CLOUD_SQUID_IDLE, /* its own, whose Squid closes idle client connections after 5 s */
  PH_TUNNEL_CLOUD_TINYPROXY,  /* its own, with tinyproxy in Squid's place */
  PH_TUNNEL_CLOUD_NETNS,      /* its own, in a network namespace of the case's own (with the
                               * agent): the case may change that network (root only) */
  PH_TUNNEL_CLOUD_H2_TWO_STREAMS, /* its own nghttpx, which takes 2 streams per connection */
} PhTunnelCloud;

/* How far the fixture takes the case's agent. */
typedef enum
{
  PH_TUNNEL_AGENT_STARTED, /* fx->agent runs with fx->config */
  PH_TUNNEL_AGENT_CONFIG,  /* fx->config is ready; the case starts the agent (ph_tunnel_start)
                            * once it has taken a baseline or made the peer it points at */
  PH_TUNNEL_AGENT_NONE,
} PhTunnelAgent;

/* One key over ph_test_agent_config's; a value as the file would have it. */
typedef struct
{
  const char *group;
  const char *key;
  const char *value;
} PhTunnelSetting;

typedef struct _PhTunnelFixture PhTunnelFixture;

typedef struct
{
  const char *name; /* /pinhole/tunnel/NAME, and the name of the case's agent */
  void (*func) (PhTunnelFixture *fx);
  PhTunnelCloud cloud;
  PhTunnelAgent agent;
  PhTunnelSetting settings[3]; /* ends at the first without a group */
  gboolean wrong_password;     /* the agent reads PH_WRONG_PASSWORD from a file of the case's */
  gboolean needs_sighup;       /* skipped against the Windows agent (PH_AGENT_OS=windows) */
  gboolean linux_agent_only;   /* likewise: see ph_tunnel_may_run() */
  gboolean h2_only;            /* only in tunnel-h2 (PH_CLOUD_FRONT=nghttpx) */
} PhTunnelCase;

struct _PhTunnelFixture
{
  const PhTunnelCase *tc;
  gboolean skipped;
  PhTestCloud *cloud;     /* the shared cloud end, or own_cloud */
  PhTestCloud *own_cloud; /* the case's own, stopped in teardown */
  GKeyFile *config;
  PhTestAgent *agent;
  char *proxy;         /* the agent as a proxy URL, for curl -x */
  char *password_file; /* the case's own (ph_tunnel_write_password), removed in teardown */
};

/* --- helpers --- */

#define ph_assert_curl_ok(c)                                                                       \
  G_STMT_START                                                                                     \
  {                                                                                                \
    if ((c)->exit_status != 0)                                                                     \
      g_printerr ("# curl exited %d: %s\n", (c)->exit_status, (c)->err);                           \
    g_assert_cmpint ((c)->exit_status, ==, 0);                                                     \
  }                                                                                                \
  G_STMT_END

static char *
ph_url (const char *scheme, guint16 port, const char *path)
{
  return g_strdup_printf ("%s://127.0.0.1:%u%s", scheme, port, path);
}

/* The refusal form of CONTRACT.md, its text body's Content-Type included. */
static void
ph_assert_refusal (PhTestAgent *agent, const char *head, const char *body, int status,
                   const char *kind)
{
  g_autofree char *content_type = NULL;

  ph_test_assert_refusal (agent, head, body, status, kind);
  content_type = ph_test_head_header (head, "Content-Type");
  g_assert_cmpstr (content_type, ==, "text/plain; charset=utf-8");
}

/* Waits for an access line with all of @fields (e.g. "method=CONNECT", "status=200") and
 * returns it; NULL, with the agent's log printed, when none came. */
static char *
ph_wait_access (PhTestAgent *agent, const char *const *fields, guint timeout_ms)
{
  g_autoptr (GPtrArray) lines = NULL;

  if (ph_test_agent_wait_access (agent, fields, 1, timeout_ms) == 0)
    {
      g_autofree char *want = g_strjoinv (" ", (char **) fields);
      g_autofree char *why = g_strdup_printf ("no access line with [%s]", want);

      ph_test_agent_print_log (agent, why);
      return NULL;
    }
  lines = ph_test_agent_access_lines (agent, fields);
  return g_strdup (g_ptr_array_index (lines, 0));
}

/* How many access lines have @field. */
static guint
ph_access_count (PhTestAgent *agent, const char *field)
{
  g_autoptr (GPtrArray) lines
      = ph_test_agent_access_lines (agent, (const char *const[]){ field, NULL });

  return lines->len;
}

static guint64
ph_access_field (const char *line, const char *field)
{
  g_autofree char *key = g_strconcat (" ", field, "=", NULL);
  const char *p = strstr (line, key);

  g_assert_nonnull (p);
  return g_ascii_strtoull (p + strlen (key), NULL, 10);
}

static char *
ph_file_sha256 (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GMappedFile) map = g_mapped_file_new (path, FALSE, &error);

  g_assert_no_error (error);
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                      (const guchar *) g_mapped_file_get_contents (map),
                                      g_mapped_file_get_length (map));
}

/* A scratch file path in the cloud dir; removed by the caller. */
static char *
ph_scratch_path (PhTestCloud *cloud, const char *name)
{
  g_autofree char *file = g_strdup_printf ("%s.%d", name, (int) getpid ());

  return g_build_filename (cloud->dir, file, NULL);
}

/* Writes @len bytes of random-looking data and returns its hex SHA-256. */
static char *
ph_write_random_file (const char *path, guint64 len)
{
  const gsize block_len = 1024 * 1024;
  g_autofree guint32 *block = g_new (guint32, block_len / 4);
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GError) error = NULL;
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileOutputStream) out = NULL;
  g_autoptr (GRand) rand = g_rand_new ();

  for (gsize i = 0; i < block_len / 4; i++)
    block[i] = g_rand_int (rand);
  out = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_PRIVATE, NULL, &error);
  g_assert_no_error (error);
  for (guint64 done = 0, index = 0; done < len; index++)
    {
      gsize n = (gsize) MIN ((guint64) block_len, len - done);

      /* No two blocks alike, so a relay that repeats or drops one is caught. */
      block[0] = (guint32) index;
      g_checksum_update (sum, (const guchar *) block, (gssize) n);
      g_output_stream_write_all (G_OUTPUT_STREAM (out), block, n, NULL, NULL, &error);
      g_assert_no_error (error);
      done += n;
    }
  g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &error);
  g_assert_no_error (error);
  return g_strdup (g_checksum_get_string (sum));
}

static gboolean
ph_origin_has_ipv6 (guint16 port)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) conn = NULL;
  g_autoptr (GInetAddress) lo6 = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (lo6, port);

  g_socket_client_set_timeout (client, 2);
  conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, NULL);
  return conn != NULL;
}

static char *
ph_random_pin (void)
{
  guint8 digest[32];
  g_autofree char *b64 = NULL;

  for (gsize i = 0; i < sizeof digest; i++)
    digest[i] = (guint8) g_random_int_range (0, 256);
  b64 = g_base64_encode (digest, sizeof digest);
  return g_strconcat ("sha256//", b64, NULL);
}

static char *
ph_basic_token (const char *user, const char *password)
{
  g_autofree char *pair = g_strconcat (user, ":", password, NULL);

  return g_base64_encode ((const guchar *) pair, strlen (pair));
}

static gboolean
ph_head_has_field (const char *head, const char *name)
{
  g_autofree char *value = ph_test_head_header (head, name);

  return value != NULL;
}

static guint
ph_head_count_field (const char *head, const char *name)
{
  g_auto (GStrv) lines = g_strsplit (head, "\r\n", -1);
  gsize len = strlen (name);
  guint n = 0;

  for (guint i = 1; lines[i] != NULL; i++)
    {
      if (g_ascii_strncasecmp (lines[i], name, len) == 0 && lines[i][len] == ':')
        n++;
    }
  return n;
}

static void
ph_assert_hello_via (PhTestAgent *agent, PhTestCloud *cloud)
{
  g_autofree char *proxy = ph_test_agent_proxy_url (agent);
  g_autofree char *url = ph_url ("http", cloud->origin_http_port, "/hello");
  g_autoptr (PhTestCurl) c = ph_test_curl ("-x", proxy, url, NULL);

  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "hello\n");
}

/* PH_AGENT_OS=windows: PH_AGENT is the Windows agent under Wine (tests/windows/wine-agent.sh),
 * which has no Unix signals beyond the stop that Wine turns into a console Ctrl-C. */
static gboolean
agent_is_windows (void)
{
  return g_strcmp0 (g_getenv ("PH_AGENT_OS"), "windows") == 0;
}

/* --- the fixture: what a case's line in ph_cases asks for, and a redaction check after --- */

/* Starts the case's agent (named after the case) with fx->config. */
static PhTestAgent *
ph_tunnel_start (PhTunnelFixture *fx)
{
  g_assert_null (fx->agent);
  fx->agent = ph_test_agent_start (fx->cloud, fx->tc->name, fx->config);
  fx->proxy = ph_test_agent_proxy_url (fx->agent);
  return fx->agent;
}

/* Points fx->config at a password file of the case's own, holding @password. */
static void
ph_tunnel_write_password (PhTunnelFixture *fx, const char *password)
{
  g_autoptr (GError) error = NULL;

  if (fx->password_file == NULL)
    fx->password_file = ph_scratch_path (fx->cloud, "password");
  g_file_set_contents_full (fx->password_file, password, -1, G_FILE_SET_CONTENTS_NONE, 0600,
                            &error);
  g_assert_no_error (error);
  g_key_file_set_string (fx->config, "upstream", "password-file", fx->password_file);
}

/* In the main process: whether the case can run here; a skip (or, under CI=true, a failure)
 * when it cannot. */
static gboolean
ph_tunnel_may_run (const PhTunnelCase *tc)
{
  if (!ph_test_require_tools ())
    return FALSE;
  if (tc->needs_sighup && agent_is_windows ())
    {
      g_test_skip ("the Windows agent has no SIGHUP; its service reloads on the SCM's "
                   "parameter change and on file changes");
      return FALSE;
    }
  if (tc->linux_agent_only && agent_is_windows ())
    {
      /* Measured: Wine's socket layer takes longer than the case's time for the 4,000 sockets
       * of 2,000 tunnels, and a killed case leaves them on the shared cloud end for the next. The
       * Windows agent's limit is not derived from a descriptor limit either (there is none). */
      g_test_skip (tc->cloud == PH_TUNNEL_CLOUD_NETNS
                       ? "a network namespace of the case's own is a Linux thing"
                       : "thousands of idle tunnels are a test of the Linux agent's derived "
                         "limit; under Wine they outlast the case's time");
      return FALSE;
    }
  if (tc->cloud == PH_TUNNEL_CLOUD_TINYPROXY
      && !g_file_test ("/usr/bin/tinyproxy", G_FILE_TEST_IS_EXECUTABLE))
    {
      if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
        g_test_fail_printf ("tinyproxy is not installed (tests/install-deps.sh installs it)");
      else
        g_test_skip ("tinyproxy is not installed");
      return FALSE;
    }
  return TRUE;
}

/* Against stunnel (no ALPN), [upstream] http2=require: a CONNECT and a plain request are both
 * refused with 502 upstream-protocol and a message that names the setting (nothing goes over
 * HTTP/1.1 behind the setting's back). */
static void
ph_tunnel_http2_require (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *body = NULL;
  g_autofree char *head = ph_test_exchange (agent->port, connect, &body, NULL, 15000);
  g_autofree char *get_body = NULL;
  g_autofree char *get_head = NULL;

  ph_assert_refusal (agent, head, body, 502, "upstream-protocol");
  g_assert_nonnull (strstr (body, "http2=require"));
  get_head = ph_test_exchange (agent->port, get, &get_body, NULL, 15000);
  g_assert_nonnull (get_head);
  g_assert_cmpint (ph_test_head_status (get_head), ==, 502);
  g_assert_nonnull (strstr (get_body, "http2=require"));
}

/* Runs `ip ARGS` (in the case's network namespace), which must succeed. */
static void
ph_run_ip (const char *args)
{
  g_autofree char *cmd = g_strconcat ("ip ", args, NULL);
  g_autofree char *err = NULL;
  g_autoptr (GError) error = NULL;
  int status = 0;

  if (!g_spawn_command_line_sync (cmd, NULL, &err, &status, &error)
      || !g_spawn_check_wait_status (status, NULL))
    g_error ("%s: %s", cmd, error != NULL ? error->message : err);
}

static void
ph_tunnel_setup (PhTunnelFixture *fx, gconstpointer data)
{
  const PhTunnelCase *tc = data;

  fx->tc = tc;
  if (!g_test_subprocess ())
    {
      if (!ph_tunnel_may_run (tc))
        {
          fx->skipped = TRUE;
          return;
        }
      /* Here, so that it outlives the case's subprocess, which attaches to it. */
      if (tc->cloud == PH_TUNNEL_CLOUD_SHARED)
        ph_test_shared_cloud ();
    }
  if (!ph_test_case_runs_here ())
    return; /* the rest in the case's subprocess */

  switch (tc->cloud)
    {
      case PH_TUNNEL_CLOUD_SHARED:
        fx->cloud = ph_test_shared_cloud ();
        break;
      case PH_TUNNEL_CLOUD_SQUID_IDLE:
        fx->own_cloud = ph_test_cloud_new ("PH_CLOUD_ORIGIN=1", "PH_CLOUD_SQUID_IDLE=5", NULL);
        fx->cloud = fx->own_cloud;
        break;
      case PH_TUNNEL_CLOUD_TINYPROXY:
        fx->own_cloud = ph_test_cloud_new ("PH_CLOUD_ORIGIN=1", "PH_CLOUD_PROXY=tinyproxy", NULL);
        fx->cloud = fx->own_cloud;
        break;
      case PH_TUNNEL_CLOUD_H2_TWO_STREAMS:
        {
          g_autofree char *conf = g_strdup_printf ("%s/pinhole-h2-two-streams-%d.conf",
                                                   g_get_tmp_dir (), (int) getpid ());
          g_autofree char *env = g_strconcat ("PH_CLOUD_NGHTTPX_CONF=", conf, NULL);

          g_assert_true (
              g_file_set_contents (conf, "frontend-http2-max-concurrent-streams=2\n", -1, NULL));
          fx->own_cloud = ph_test_cloud_new ("PH_CLOUD_ORIGIN=1", env, NULL);
          fx->cloud = fx->own_cloud;
          g_unlink (conf);
        }
        break;
      case PH_TUNNEL_CLOUD_NETNS:
        /* The case's subprocess moves to a new network namespace, which goes when its last
         * process (this one, the cloud end, the agent) exits. */
        if (unshare (CLONE_NEWNET) != 0)
          {
            if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
              g_error ("CI=true and no network namespace: unshare: %s", g_strerror (errno));
            g_test_skip ("cannot make a network namespace here (needs root)");
            fx->skipped = TRUE;
            return;
          }
        ph_run_ip ("link set lo up");
        fx->own_cloud = ph_test_cloud_new ("PH_CLOUD_ORIGIN=1", NULL);
        fx->cloud = fx->own_cloud;
        break;
    }
  if (tc->agent == PH_TUNNEL_AGENT_NONE)
    return;
  fx->config = ph_test_agent_config (fx->cloud);
  for (gsize i = 0; i < G_N_ELEMENTS (tc->settings) && tc->settings[i].group != NULL; i++)
    g_key_file_set_value (fx->config, tc->settings[i].group, tc->settings[i].key,
                          tc->settings[i].value);
  if (tc->wrong_password)
    ph_tunnel_write_password (fx, PH_WRONG_PASSWORD);
  if (tc->agent == PH_TUNNEL_AGENT_STARTED)
    ph_tunnel_start (fx);
}

static void
ph_tunnel_test (PhTunnelFixture *fx, gconstpointer data)
{
  if (fx->skipped || !ph_test_case_fork (PH_CASE_TIMEOUT_S))
    return;
  fx->tc->func (fx);
}

static void
ph_tunnel_teardown (PhTunnelFixture *fx, gconstpointer data)
{
  guint n_logs;

  if (fx->skipped || !ph_test_case_runs_here ())
    return;
  /* A clean exit on SIGTERM, as for every agent (a case that stopped it already checked; this
   * only reads the status again); and stopped before its log is read, so the log is whole. */
  if (fx->agent != NULL)
    ph_test_agent_stop_ok (fx->agent);
  g_clear_pointer (&fx->agent, ph_test_agent_free);
  /* Every agent this case started, whichever case runs and whatever ran before it. */
  n_logs = ph_test_cloud_assert_agents_redacted (fx->cloud, PH_WRONG_PASSWORD);
  g_test_message ("redaction: no password in the %u log files of this case's agents", n_logs);
  if (fx->password_file != NULL)
    g_unlink (fx->password_file);
  g_free (fx->password_file);
  g_free (fx->proxy);
  g_clear_pointer (&fx->config, g_key_file_unref);
  g_clear_pointer (&fx->own_cloud, ph_test_cloud_free);
}

/* --- cases --- */

static void
ph_tunnel_connect_https (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const char *proxy = fx->proxy;
  g_autofree char *url = ph_url ("https", cloud->origin_https_port, "/hello");
  g_autofree char *by_name
      = g_strdup_printf ("https://localhost:%u/hello", cloud->origin_https_port);
  g_autofree char *target = g_strdup_printf ("target=127.0.0.1:%u", cloud->origin_https_port);
  g_autofree char *name_target = g_strdup_printf ("target=localhost:%u", cloud->origin_https_port);
  g_autofree char *line = NULL;
  g_autoptr (PhTestCurl) c = NULL;

  c = ph_test_curl ("-x", proxy, "--cacert", cloud->origin_ca, url, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "hello\n");
  g_clear_pointer (&c, ph_test_curl_free);

  c = ph_test_curl ("-x", proxy, "--cacert", cloud->origin_ca, by_name, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "hello\n");
  g_clear_pointer (&c, ph_test_curl_free);

  if (ph_origin_has_ipv6 (cloud->origin_https_port))
    {
      g_autofree char *v6 = g_strdup_printf ("https://[::1]:%u/hello", cloud->origin_https_port);

      c = ph_test_curl ("-x", proxy, "-g", "--cacert", cloud->origin_ca, v6, NULL);
      ph_assert_curl_ok (c);
      g_assert_cmpstr (c->out_str, ==, "hello\n");
      g_clear_pointer (&c, ph_test_curl_free);
    }
  else
    {
      g_test_message ("origin has no [::1] listener; IPv6 CONNECT not tried");
    }

  line = ph_wait_access (agent, (const char *[]){ "method=CONNECT", target, "status=200", NULL },
                         5000);
  g_assert_nonnull (line);
  g_assert_true (g_regex_match_simple ("access client=127\\.0\\.0\\.1:[0-9]+ method=CONNECT "
                                       "target=\\S+ status=200 up=[0-9]+ down=[0-9]+ "
                                       "duration=[0-9.]+s",
                                       line, 0, 0));
  g_assert_cmpuint (ph_access_field (line, "down"), >, 6);
  g_clear_pointer (&line, g_free);
  line = ph_wait_access (agent, (const char *[]){ "method=CONNECT", name_target, NULL }, 5000);
  g_assert_nonnull (line);
}

static gboolean ph_tunnel_h2 (void);

static void
ph_tunnel_plain_get (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const char *proxy = fx->proxy;
  g_autofree char *url = ph_url ("http", cloud->origin_http_port, "/hello");
  g_autofree char *missing = ph_url ("http", cloud->origin_http_port, "/no-such-thing");
  g_autofree char *line = NULL;
  g_autoptr (PhTestCurl) c = NULL;

  c = ph_test_curl ("-x", proxy, "-w", "%{http_code}", url, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "hello\n200");
  g_clear_pointer (&c, ph_test_curl_free);

  /* Origin answers other than 200 pass through as they are. */
  c = ph_test_curl ("-x", proxy, "-w", "%{http_code}", missing, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "not found\n404");

  /* Against the HTTP/2 front, plain requests are streams of the proxy's connection too. */
  line = ph_wait_access (
      agent,
      (const char *[]){ "method=GET", "status=200", ph_tunnel_h2 () ? "upstream=h2" : NULL, NULL },
      5000);
  g_assert_nonnull (line);
}

/* The cloud proxy's own answers (here Squid's 503 for a target that
 * refuses connections) reach the client as they are, not as a 502. */
static void
ph_tunnel_proxy_answers (PhTunnelFixture *fx)
{
  PhTestAgent *agent = fx->agent;
  guint16 closed = ph_test_free_port ();
  g_autofree char *connect = ph_test_connect_request (closed);
  g_autofree char *get = ph_test_get_request (closed, "/hello");

  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *body = NULL;
      g_autofree char *head
          = ph_test_exchange (agent->port, i == 0 ? connect : get, &body, NULL, 15000);
      g_autofree char *kind = NULL;

      g_assert_nonnull (head);
      g_assert_cmpint (ph_test_head_status (head), ==, 503);
      kind = ph_test_head_header (head, "X-Pinhole-Error");
      g_assert_null (kind);
      g_assert_nonnull (body);
      g_assert_nonnull (strstr (body, "squid"));
    }
}

static void
ph_tunnel_chunked_post (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  const char *proxy = fx->proxy;
  g_autofree char *url = ph_url ("http", cloud->origin_http_port, "/sha256");
  g_autofree char *path = ph_scratch_path (cloud, "chunked-post.bin");
  g_autofree char *at_path = g_strconcat ("@", path, NULL);
  g_autofree char *sha = ph_write_random_file (path, 3 * 1000 * 1000 + 17);
  g_autofree char *expected = g_strdup_printf ("%s %u\n", sha, 3 * 1000 * 1000 + 17);
  g_autoptr (PhTestCurl) c = NULL;

  c = ph_test_curl ("-x", proxy, "-H", "Transfer-Encoding: chunked", "-H",
                    "Expect:", "--data-binary", at_path, url, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, expected);
  g_clear_pointer (&c, ph_test_curl_free);

  /* The same through a tunnel, where the agent only relays bytes. */
  c = ph_test_curl ("-x", proxy, "-p", "-H", "Transfer-Encoding: chunked", "--data-binary", at_path,
                    url, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, expected);
  g_unlink (path);
}

static void
ph_tunnel_expect_continue (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  const char *proxy = fx->proxy;
  g_autofree char *url = ph_url ("http", cloud->origin_http_port, "/sha256");
  g_autofree char *path = ph_scratch_path (cloud, "expect.bin");
  g_autofree char *at_path = g_strconcat ("@", path, NULL);
  g_autofree char *sha = ph_write_random_file (path, 2 * 1000 * 1000);
  g_autofree char *expected = g_strdup_printf ("%s %u\n", sha, 2 * 1000 * 1000);
  g_autoptr (PhTestCurl) c = NULL;
  gint64 start = g_get_monotonic_time ();

  /* curl waits up to --expect100-timeout for the interim answer; a fast finish proves the
   * agent relayed `100 Continue` instead of letting the client time out. */
  c = ph_test_curl ("-v", "-x", proxy, "-H", "Expect: 100-continue", "--expect100-timeout", "20",
                    "--data-binary", at_path, url, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, expected);
  if (strstr (c->err, "< HTTP/1.1 100 Continue") == NULL)
    g_printerr ("# curl -v:\n%s\n", c->err);
  g_assert_nonnull (strstr (c->err, "< HTTP/1.1 100 Continue"));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_USEC_PER_SEC);
  g_unlink (path);
}

/* A client that does not wait for "200 Connection established" before
 * speaking (optimistic clients, pipelined CONNECT): its first bytes must
 * reach the origin, not be dropped with the CONNECT head. */
static void
ph_tunnel_early_data (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *authority = g_strdup_printf ("127.0.0.1:%u", cloud->origin_http_port);
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *both
      = g_strdup_printf ("%sGET /hello HTTP/1.1\r\nHost: %s\r\n\r\n", connect, authority);
  g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
  g_autoptr (GByteArray) body = g_byte_array_new ();
  g_autofree char *established = NULL;
  g_autofree char *head = NULL;

  g_assert_true (ph_test_conn_send (conn, both, -1));
  established = ph_test_conn_read_head (conn, 10000);
  g_assert_nonnull (established);
  g_assert_cmpint (ph_test_head_status (established), ==, 200);
  head = ph_test_conn_read_head (conn, 10000);
  g_assert_nonnull (head);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_assert_cmpuint (ph_test_conn_read_body (conn, 6, body, 10000), ==, 6);
  g_assert_cmpmem (body->data, body->len, "hello\n", 6);
  /* Stopped while the client still holds its tunnel: the agent drains it and exits 0. */
  ph_test_agent_stop_ok (agent);
}

static void
ph_tunnel_keep_alive (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const char *proxy = fx->proxy;
  g_autofree char *url = ph_url ("http", cloud->origin_http_port, "/hello");
  g_autofree char *request = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
  g_autoptr (GSocketAddress) local = g_socket_get_local_address (conn->socket, NULL);
  g_autofree char *client = g_strdup_printf (
      "client=127.0.0.1:%u", g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local)));
  g_autoptr (PhTestCurl) c = NULL;
  g_auto (GStrv) counts = NULL;
  guint connects = 0;

  /* Three requests, one client connection. */
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *head = NULL;
      g_autoptr (GByteArray) body = g_byte_array_new ();

      g_assert_true (ph_test_conn_send (conn, request, -1));
      head = ph_test_conn_read_head (conn, 10000);
      g_assert_nonnull (head);
      g_assert_cmpint (ph_test_head_status (head), ==, 200);
      g_assert_cmpuint (ph_test_conn_read_body (conn, 6, body, 10000), ==, 6);
      g_assert_cmpmem (body->data, body->len, "hello\n", 6);
    }
  {
    g_autofree char *line = ph_wait_access (agent, (const char *[]){ client, NULL }, 5000);

    g_assert_nonnull (line);
    g_assert_true (ph_test_agent_wait_log (agent, client, 3, 5000));
  }

  /* curl reuses its proxy connection for several URLs: one connect in total. */
  c = ph_test_curl ("-x", proxy, "-w", "%{num_connects}\n", url, url, url, NULL);
  ph_assert_curl_ok (c);
  counts = g_strsplit (c->out_str, "\n", -1);
  for (guint i = 0; counts[i] != NULL; i++)
    connects += (guint) g_ascii_strtoull (counts[i], NULL, 10);
  g_assert_cmpstr (c->out_str, ==, "hello\n1\nhello\n0\nhello\n0\n");
  g_assert_cmpuint (connects, ==, 1);
  /* Stopped while the client still holds its kept-alive connection. */
  ph_test_agent_stop_ok (agent);
}

static void
ph_assert_prefix (const char *text, const char *prefix)
{
  if (!g_str_has_prefix (text, prefix))
    g_printerr ("# expected `%s…`, got:\n%s\n", prefix, text);
  g_assert_true (g_str_has_prefix (text, prefix));
}

static void
ph_assert_no_field (const char *head, const char *name)
{
  if (ph_head_has_field (head, name))
    g_printerr ("# `%s` should not have been forwarded:\n%s\n", name, head);
  g_assert_false (ph_head_has_field (head, name));
}

static void
ph_tunnel_hop_by_hop (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  const char *proxy = fx->proxy;
  g_autofree char *url = ph_url ("http", cloud->origin_http_port, "/headers");
  g_autoptr (PhTestRecorder) rec = ph_test_recorder_new (PH_TEST_RECORDER_PROXY_OK);
  g_autoptr (GKeyFile) rec_kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) rec_agent = NULL;
  g_autofree char *rec_proxy = NULL;
  g_autofree char *token = ph_basic_token (cloud->user, cloud->password);
  g_autofree char *expected_auth = g_strconcat ("Basic ", token, NULL);
  g_autofree char *seen_auth = NULL;
  g_autoptr (PhTestCurl) c = NULL;
  const char *const headers[] = {
    "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==",
    "-H", "Proxy-Connection: keep-alive",
    "-H", "Keep-Alive: timeout=5",
    "-H", "Connection: X-Secret, keep-alive",
    "-H", "X-Secret: 1",
    "-H", "X-Kept: yes",
  };
  g_autoptr (GPtrArray) args = g_ptr_array_new ();

  /* End to end: what the origin sees behind agent, stunnel and Squid. */
  g_ptr_array_add (args, "-x");
  g_ptr_array_add (args, (gpointer) proxy);
  for (gsize i = 0; i < G_N_ELEMENTS (headers); i++)
    g_ptr_array_add (args, (gpointer) headers[i]);
  g_ptr_array_add (args, url);
  g_ptr_array_add (args, NULL);
  c = ph_test_curlv ((const char *const *) args->pdata);
  ph_assert_curl_ok (c);
  ph_assert_prefix (c->out_str, "GET /headers HTTP/1.1\r\n");
  ph_assert_no_field (c->out_str, "Proxy-Authorization");
  ph_assert_no_field (c->out_str, "Proxy-Connection");
  ph_assert_no_field (c->out_str, "Keep-Alive");
  ph_assert_no_field (c->out_str, "X-Secret");
  g_assert_null (strstr (c->out_str, "Zm9vOmJhcg=="));
  g_assert_true (ph_head_has_field (c->out_str, "X-Kept"));
  g_clear_pointer (&c, ph_test_curl_free);

  /* What the agent itself sends upstream (Squid would hide some of it): the recorder plays a
   * proxy that echoes the request head it got. */
  g_key_file_set_integer (rec_kf, "upstream", "port", ph_test_recorder_get_port (rec));
  g_key_file_set_string (rec_kf, "upstream", "server-name", "pinhole-recorder.test");
  g_key_file_set_string (rec_kf, "upstream", "pins", ph_test_recorder_get_pin (rec));
  rec_agent = ph_test_agent_start (cloud, "hop-by-hop-recorder", rec_kf);
  rec_proxy = ph_test_agent_proxy_url (rec_agent);
  g_ptr_array_index (args, 1) = rec_proxy;
  c = ph_test_curlv ((const char *const *) args->pdata);
  ph_assert_curl_ok (c);
  g_test_message ("agent sent upstream:\n%s", c->out_str);
  ph_assert_prefix (c->out_str, "GET http://127.0.0.1:");
  g_assert_cmpuint (ph_head_count_field (c->out_str, "Proxy-Authorization"), ==, 1);
  seen_auth = ph_test_head_header (c->out_str, "Proxy-Authorization");
  g_assert_cmpstr (seen_auth, ==, expected_auth);
  g_assert_null (strstr (c->out_str, "Zm9vOmJhcg=="));
  ph_assert_no_field (c->out_str, "Proxy-Connection");
  ph_assert_no_field (c->out_str, "Keep-Alive");
  ph_assert_no_field (c->out_str, "X-Secret");
  g_assert_true (ph_head_has_field (c->out_str, "X-Kept"));
  g_assert_true (ph_head_has_field (c->out_str, "Host"));
  ph_test_agent_stop_ok (rec_agent);
}

static void
ph_tunnel_bulk_download (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const char *proxy = fx->proxy;
  g_autofree char *path_part = g_strdup_printf ("/bytes/%" G_GUINT64_FORMAT, PH_100MB);
  g_autofree char *url = ph_url ("http", cloud->origin_http_port, path_part);
  g_autofree char *out = ph_scratch_path (cloud, "download.bin");
  g_autofree char *expected = ph_test_pattern_sha256 (PH_100MB);
  g_autofree char *got = NULL;
  g_autofree char *target = g_strdup_printf ("target=127.0.0.1:%u", cloud->origin_http_port);
  g_autofree char *line = NULL;
  g_autoptr (PhTestCurl) c = NULL;
  gint64 start = g_get_monotonic_time ();

  /* -p: a CONNECT tunnel even for http://, so the agent relays 100 MB of opaque bytes. */
  c = ph_test_curl ("-x", proxy, "-p", "-o", out, "-w", "%{size_download}", url, NULL);
  ph_assert_curl_ok (c);
  g_test_message ("100 MB down in %.2f s",
                  (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC);
  g_assert_cmpstr (c->out_str, ==, "100000000");
  got = ph_file_sha256 (out);
  g_assert_cmpstr (got, ==, expected);
  g_unlink (out);

  line = ph_wait_access (agent, (const char *[]){ "method=CONNECT", target, "status=200", NULL },
                         5000);
  g_assert_nonnull (line);
  g_assert_cmpuint (ph_access_field (line, "down"), >=, PH_100MB);
}

static void
ph_tunnel_bulk_upload (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const char *proxy = fx->proxy;
  g_autofree char *url = ph_url ("http", cloud->origin_http_port, "/sha256");
  g_autofree char *path = ph_scratch_path (cloud, "upload.bin");
  g_autofree char *sha = ph_write_random_file (path, PH_100MB);
  g_autofree char *expected = g_strdup_printf ("%s %" G_GUINT64_FORMAT "\n", sha, PH_100MB);
  g_autofree char *target = g_strdup_printf ("target=127.0.0.1:%u", cloud->origin_http_port);
  g_autofree char *line = NULL;
  g_autoptr (PhTestCurl) c = NULL;
  gint64 start = g_get_monotonic_time ();

  c = ph_test_curl ("-x", proxy, "-p", "-T", path, url, NULL);
  ph_assert_curl_ok (c);
  g_test_message ("100 MB up in %.2f s",
                  (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC);
  g_assert_cmpstr (c->out_str, ==, expected);
  g_unlink (path);

  line = ph_wait_access (agent, (const char *[]){ "method=CONNECT", target, "status=200", NULL },
                         5000);
  g_assert_nonnull (line);
  g_assert_cmpuint (ph_access_field (line, "up"), >=, PH_100MB);
}

/* verify=ca and pin+ca: the chain and the name are checked; the cloud's
 * self-signed certificate is trusted only when given as ca-file. */
static void
ph_tunnel_verify_ca (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  static const struct
  {
    const char *verify;
    gboolean ca_file;
    const char *server_name;
    int status;
    const char *kind;
  } cases[] = {
    { "ca", TRUE, NULL, 200, NULL },
    { "pin+ca", TRUE, NULL, 200, NULL },
    { "ca", FALSE, NULL, 502, "upstream-tls" },
    { "ca", TRUE, "other-name.test", 502, "upstream-tls" },
    { "pin+ca", FALSE, NULL, 502, "upstream-tls" },
  };
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
      g_autoptr (PhTestAgent) agent = NULL;
      g_autofree char *body = NULL;
      g_autofree char *head = NULL;
      g_autofree char *name = g_strdup_printf ("verify-ca-%zu", i);

      g_key_file_set_string (kf, "upstream", "verify", cases[i].verify);
      /* A certificate no CA vouches for is not an unreachable proxy: the request is refused,
       * never sent directly to the origin (which would answer it), in any locale. */
      g_key_file_set_string (kf, "route", "when-unreachable", "direct");
      if (cases[i].ca_file)
        g_key_file_set_string (kf, "upstream", "ca-file", cloud->cert);
      if (cases[i].server_name != NULL)
        g_key_file_set_string (kf, "upstream", "server-name", cases[i].server_name);
      agent = ph_test_agent_start (cloud, name, kf);
      head = ph_test_exchange (agent->port, get, &body, NULL, 15000);
      g_test_message ("verify=%s ca-file=%d server-name=%s: %s", cases[i].verify, cases[i].ca_file,
                      cases[i].server_name ? cases[i].server_name : "-", body ? body : "(none)");
      if (cases[i].kind == NULL)
        {
          g_assert_nonnull (head);
          g_assert_cmpint (ph_test_head_status (head), ==, cases[i].status);
          g_assert_cmpstr (body, ==, "hello\n");
        }
      else
        {
          ph_assert_refusal (agent, head, body, cases[i].status, cases[i].kind);
          g_assert_nonnull (strstr (body, "not trusted"));
        }
      ph_test_agent_stop_ok (agent);
    }
}

static void
ph_tunnel_pin_mismatch_cloud (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = NULL;
  g_autofree char *wrong_pin = ph_random_pin ();
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *connect = ph_test_connect_request (cloud->origin_https_port);
  guint before;

  /* Before the agent starts: its warm connections must not reach Squid either. */
  before = ph_test_cloud_settled_access_log_lines (cloud, NULL);
  g_key_file_set_string (fx->config, "upstream", "pins", wrong_pin);
  agent = ph_tunnel_start (fx);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *body = NULL;
      g_autofree char *head
          = ph_test_exchange (agent->port, i == 0 ? get : connect, &body, NULL, 15000);

      ph_assert_refusal (agent, head, body, 502, "pin-mismatch");
      /* The body names the key the server really has. */
      if (strstr (body, cloud->pin) == NULL)
        g_printerr ("# body lacks the seen pin %s: %s\n", cloud->pin, body);
      g_assert_nonnull (strstr (body, cloud->pin));
    }
  ph_test_agent_assert_access (agent, (const char *[]){ "error=pin-mismatch", NULL }, 1, 5000);
  ph_test_agent_stop_ok (agent);
  /* Nothing got past stunnel: not even a connection reached Squid. */
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (cloud, NULL), ==, before);
}

static void
ph_tunnel_pin_mismatch_recorder (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  g_autoptr (PhTestRecorder) rec = ph_test_recorder_new (PH_TEST_RECORDER_SILENT);
  PhTestAgent *agent = NULL;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *connect = ph_test_connect_request (cloud->origin_https_port);
  g_autofree char *token = ph_basic_token (cloud->user, cloud->password);
  g_autofree char *password_b64
      = g_base64_encode ((const guchar *) cloud->password, strlen (cloud->password));
  g_autoptr (GBytes) raw = NULL;
  g_autoptr (GBytes) plain = NULL;

  /* Pinned to the real cloud key, pointed at an impostor. */
  g_key_file_set_integer (fx->config, "upstream", "port", ph_test_recorder_get_port (rec));
  agent = ph_tunnel_start (fx);
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *body = NULL;
      g_autofree char *head
          = ph_test_exchange (agent->port, i % 2 == 0 ? get : connect, &body, NULL, 15000);

      ph_assert_refusal (agent, head, body, 502, "pin-mismatch");
      g_assert_nonnull (strstr (body, ph_test_recorder_get_pin (rec)));
    }
  ph_test_agent_stop_ok (agent);
  g_usleep (200 * 1000);

  raw = ph_test_recorder_get_raw (rec);
  plain = ph_test_recorder_get_plain (rec);
  g_test_message ("recorder: %u connections, %u handshakes, %zu raw bytes, %zu decrypted",
                  ph_test_recorder_get_connections (rec), ph_test_recorder_get_handshakes (rec),
                  g_bytes_get_size (raw), g_bytes_get_size (plain));
  g_assert_cmpuint (ph_test_recorder_get_connections (rec), >, 0);
  g_assert_cmpuint (g_bytes_get_size (raw), >, 0);
  g_assert_cmpuint (g_bytes_get_size (plain), ==, 0);
  g_assert_false (ph_test_bytes_contain (raw, "CONNECT"));
  g_assert_false (ph_test_bytes_contain (raw, "GET "));
  g_assert_false (ph_test_bytes_contain (raw, cloud->password));
  g_assert_false (ph_test_bytes_contain (raw, token));
  g_assert_false (ph_test_bytes_contain (raw, password_b64));
}

static void
ph_tunnel_wrong_password (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = NULL;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  guint before;

  before = ph_test_cloud_settled_access_log_lines (cloud, "/407 ");
  agent = ph_tunnel_start (fx);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *body = NULL;
      g_autofree char *head
          = ph_test_exchange (agent->port, i == 0 ? get : connect, &body, NULL, 15000);
      g_autofree char *lower = NULL;

      ph_assert_refusal (agent, head, body, 502, "auth-rejected");
      lower = g_ascii_strdown (body, -1);
      if (strstr (lower, "reject") == NULL || strstr (lower, "credential") == NULL)
        g_printerr ("# body does not explain the rejection: %s\n", body);
      g_assert_nonnull (strstr (lower, "reject"));
      g_assert_nonnull (strstr (lower, "credential"));
    }
  ph_test_agent_stop_ok (agent);
  /* Two 407s: the plain GET's, and the CONNECT with which the agent asked the proxy whether
   * that 407 was its own (an origin's is not). Then the agent does not keep trying a rejected
   * password. */
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (cloud, "/407 ") - before, ==, 2);
}

static gboolean ph_wait_status (PhTestAgent *agent, const char *request, int status,
                                const char *kind);

/* After a 407 the agent holds back; a reload with the password fixed in
 * the same file sends credentials again, and they work. */
static void
ph_tunnel_wrong_password_fixed (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *body = NULL;
  g_autofree char *head = NULL;

  head = ph_test_exchange (agent->port, get, &body, NULL, 15000);
  ph_assert_refusal (agent, head, body, 502, "auth-rejected");

  ph_tunnel_write_password (fx, cloud->password);
  ph_test_agent_signal (agent, SIGHUP);
  g_assert_true (ph_wait_status (agent, get, 200, NULL));
  ph_assert_hello_via (agent, cloud);
}

static void
ph_tunnel_upstream_down (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = NULL;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);

  g_key_file_set_integer (fx->config, "upstream", "port", ph_test_free_port ());
  agent = ph_tunnel_start (fx);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *body = NULL;
      g_autofree char *head
          = ph_test_exchange (agent->port, i == 0 ? get : connect, &body, NULL, 15000);

      ph_assert_refusal (agent, head, body, 502, "upstream-tcp");
    }
  ph_test_agent_assert_access (agent, (const char *[]){ "error=upstream-tcp", NULL }, 1, 5000);
}

/* [route] when-unreachable=direct, the cloud proxy's port closed: plain requests go directly to
 * the origin (route=direct, nothing reaches Squid), and the agent says so: its state is "error"
 * with UnreachableDirect (the standalone agent logs it as its tunnel error). */
static void
ph_tunnel_unreachable_direct (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = NULL;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  guint squid_before = ph_test_cloud_settled_access_log_lines (cloud, "/hello");

  g_key_file_set_integer (fx->config, "upstream", "port", ph_test_free_port ());
  agent = ph_tunnel_start (fx);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *body = NULL;
      g_autofree char *head = ph_test_exchange (agent->port, get, &body, NULL, 15000);

      if (ph_test_head_status (head) != 200)
        ph_test_agent_print_log (agent, head ? head : "no answer");
      g_assert_cmpint (ph_test_head_status (head), ==, 200);
      g_assert_cmpstr (body, ==, "hello\n");
    }
  ph_test_agent_assert_access (agent, (const char *[]){ "route=direct", "status=200", NULL }, 3,
                               5000);
  g_assert_cmpuint (ph_access_count (agent, "route=proxy"), ==, 0);
  g_assert_true (ph_test_agent_wait_log (
      agent, "requests go directly ([route] when-unreachable=direct)", 1, 10000));
  g_assert_true (
      ph_test_agent_wait_log (agent, "tunnel error: the cloud proxy cannot be reached", 1, 10000));
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (cloud, "/hello"), ==, squid_before);
}

/* when-unreachable=direct, but the cloud proxy answers with another key than the pinned one: that
 * may be an attacker, never an unreachable proxy. The request is refused (502 pin-mismatch) and
 * never goes directly, the first or a later one. */
static void
ph_tunnel_unreachable_pin_mismatch (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = NULL;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *wrong_pin = ph_random_pin ();

  g_key_file_set_string (fx->config, "upstream", "pins", wrong_pin);
  agent = ph_tunnel_start (fx);
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *body = NULL;
      g_autofree char *head
          = ph_test_exchange (agent->port, i % 2 == 0 ? get : connect, &body, NULL, 15000);

      ph_assert_refusal (agent, head, body, 502, "pin-mismatch");
      /* Let the daemon see the failures between requests. */
      g_usleep (300 * 1000);
    }
  ph_test_agent_assert_access (agent, (const char *[]){ "error=pin-mismatch", NULL }, 4, 5000);
  g_assert_cmpuint (ph_access_count (agent, "route=direct"), ==, 0);
  g_assert_false (ph_test_agent_wait_log (agent, "goes directly", 1, 100));
  g_assert_false (ph_test_agent_wait_log (agent, "requests go directly", 1, 100));
}

/* The default policy (when-unreachable=block): a request the cloud proxy cannot take is refused
 * with a 502 that says the proxy cannot be reached, and never goes directly. */
static void
ph_tunnel_unreachable_block (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = NULL;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *body = NULL;
  g_autofree char *head = NULL;

  g_key_file_set_integer (fx->config, "upstream", "port", ph_test_free_port ());
  agent = ph_tunnel_start (fx);
  head = ph_test_exchange (agent->port, get, &body, NULL, 15000);
  ph_assert_refusal (agent, head, body, 502, "upstream-tcp");
  g_assert_nonnull (strstr (body, "cloud proxy"));
  ph_test_agent_assert_access (agent, (const char *[]){ "route=proxy", "error=upstream-tcp", NULL },
                               1, 5000);
  g_assert_cmpuint (ph_access_count (agent, "route=direct"), ==, 0);
  g_assert_false (ph_test_agent_wait_log (agent, "requests go directly", 1, 2000));
}

static void
ph_tunnel_upstream_slow (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = NULL;
  g_autoptr (GSocket) tarpit = NULL;
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");

  /* The kernel completes TCP handshakes for a listening socket nobody accepts from, so the
   * agent connects fine and then waits for a TLS answer that never comes. */
  tarpit = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (tarpit, any, FALSE, &error);
  g_assert_no_error (error);
  g_socket_set_listen_backlog (tarpit, 128);
  g_socket_listen (tarpit, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (tarpit, &error);
  g_assert_no_error (error);

  g_key_file_set_integer (fx->config, "upstream", "port",
                          g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  agent = ph_tunnel_start (fx);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *body = NULL;
      gint64 start = g_get_monotonic_time ();
      g_autofree char *head
          = ph_test_exchange (agent->port, i == 0 ? connect : get, &body, NULL, 15000);
      gint64 elapsed = g_get_monotonic_time () - start;

      g_test_message ("504 after %.2f s", (double) elapsed / G_USEC_PER_SEC);
      ph_assert_refusal (agent, head, body, 504, "upstream-timeout");
      /* handshake-timeout=1s, plus slack for a loaded machine */
      g_assert_cmpint (elapsed, <, 3 * G_USEC_PER_SEC);
    }
  /* Stopped while the tarpit still holds the agent's connections. */
  ph_test_agent_stop_ok (agent);
}

static void
ph_tunnel_upstream_reset (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const char *proxy = fx->proxy;
  g_autofree char *url = ph_url ("http", cloud->origin_http_port, "/reset/1000000");

  for (guint i = 0; i < 2; i++)
    {
      g_autoptr (PhTestCurl) c = NULL;

      /* i == 0: inside a CONNECT tunnel; i == 1: a plain request relayed by the agent. */
      c = ph_test_curl ("-x", proxy, i == 0 ? "-p" : "-g", "-o", "/dev/null", "-w",
                        "%{size_download}", url, NULL);
      g_test_message ("reset %s: curl exit %d, %s bytes: %s", i == 0 ? "tunnel" : "plain",
                      c->exit_status, c->out_str, c->err);
      /* 18: partial file, 56: receive failure; anything but success. */
      g_assert_cmpint (c->exit_status, !=, 0);
      g_assert_cmpint (c->exit_status, !=, 28);
      g_assert_cmpuint (g_ascii_strtoull (c->out_str, NULL, 10), <, 1000000000);
      ph_assert_hello_via (agent, cloud);
    }
}

static void
ph_tunnel_client_vanishes (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *authority = g_strdup_printf ("127.0.0.1:%u", cloud->origin_http_port);
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *inner = g_strdup_printf (
      "GET /bytes/%" G_GUINT64_FORMAT " HTTP/1.1\r\nHost: %s\r\n\r\n", PH_100MB, authority);
  g_autofree char *path_part = g_strdup_printf ("/bytes/%" G_GUINT64_FORMAT, PH_100MB);
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, path_part);
  g_autofree char *target = g_strdup_printf ("target=%s", authority);

  /* In a tunnel. */
  {
    g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
    g_autofree char *head = NULL;

    ph_test_conn_send (conn, connect, -1);
    head = ph_test_conn_read_head (conn, 15000);
    g_assert_cmpint (ph_test_head_status (head), ==, 200);
    ph_test_conn_send (conn, inner, -1);
    g_clear_pointer (&head, g_free);
    head = ph_test_conn_read_head (conn, 15000);
    g_assert_cmpint (ph_test_head_status (head), ==, 200);
    g_assert_cmpuint (ph_test_conn_read_body (conn, 1 << 20, NULL, 15000), ==, 1 << 20);
  }
  ph_test_agent_assert_access (agent, (const char *[]){ "method=CONNECT", target, NULL }, 1, 10000);
  ph_assert_hello_via (agent, cloud);

  /* In a plain request. */
  {
    g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
    g_autofree char *head = NULL;

    ph_test_conn_send (conn, get, -1);
    head = ph_test_conn_read_head (conn, 15000);
    g_assert_cmpint (ph_test_head_status (head), ==, 200);
    g_assert_cmpuint (ph_test_conn_read_body (conn, 1 << 20, NULL, 15000), ==, 1 << 20);
  }
  ph_test_agent_assert_access (agent, (const char *[]){ "method=GET", NULL }, 1, 10000);
  ph_assert_hello_via (agent, cloud);
}

static void
ph_tunnel_head_timeout (PhTunnelFixture *fx)
{
  PhTestAgent *agent = fx->agent;
  g_autoptr (PhTestConn) conn = NULL;
  g_autofree char *head = NULL;
  g_autoptr (GBytes) rest = NULL;
  gboolean closed = FALSE;
  gint64 start, elapsed;

  conn = ph_test_conn_new (agent->port);
  start = g_get_monotonic_time ();
  ph_test_conn_send (conn, "GET http://x/ HTTP/1.1\r\nHost: x\r\n", -1);
  head = ph_test_conn_read_head (conn, 10000);
  elapsed = g_get_monotonic_time () - start;
  g_test_message ("408 after %.2f s", (double) elapsed / G_USEC_PER_SEC);
  rest = ph_test_conn_read_to_eof (conn, 5000, &closed);
  ph_assert_refusal (agent, head, NULL, 408, "head-timeout");
  g_assert_cmpint (elapsed, >=, 800 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (elapsed, <, 4 * G_USEC_PER_SEC);
  g_assert_true (closed);
}

typedef struct
{
  const char *name;
  const char *request; /* {P}: the origin's port; {URI}, {HEADERS}: built below */
  int status;
  const char *kind;
} PhMalformedCase;

static char *
ph_malformed_request (const PhMalformedCase *mc, guint16 port)
{
  g_autoptr (GString) s = g_string_new (mc->request);
  g_autofree char *p = g_strdup_printf ("%u", port);
  g_autoptr (GString) many = g_string_new (NULL);
  g_autofree char *long_path = g_strnfill (20000, 'a');
  g_autofree char *big_value = g_strnfill (70000, 'b');

  for (guint i = 0; i < 300; i++)
    g_string_append_printf (many, "X-Header-%u: %u\r\n", i, i);
  g_string_replace (s, "{URI}", long_path, 0);
  g_string_replace (s, "{HEADERS}", many->str, 0);
  g_string_replace (s, "{BIG}", big_value, 0);
  g_string_replace (s, "{P}", p, 0);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static void
ph_tunnel_malformed (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const PhMalformedCase cases[] = {
    { "content-length and transfer-encoding",
      "POST http://127.0.0.1:{P}/sha256 HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\nContent-Length: 5\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400, "bad-request" },
    { "obs-fold",
      "GET http://127.0.0.1:{P}/hello HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\nX-Folded: a\r\n b\r\n\r\n",
      400, "bad-request" },
    { "origin-form", "GET / HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\n\r\n", 405, "method-not-allowed" },
    { "huge uri", "GET http://127.0.0.1:{P}/{URI} HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\n\r\n", 414,
      "uri-too-long" },
    { "too many headers",
      "GET http://127.0.0.1:{P}/hello HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\n{HEADERS}\r\n", 431,
      "headers-too-large" },
    { "too large header",
      "GET http://127.0.0.1:{P}/hello HTTP/1.1\r\nHost: 127.0.0.1:{P}\r\nX-Big: {BIG}\r\n\r\n", 431,
      "headers-too-large" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *request = ph_malformed_request (&cases[i], cloud->origin_http_port);
      g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
      g_autofree char *head = NULL;
      g_autofree char *kind = g_strconcat ("error=", cases[i].kind, NULL);
      g_autoptr (GBytes) rest = NULL;
      gboolean closed = FALSE;

      g_test_message ("malformed: %s", cases[i].name);
      ph_test_conn_send (conn, request, -1);
      head = ph_test_conn_read_head (conn, 10000);
      if (head == NULL || ph_test_head_status (head) != cases[i].status)
        g_printerr ("# case `%s` answered:\n%s\n", cases[i].name, head ?: "(nothing)");
      ph_assert_refusal (agent, head, NULL, cases[i].status, cases[i].kind);
      rest = ph_test_conn_read_to_eof (conn, 5000, &closed);
      g_assert_true (closed);
      ph_test_agent_assert_access (agent, (const char *[]){ kind, NULL }, 1, 5000);
    }
  /* Still serving. */
  ph_assert_hello_via (agent, cloud);
}

static void
ph_tunnel_max_tunnels (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *authority = g_strdup_printf ("127.0.0.1:%u", cloud->origin_http_port);
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *inner = g_strdup_printf ("GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n", authority);
  g_autoptr (PhTestConn) first = NULL;
  g_autofree char *head = NULL;
  gboolean reopened = FALSE;

  first = ph_test_conn_new (agent->port);
  ph_test_conn_send (first, connect, -1);
  head = ph_test_conn_read_head (first, 15000);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_clear_pointer (&head, g_free);
  ph_test_conn_send (first, inner, -1);
  head = ph_test_conn_read_head (first, 15000);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_assert_cmpuint (ph_test_conn_read_body (first, 6, NULL, 5000), ==, 6);

  {
    g_autofree char *body = NULL;
    g_autofree char *refused = ph_test_exchange (agent->port, connect, &body, NULL, 15000);

    ph_assert_refusal (agent, refused, body, 503, "too-many-tunnels");
  }

  /* Closing the first tunnel frees its slot. Each attempt waits 3 s, so that a case that fails
   * does so within its time, with the agent's (debug) log: the Windows agent under Wine once
   * answered none of them for 3 minutes. */
  g_clear_pointer (&first, ph_test_conn_free);
  for (guint attempt = 0; attempt < 40 && !reopened; attempt++)
    {
      g_autofree char *again = ph_test_exchange (agent->port, connect, NULL, NULL, 3000);

      reopened = ph_test_head_status (again) == 200;
      if (!reopened)
        g_usleep (100 * 1000);
    }
  if (!reopened)
    ph_test_agent_print_log (agent, "no tunnel after the first one closed");
  g_assert_true (reopened);
}

/* --check-config: each case swaps one line of a good file and names the line and key that
 * must be reported. */
typedef struct
{
  const char *name;
  guint line;             /* 1-based line to replace, 0: none */
  const char *text;       /* its replacement */
  const char *expect_key; /* "[group] key", NULL: only the line number is checked */
  gboolean loose_password_file;
} PhCheckCase;

static char *
ph_check_config_text (PhTestCloud *cloud, const char *password_file, const PhCheckCase *cc)
{
  g_autofree char *text
      = g_strdup_printf ("# pinhole-agent config for --check-config tests\n" /* 1 */
                         "[listener]\n"                                      /* 2 */
                         "address=127.0.0.1:%u\n"                            /* 3 */
                         "\n"                                                /* 4 */
                         "[upstream]\n"                                      /* 5 */
                         "host=127.0.0.1\n"                                  /* 6 */
                         "port=%u\n"                                         /* 7 */
                         "server-name=%s\n"                                  /* 8 */
                         "pins=%s\n"                                         /* 9 */
                         "verify=pin\n"                                      /* 10 */
                         "username=%s\n"                                     /* 11 */
                         "password-file=%s\n"                                /* 12 */
                         "connect-timeout=5s\n"                              /* 13 */
                         "handshake-timeout=500ms\n"                         /* 14 */
                         "\n"                                                /* 15 */
                         "[tunnel]\n"                                        /* 16 */
                         "max-tunnels=16\n"                                  /* 17 */
                         "head-timeout=10\n"                                 /* 18 */
                         "\n"                                                /* 19 */
                         "[log]\n"                                           /* 20 */
                         "level=info\n",                                     /* 21 */
                         ph_test_free_port (), cloud->tls_port, cloud->server_name, cloud->pin,
                         cloud->user, password_file);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  if (cc != NULL && cc->line > 0)
    {
      g_assert_cmpuint (cc->line, <=, g_strv_length (lines));
      g_free (lines[cc->line - 1]);
      lines[cc->line - 1] = g_strdup (cc->text);
    }
  return g_strjoinv ("\n", lines);
}

/* Runs the agent's --check-config on @path; its output never shows the password either. */
static PhTestCurl *
ph_run_check_config (PhTestCloud *cloud, const char *path)
{
  /* Reuses the curl result type: exit status plus both outputs. */
  g_autoptr (PhTestCurl) run = g_new0 (PhTestCurl, 1);
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, &error,
                           g_getenv ("PH_AGENT"), "--config", path, "--check-config", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &run->out_str, NULL, &error);
  g_assert_no_error (error);
  run->exit_status = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  run->err = g_strdup ("");
  ph_test_cloud_assert_redacted (cloud, "--check-config's output", run->out_str, PH_WRONG_PASSWORD);
  return g_steal_pointer (&run);
}

static void
ph_tunnel_check_config (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  const PhCheckCase cases[] = {
    { "good", 0, NULL, NULL, FALSE },
    { "syntax error", 18, "this line is neither a group nor a key", NULL, FALSE },
    { "unknown key", 14, "handshake-timeout-typo=5s", "[upstream] handshake-timeout-typo", FALSE },
    { "bad port", 7, "port=99999", "[upstream] port", FALSE },
    { "bad port text", 7, "port=https", "[upstream] port", FALSE },
    { "bad pin", 9, "pins=sha256//this-is-not-a-pin", "[upstream] pins", FALSE },
    { "bad verify", 10, "verify=maybe", "[upstream] verify", FALSE },
    { "bad listen address", 3, "address=127.0.0.1", "[listener] address", FALSE },
    { "bad duration", 13, "connect-timeout=soon", "[upstream] connect-timeout", FALSE },
    { "readable password file", 0, NULL, "[upstream] password-file", TRUE },
  };
  g_autofree char *loose = ph_scratch_path (cloud, "loose-password");
  g_autoptr (GError) error = NULL;

  g_file_set_contents_full (loose, cloud->password, -1, G_FILE_SET_CONTENTS_NONE, 0644, &error);
  g_assert_no_error (error);
  g_assert_cmpint (chmod (loose, 0644), ==, 0);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const PhCheckCase *cc = &cases[i];
      g_autofree char *base = g_strdup_printf ("check-%zu.conf", i);
      g_autofree char *path = ph_scratch_path (cloud, base);
      g_autofree char *text = ph_check_config_text (
          cloud, cc->loose_password_file ? loose : cloud->password_file, cc);
      g_autoptr (PhTestCurl) run = NULL;
      guint want_line = cc->loose_password_file ? 12 : cc->line;
      g_autofree char *prefix = g_strdup_printf ("%s:%u: ", path, want_line);
      g_autofree char *path_re = g_regex_escape_string (path, -1);
      g_autofree char *problem_re = g_strdup_printf ("^%s:[0-9]+: ", path_re);
      g_autofree char *with_key = NULL;

      /* Windows has no group/world mode bits to refuse; its files are guarded by ACLs. */
      if (cc->loose_password_file && agent_is_windows ())
        continue;
      g_file_set_contents (path, text, -1, &error);
      g_assert_no_error (error);
      run = ph_run_check_config (cloud, path);
      g_test_message ("check-config %s: exit %d:\n%s", cc->name, run->exit_status, run->out_str);
      if (cc->line == 0 && !cc->loose_password_file)
        {
          if (run->exit_status != 0)
            g_printerr ("# good file refused:\n%s\n", run->out_str);
          g_assert_cmpint (run->exit_status, ==, 0);
          g_assert_false (g_regex_match_simple (problem_re, run->out_str, G_REGEX_MULTILINE, 0));
          g_unlink (path);
          continue;
        }
      if (run->exit_status == 0 || strstr (run->out_str, prefix) == NULL)
        g_printerr ("# case `%s` (want `%s…`), exit %d, output:\n%s\n", cc->name, prefix,
                    run->exit_status, run->out_str);
      g_assert_cmpint (run->exit_status, !=, 0);
      g_assert_nonnull (strstr (run->out_str, prefix));
      if (cc->expect_key != NULL)
        {
          with_key = g_strdup_printf ("%s%s: ", prefix, cc->expect_key);
          if (strstr (run->out_str, with_key) == NULL)
            g_printerr ("# case `%s`: want `%s…` in:\n%s\n", cc->name, with_key, run->out_str);
          g_assert_nonnull (strstr (run->out_str, with_key));
        }
      g_unlink (path);
    }

  /* Every problem, not just the first. */
  {
    PhCheckCase two = { "two problems", 7, "port=0x10", NULL, FALSE };
    g_autofree char *path = ph_scratch_path (cloud, "check-two.conf");
    g_autofree char *text = ph_check_config_text (cloud, cloud->password_file, &two);
    g_autoptr (GString) both = g_string_new (text);
    g_autoptr (PhTestCurl) run = NULL;
    g_autofree char *first = g_strdup_printf ("%s:7: [upstream] port: ", path);
    g_autofree char *second = g_strdup_printf ("%s:10: [upstream] verify: ", path);

    g_string_replace (both, "verify=pin", "verify=sometimes", 1);
    g_file_set_contents (path, both->str, -1, &error);
    g_assert_no_error (error);
    run = ph_run_check_config (cloud, path);
    if (strstr (run->out_str, first) == NULL || strstr (run->out_str, second) == NULL)
      g_printerr ("# two problems, output:\n%s\n", run->out_str);
    g_assert_cmpint (run->exit_status, !=, 0);
    g_assert_nonnull (strstr (run->out_str, first));
    g_assert_nonnull (strstr (run->out_str, second));
    g_unlink (path);
  }
  g_unlink (loose);
}

static guint
ph_count_in_log (PhTestAgent *agent, const char *needle)
{
  g_autofree char *log = ph_test_agent_log (agent);
  guint n = 0;

  for (const char *p = strstr (log, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

/* Polls until a request through the agent gets @status (the reload is asynchronous). */
static gboolean
ph_wait_status (PhTestAgent *agent, const char *request, int status, const char *kind)
{
  for (guint attempt = 0; attempt < 50; attempt++)
    {
      g_autofree char *body = NULL;
      g_autofree char *head = ph_test_exchange (agent->port, request, &body, NULL, 15000);
      g_autofree char *error_kind = ph_test_head_header (head, "X-Pinhole-Error");

      if (ph_test_head_status (head) == status && g_strcmp0 (error_kind, kind) == 0)
        {
          g_test_message ("status %d after %u attempts", status, attempt + 1);
          return TRUE;
        }
      g_usleep (100 * 1000);
    }
  return FALSE;
}

static void
ph_tunnel_reload (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  GKeyFile *kf = fx->config;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *wrong_pin = ph_random_pin ();
  g_autoptr (GError) error = NULL;
  guint warnings;

  ph_assert_hello_via (agent, cloud);

  /* A broken file: warned about, old config kept. */
  warnings = ph_count_in_log (agent, " warning ");
  g_file_set_contents (agent->config_path, "[upstream]\nport=not-a-port\nthis is not keyfile\n", -1,
                       &error);
  g_assert_no_error (error);
  ph_test_agent_signal (agent, SIGHUP);
  if (!ph_test_agent_wait_log (agent, " warning ", warnings + 1, 5000))
    {
      g_autofree char *log = ph_test_agent_log (agent);

      g_printerr ("# no warning after SIGHUP with a broken file; log:\n%s\n", log);
      g_assert_not_reached ();
    }
  ph_assert_hello_via (agent, cloud);
  ph_assert_hello_via (agent, cloud);

  /* A good, changed file takes effect: a wrong pin makes requests fail... */
  g_key_file_set_string (kf, "upstream", "pins", wrong_pin);
  ph_test_agent_write_config (agent, kf);
  ph_test_agent_signal (agent, SIGHUP);
  g_assert_true (ph_wait_status (agent, get, 502, "pin-mismatch"));

  /* ...and the right one again makes them work. */
  g_key_file_set_string (kf, "upstream", "pins", cloud->pin);
  ph_test_agent_write_config (agent, kf);
  ph_test_agent_signal (agent, SIGHUP);
  g_assert_true (ph_wait_status (agent, get, 200, NULL));
  ph_assert_hello_via (agent, cloud);
}

static void
ph_tunnel_sigterm (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autoptr (PhTestConn) held = ph_test_conn_new (agent->port);
  g_autofree char *head = NULL;
  gint64 start;
  int status;

  /* An idle tunnel is open while the agent is told to stop: it drains (bounded) and exits 0. */
  ph_test_conn_send (held, connect, -1);
  head = ph_test_conn_read_head (held, 15000);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  start = g_get_monotonic_time ();
  status = ph_test_agent_stop (agent);
  g_test_message ("exit %d after %.2f s", status,
                  (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC);
  g_assert_cmpint (status, ==, 0);
}

/* Each case checks its own agents' logs in its teardown; this one runs an agent at its chattiest
 * with both kinds of requests, and then reads every agent log of the run so far, all cases'. */
static void
ph_tunnel_log_redaction (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const char *proxy = fx->proxy;
  g_autofree char *url = ph_url ("http", cloud->origin_http_port, "/hello");
  g_autofree char *dir = g_build_filename (cloud->dir, "agents", NULL);
  g_autoptr (GDir) logs = NULL;
  g_autoptr (GError) error = NULL;
  const char *name;
  guint scanned = 0;

  {
    g_autoptr (PhTestCurl) c = ph_test_curl ("-x", proxy, url, NULL);
    g_autoptr (PhTestCurl) t = ph_test_curl ("-x", proxy, "-p", url, NULL);

    ph_assert_curl_ok (c);
    ph_assert_curl_ok (t);
  }
  ph_test_agent_stop_ok (agent);

  /* Every agent log this run produced, all cases. */
  logs = g_dir_open (dir, 0, &error);
  g_assert_no_error (error);
  while ((name = g_dir_read_name (logs)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *text = NULL;

      if (!g_str_has_suffix (name, ".log") && !g_str_has_suffix (name, ".stdout"))
        continue;
      path = g_build_filename (dir, name, NULL);
      g_file_get_contents (path, &text, NULL, &error);
      g_assert_no_error (error);
      ph_test_cloud_assert_redacted (cloud, path, text, PH_WRONG_PASSWORD);
      scanned++;
    }
  g_test_message ("%u agent logs scanned", scanned);
  g_assert_cmpuint (scanned, >, 0);
}

/* --- hardening regressions: upstream connections held, reused, timed and refused --- */

/* ESTABLISHED TCP connections from this machine to 127.0.0.1:@port (the agent's to the cloud),
 * from the kernel's socket table through `ss` (netlink, filtered in the kernel). Reading
 * /proc/net/tcp instead was slow and wrong under load: with 14,000 TIME_WAIT sockets of another
 * program it took minutes per case under ASan, and a socket that moved in the table while it
 * was read a chunk at a time could be missed. */
static guint
ph_connections_to (guint16 port)
{
  g_autofree char *filter = g_strdup_printf ("127.0.0.1:%u", port);
  const char *argv[] = { "ss", "-Htn", "state", "established", "dst", filter, NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr (GError) error = NULL;
  int status = 0;
  guint n = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                     &status, &error)
      || !g_spawn_check_wait_status (status, NULL))
    g_error ("ss: %s", error != NULL ? error->message : err);
  for (const char *p = out; *p != '\0'; p++)
    if (*p == '\n')
      n++;
  return n;
}

static char *
ph_sha256_hex (const guint8 *data, gsize len)
{
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, len);
}

/* Reads a response with a Content-Length body on @conn; returns the head, the body in *@body. */
static char *
ph_read_response (PhTestConn *conn, char **body, guint timeout_ms)
{
  g_autofree char *head = ph_test_conn_read_head (conn, timeout_ms);
  g_autofree char *length = head != NULL ? ph_test_head_header (head, "Content-Length") : NULL;
  g_autoptr (GByteArray) data = g_byte_array_new ();

  if (length != NULL)
    ph_test_conn_read_body (conn, g_ascii_strtoull (length, NULL, 10), data, timeout_ms);
  *body = g_strndup ((const char *) data->data, data->len);
  return g_steal_pointer (&head);
}

/* max-tunnels bounds every connection to the cloud proxy, idle kept-alive ones included: after
 * a plain request the upstream connection goes to the shared idle pool, whose entries hold slots
 * until a tunnel needs one (and the pool gives them to the next client before making new ones).
 * (200 idle keep-alive clients once held 202 TLS connections with max-tunnels=20.) */
static void
ph_tunnel_max_tunnels_keepalive (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autoptr (GPtrArray) conns = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_test_conn_free);
  guint held = G_MAXUINT;

  for (guint i = 0; i < 10; i++)
    {
      PhTestConn *conn = ph_test_conn_new (agent->port);
      g_autofree char *body = NULL;
      g_autofree char *head = NULL;

      g_ptr_array_add (conns, conn);
      ph_test_conn_send (conn, get, -1);
      head = ph_read_response (conn, &body, 15000);
      g_assert_cmpint (ph_test_head_status (head), ==, 200);
      g_assert_cmpstr (body, ==, "hello\n");
    }
  /* Given-up connections close from the agent's side at once. */
  for (guint i = 0; i < 40 && (held = ph_connections_to (cloud->tls_port)) > 3; i++)
    g_usleep (50 * 1000);
  g_test_message ("%u upstream connections for 10 kept-alive clients, max-tunnels=3", held);
  g_assert_cmpuint (held, <=, 3);
  g_assert_cmpuint (held, >=, 1);

  /* The first client's upstream connection was given up; its next request gets another. */
  for (guint i = 0; i < 2; i++)
    {
      PhTestConn *conn = g_ptr_array_index (conns, i * 9);
      g_autofree char *body = NULL;
      g_autofree char *head = NULL;

      ph_test_conn_send (conn, get, -1);
      head = ph_read_response (conn, &body, 15000);
      g_assert_cmpint (ph_test_head_status (head), ==, 200);
      g_assert_cmpstr (body, ==, "hello\n");
    }
  g_assert_cmpuint (ph_connections_to (cloud->tls_port), <=, 3);
}

/* A GET, a pause longer than the cloud proxy's keep-alive timeout, then a POST on the same
 * client connection: the agent must see that the kept-alive upstream connection was closed and
 * take a fresh one, for a fixed-length body and a chunked one (neither can be sent twice). */
static void
ph_tunnel_idle_upstream_post (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autoptr (PhTestConn) conn = NULL;
  g_autofree char *body = NULL;
  g_autofree char *head = NULL;
  guint8 data[100000];

  conn = ph_test_conn_new (agent->port);
  ph_test_pattern_fill (data, sizeof data, 7);
  ph_test_conn_send (conn, get, -1);
  head = ph_read_response (conn, &body, 15000);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);

  for (guint round = 0; round < 2; round++)
    {
      gboolean chunked = round == 1;
      g_autofree char *sha = ph_sha256_hex (data, sizeof data);
      g_autofree char *expected = g_strdup_printf ("%s %zu\n", sha, sizeof data);
      g_autofree char *post = g_strdup_printf (
          "POST http://127.0.0.1:%u/sha256 HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n%s\r\n",
          cloud->origin_http_port, cloud->origin_http_port,
          chunked ? "Transfer-Encoding: chunked\r\n" : "Content-Length: 100000\r\n");

      /* Squid closes idle client connections after 5 s (its timer runs about once a second)
       * and stunnel then closes ours: wait until it has, so that what is tested is the agent
       * noticing, not the race of a close with a request written at that moment. */
      {
        gint64 idle_start = g_get_monotonic_time ();

        while (ph_connections_to (cloud->tls_port) > 0
               && g_get_monotonic_time () - idle_start < 20 * G_USEC_PER_SEC)
          g_usleep (100 * 1000);
        g_assert_cmpuint (ph_connections_to (cloud->tls_port), ==, 0);
        g_assert_cmpint (g_get_monotonic_time () - idle_start, >=, 4 * G_USEC_PER_SEC);
      }
      g_clear_pointer (&head, g_free);
      g_clear_pointer (&body, g_free);
      ph_test_conn_send (conn, post, -1);
      if (chunked)
        {
          for (gsize off = 0; off < sizeof data; off += 30000)
            {
              gsize n = MIN (30000, sizeof data - off);
              g_autofree char *size = g_strdup_printf ("%zx\r\n", n);

              ph_test_conn_send (conn, size, -1);
              ph_test_conn_send (conn, data + off, n);
              ph_test_conn_send (conn, "\r\n", 2);
            }
          ph_test_conn_send (conn, "0\r\n\r\n", -1);
        }
      else
        ph_test_conn_send (conn, data, sizeof data);
      head = ph_read_response (conn, &body, 15000);
      if (ph_test_head_status (head) != 200)
        g_printerr ("# %s POST after an idle pause: %s%s\n", chunked ? "chunked" : "fixed-length",
                    head ? head : "(no answer)\n", body);
      g_assert_cmpint (ph_test_head_status (head), ==, 200);
      g_assert_cmpstr (body, ==, expected);
    }
  /* Stopped while the client still holds its connection. */
  ph_test_agent_stop_ok (agent);
}

/* An http:// upload slower than response-timeout is not a silent proxy: the clock starts once the
 * request is all sent. */
static void
ph_tunnel_slow_upload (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autoptr (PhTestConn) conn = NULL;
  g_autofree char *post = g_strdup_printf (
      "POST http://127.0.0.1:%u/sha256 HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: 100000\r\n"
      "\r\n",
      cloud->origin_http_port, cloud->origin_http_port);
  g_autofree char *body = NULL;
  g_autofree char *head = NULL;
  g_autofree char *sha = NULL;
  g_autofree char *expected = NULL;
  guint8 data[100000];
  gint64 start;

  ph_test_pattern_fill (data, sizeof data, 3);
  sha = ph_sha256_hex (data, sizeof data);
  expected = g_strdup_printf ("%s %zu\n", sha, sizeof data);
  conn = ph_test_conn_new (agent->port);
  start = g_get_monotonic_time ();
  ph_test_conn_send (conn, post, -1);
  /* 5 s for the body, in five parts: more than twice the response timeout. */
  for (gsize off = 0; off < sizeof data; off += 20000)
    {
      g_usleep (1000 * 1000);
      ph_test_conn_send (conn, data + off, 20000);
    }
  head = ph_read_response (conn, &body, 15000);
  if (ph_test_head_status (head) != 200)
    g_printerr ("# slow upload: %s%s\n", head ? head : "(no answer)\n", body);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_assert_cmpstr (body, ==, expected);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 5 * G_USEC_PER_SEC);
  /* Stopped while the client still holds its connection. */
  ph_test_agent_stop_ok (agent);
}

/* tinyproxy (1.11) answers a CONNECT with wrong credentials with 401 and WWW-Authenticate: only
 * the proxy answers a CONNECT, so that is a rejection of the credentials, not a site's login. */
static void
ph_tunnel_proxy_401 (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  g_autoptr (PhTestAgent) agent = NULL;
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);

  /* The right password: tinyproxy tunnels. */
  {
    g_autofree char *head = ph_test_exchange (fx->agent->port, connect, NULL, NULL, 15000);
    g_assert_cmpint (ph_test_head_status (head), ==, 200);
  }
  ph_test_agent_stop_ok (fx->agent);

  /* A wrong one: 502 auth-rejected, never tinyproxy's 401 (a browser would ask for a site login
   * on every page), and the next request is refused without sending it again. */
  ph_tunnel_write_password (fx, PH_WRONG_PASSWORD);
  agent = ph_test_agent_start (cloud, "proxy-401-wrong-password", fx->config);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *body = NULL;
      g_autofree char *head = ph_test_exchange (agent->port, connect, &body, NULL, 15000);

      ph_assert_refusal (agent, head, body, 502, "auth-rejected");
      g_assert_null (strstr (head, "WWW-Authenticate"));
    }
  g_assert_true (ph_test_agent_wait_log (agent, "rejected the credentials", 1, 5000));
  ph_test_agent_stop_ok (agent);
}

/* VmRSS of @agent in KiB, or 0 where /proc cannot tell (the Windows agent under Wine). */
static guint64
ph_agent_rss_kib (PhTestAgent *agent)
{
  g_autofree char *path
      = g_strdup_printf ("/proc/%s/status", g_subprocess_get_identifier (agent->proc));
  g_autofree char *text = NULL;
  const char *line;

  if (!g_file_get_contents (path, &text, NULL, NULL) || (line = strstr (text, "VmRSS:")) == NULL)
    return 0;
  return g_ascii_strtoull (line + strlen ("VmRSS:"), NULL, 10);
}

/* More tunnels than the old fixed default of 1024, all idle at once: with max-tunnels=auto
 * the limit follows the agent's descriptor limit, so each CONNECT is answered 200 and every
 * tunnel still carries a request afterwards. PH_MANY_TUNNELS=N runs it by hand with more (the
 * cloud end's Squid takes about 8,000: max_filedescriptors 16384). */
#define PH_MANY_TUNNELS_DEFAULT 2000
#define PH_MANY_BATCH 50

static void
ph_tunnel_many_idle_tunnels (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *authority = g_strdup_printf ("127.0.0.1:%u", cloud->origin_http_port);
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *inner = g_strdup_printf ("GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n", authority);
  g_autoptr (GPtrArray) conns = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_test_conn_free);
  const char *want = g_getenv ("PH_MANY_TUNNELS");
  guint n = want != NULL ? (guint) g_ascii_strtoull (want, NULL, 10) : PH_MANY_TUNNELS_DEFAULT;
  guint64 rss_before, rss_after;
  struct rlimit rl;

  n = MAX (PH_MANY_BATCH, n - n % PH_MANY_BATCH);
  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &rl), ==, 0);
  if (rl.rlim_cur < n + 256)
    {
      g_test_skip ("the descriptor limit is too low for this many tunnels");
      return;
    }
  rss_before = ph_agent_rss_kib (agent);
  /* In batches: a few dozen handshakes to the cloud at a time, as clients come. */
  for (guint i = 0; i < n; i += PH_MANY_BATCH)
    {
      for (guint j = i; j < i + PH_MANY_BATCH; j++)
        {
          PhTestConn *conn = ph_test_conn_new (agent->port);

          g_ptr_array_add (conns, conn);
          ph_test_conn_send (conn, connect, -1);
        }
      for (guint j = i; j < i + PH_MANY_BATCH; j++)
        {
          g_autofree char *head = ph_test_conn_read_head (g_ptr_array_index (conns, j), 30000);

          if (ph_test_head_status (head) != 200)
            g_error ("tunnel %u: %s", j, head ? head : "(no answer)");
        }
    }
  rss_after = ph_agent_rss_kib (agent);
  /* On stderr: the case runs in a subprocess whose stdout is not kept. */
  if (rss_before > 0 && rss_after > rss_before)
    g_printerr ("# %u idle tunnels: agent RSS %" G_GUINT64_FORMAT " -> %" G_GUINT64_FORMAT
                " KiB, %.1f KiB a tunnel\n",
                n, rss_before, rss_after, (double) (rss_after - rss_before) / n);

  /* Every one of them still works, the oldest first. */
  for (guint i = 0; i < conns->len; i++)
    ph_test_conn_send (g_ptr_array_index (conns, i), inner, -1);
  for (guint i = 0; i < conns->len; i++)
    {
      PhTestConn *conn = g_ptr_array_index (conns, i);
      g_autofree char *head = ph_test_conn_read_head (conn, 30000);

      g_assert_cmpint (ph_test_head_status (head), ==, 200);
      g_assert_cmpuint (ph_test_conn_read_body (conn, 6, NULL, 10000), ==, 6);
    }
  g_assert_true (
      ph_test_agent_wait_log (agent, "(max-tunnels=auto: the connection limit)", 1, 5000));
  g_ptr_array_set_size (conns, 0);
  ph_assert_hello_via (agent, cloud);
}

/* How often @needle occurs in the agent's log. */
static guint
ph_agent_log_count (PhTestAgent *agent, const char *needle)
{
  g_autofree char *log = ph_test_agent_log (agent);
  guint n = 0;

  for (const char *p = log; p != NULL && (p = strstr (p, needle)) != NULL; p += strlen (needle))
    n++;
  return n;
}

/* @needle is in the agent's log @want times; if not, the log goes to stderr with the failure. */
static void
ph_assert_log_count (PhTestAgent *agent, const char *needle, guint want)
{
  guint got = ph_agent_log_count (agent, needle);

  if (got != want)
    {
      g_autofree char *why
          = g_strdup_printf ("“%s” %u times in its log, not %u", needle, got, want);

      ph_test_agent_print_log (agent, why);
    }
  g_assert_cmpuint (got, ==, want);
}

/* One plain GET on a new client connection, closed by the client after the body, as package
 * managers and scripts do; @close also says "Connection: close". */
static void
ph_get_on_new_connection (PhTestAgent *agent, PhTestCloud *cloud, gboolean close)
{
  g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
  g_autofree char *request = g_strdup_printf (
      "GET http://127.0.0.1:%u/hello HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n%s\r\n",
      cloud->origin_http_port, cloud->origin_http_port, close ? "Connection: close\r\n" : "");
  g_autofree char *body = NULL;
  g_autofree char *head = NULL;

  g_assert_true (ph_test_conn_send (conn, request, -1));
  head = ph_read_response (conn, &body, 15000);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_assert_cmpstr (body, ==, "hello\n");
}

/* Plain requests from many client connections, one after another, share one connection to the
 * cloud proxy (the idle pool), as the seed chain's Squid shares its cache_peer connections:
 * before the pool every new client connection took a connection of its own, a full TLS
 * handshake each under load. Warm connections are off, so every connection made shows. */
static void
ph_tunnel_idle_pool (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const char *ready = "TLS with ";
  guint base;

  /* With warm=0 the agent makes one connection at start to see that the cloud answers. */
  g_assert_true (ph_test_agent_wait_log (agent, ready, 1, 10000));
  base = ph_agent_log_count (agent, ready);
  for (guint i = 0; i < 10; i++)
    ph_get_on_new_connection (agent, cloud, i % 2 == 0);
  /* One handshake for ten clients, and that connection still open, idle, for the next. */
  ph_assert_log_count (agent, ready, base + 1);
  for (guint i = 0; i < 40 && ph_connections_to (cloud->tls_port) > 1; i++)
    g_usleep (50 * 1000);
  g_assert_cmpuint (ph_connections_to (cloud->tls_port), ==, 1);

  /* A tunnel takes the idle connection too (CONNECT on a kept-alive proxy connection is plain
   * HTTP/1.1); it is then the tunnel's, and the next plain request needs a new one. */
  {
    g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
    g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
    g_autofree char *head = NULL;

    ph_test_conn_send (conn, connect, -1);
    head = ph_test_conn_read_head (conn, 15000);
    g_assert_cmpint (ph_test_head_status (head), ==, 200);
    ph_assert_log_count (agent, ready, base + 1);
    ph_get_on_new_connection (agent, cloud, FALSE);
    ph_assert_log_count (agent, ready, base + 2);
  }
  /* The tunnel's connection closed with it; the plain one stays idle. */
  for (guint i = 0; i < 40 && ph_connections_to (cloud->tls_port) > 1; i++)
    g_usleep (50 * 1000);
  g_assert_cmpuint (ph_connections_to (cloud->tls_port), ==, 1);

  /* A reload drops what was made under the old configuration. */
  ph_test_agent_signal (agent, SIGHUP);
  g_assert_true (ph_test_agent_wait_log (agent, "dropping 1 idle connections", 1, 5000));
  for (guint i = 0; i < 40 && ph_connections_to (cloud->tls_port) > 0; i++)
    g_usleep (50 * 1000);
  g_assert_cmpuint (ph_connections_to (cloud->tls_port), ==, 0);
  ph_get_on_new_connection (agent, cloud, TRUE);
  ph_assert_log_count (agent, ready, base + 3);
}

/* An origin that signs in per connection (NTLM): the upstream connection that carried its
 * challenge stays with its client (Squid pins it to that connection too), and another client's
 * request never rides it; the client's own next request does. */
static void
ph_tunnel_idle_pool_bound (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
  g_autofree char *challenge
      = ph_test_get_request (cloud->origin_http_port, "/status/401?challenge=ntlm");
  g_autofree char *hello = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;
  g_autofree char *scheme = NULL;
  guint base;

  g_assert_true (ph_test_agent_wait_log (agent, "TLS with ", 1, 10000));
  base = ph_agent_log_count (agent, "TLS with ");
  ph_test_conn_send (conn, challenge, -1);
  head = ph_read_response (conn, &body, 15000);
  g_assert_cmpint (ph_test_head_status (head), ==, 401);
  scheme = ph_test_head_header (head, "WWW-Authenticate");
  g_assert_cmpstr (scheme, ==, "NTLM");
  ph_assert_log_count (agent, "TLS with ", base + 1);

  /* Another client: a connection of its own. */
  ph_get_on_new_connection (agent, cloud, TRUE);
  ph_assert_log_count (agent, "TLS with ", base + 2);

  /* The first client again, on its kept-alive connection: its bound upstream connection. */
  g_clear_pointer (&head, g_free);
  g_clear_pointer (&body, g_free);
  ph_test_conn_send (conn, hello, -1);
  head = ph_read_response (conn, &body, 15000);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_assert_cmpstr (body, ==, "hello\n");
  ph_assert_log_count (agent, "TLS with ", base + 2);
  /* And the other client's connection, now idle in the pool, serves a third client. */
  ph_get_on_new_connection (agent, cloud, TRUE);
  ph_assert_log_count (agent, "TLS with ", base + 2);
}

/* The cloud closes an idle pooled connection (this case's Squid after 5 s idle, through
 * stunnel): the pool lets it go at once, and the next client's request goes on a new
 * connection without an error. */
static void
ph_tunnel_idle_pool_cloud_closes (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  gint64 idle_start;
  guint base;

  g_assert_true (ph_test_agent_wait_log (agent, "TLS with ", 1, 10000));
  base = ph_agent_log_count (agent, "TLS with ");
  /* The start-up probe's connection goes at once. */
  for (guint i = 0; i < 40 && ph_connections_to (cloud->tls_port) > 0; i++)
    g_usleep (50 * 1000);
  ph_get_on_new_connection (agent, cloud, TRUE);
  g_assert_cmpuint (ph_connections_to (cloud->tls_port), ==, 1);
  idle_start = g_get_monotonic_time ();
  g_assert_true (ph_test_agent_wait_log (agent, "idle connection to 127.0.0.1", 1, 20000));
  g_assert_cmpint (g_get_monotonic_time () - idle_start, >=, 4 * G_USEC_PER_SEC);
  g_assert_cmpuint (ph_agent_log_count (agent, "closed by the server"), >=, 1);
  for (guint i = 0; i < 40 && ph_connections_to (cloud->tls_port) > 0; i++)
    g_usleep (50 * 1000);
  g_assert_cmpuint (ph_connections_to (cloud->tls_port), ==, 0);
  ph_get_on_new_connection (agent, cloud, FALSE);
  ph_assert_log_count (agent, "TLS with ", base + 2);
  ph_assert_log_count (agent, "error=", 0);
}

/* The network changes (here: an interface comes up in the case's own namespace): connections
 * made over the old one are not reused. The idle and warm pools are emptied and refilled, and the
 * next request goes on a new connection. */
static void
ph_tunnel_network_change (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  guint base;

  /* The warm pool's two and one idle connection from a plain request. */
  g_assert_true (ph_test_agent_wait_log (agent, "TLS with ", 2, 10000));
  ph_get_on_new_connection (agent, cloud, TRUE);
  for (guint i = 0; i < 100 && ph_connections_to (cloud->tls_port) < 3; i++)
    g_usleep (50 * 1000);
  g_assert_cmpuint (ph_connections_to (cloud->tls_port), ==, 3);
  base = ph_agent_log_count (agent, "TLS with ");

  /* A veth pair, as a cable or a VPN interface coming up: new addresses and routes. */
  ph_run_ip ("link add ph-test0 type veth peer name ph-test1");
  ph_run_ip ("addr add 10.213.0.1/24 dev ph-test0");
  ph_run_ip ("link set ph-test1 up");
  ph_run_ip ("link set ph-test0 up");
  g_assert_true (
      ph_test_agent_wait_log (agent, "network changed: dropping 1 idle and 2 warm", 1, 10000));
  /* The warm pool is made again; the request after takes one of those, not an old one. */
  g_assert_true (ph_test_agent_wait_log (agent, "TLS with ", base + 2, 10000));
  ph_get_on_new_connection (agent, cloud, TRUE);
  ph_assert_log_count (agent, "error=", 0);
  ph_run_ip ("link del ph-test0");
}

/* A second origin on another loopback address (127.0.0.0/8 is all loopback on Linux; the
 * address is bound explicitly), for a direct CIDR rule that the shared origin on 127.0.0.1 does
 * not fall under. It answers every request with "second origin" and closes. */
typedef struct
{
  GSocket *socket;
  GThread *thread;
  guint16 port;
  gint stopping;
  gint served;
} PhSecondOrigin;

static gpointer
ph_second_origin_run (gpointer data)
{
  PhSecondOrigin *o = data;
  static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nConnection: close\r\n"
                               "\r\nsecond origin\n";

  while (!g_atomic_int_get (&o->stopping))
    {
      g_autoptr (GSocket) client = g_socket_accept (o->socket, NULL, NULL);
      g_autoptr (GString) head = g_string_new (NULL);
      char buf[4096];
      gssize n;

      if (client == NULL || g_atomic_int_get (&o->stopping))
        break;
      g_socket_set_timeout (client, 10);
      while (strstr (head->str, "\r\n\r\n") == NULL
             && (n = g_socket_receive (client, buf, sizeof buf, NULL, NULL)) > 0)
        g_string_append_len (head, buf, n);
      if (strstr (head->str, "\r\n\r\n") != NULL)
        {
          /* A short answer goes out whole on loopback. */
          g_socket_send (client, answer, sizeof answer - 1, NULL, NULL);
          g_atomic_int_inc (&o->served);
        }
      g_socket_close (client, NULL);
    }
  return NULL;
}

static PhSecondOrigin *
ph_second_origin_new (const char *address)
{
  PhSecondOrigin *o = g_new0 (PhSecondOrigin, 1);
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (address);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (inet, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  o->socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (o->socket, any, TRUE, &error);
  g_assert_no_error (error);
  g_socket_listen (o->socket, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (o->socket, &error);
  g_assert_no_error (error);
  o->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  o->thread = g_thread_new ("second-origin", ph_second_origin_run, o);
  return o;
}

static void
ph_second_origin_free (PhSecondOrigin *o)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketAddress) bound = g_socket_get_local_address (o->socket, NULL);
  g_autoptr (GSocketConnection) wake = NULL;

  g_atomic_int_set (&o->stopping, 1);
  /* accept() returns for this connection and sees the flag. */
  wake = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (bound), NULL, NULL);
  g_thread_join (o->thread);
  g_socket_close (o->socket, NULL);
  g_object_unref (o->socket);
  g_free (o);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhSecondOrigin, ph_second_origin_free)

/* One access line with all of @fields, asserted; its route= must be @route. */
static void
ph_assert_route (PhTestAgent *agent, const char *method, const char *target, const char *route)
{
  g_autofree char *m = g_strconcat ("method=", method, NULL);
  g_autofree char *t = g_strconcat ("target=", target, NULL);
  g_autofree char *r = g_strconcat ("route=", route, NULL);
  g_autofree char *line = ph_wait_access (agent, (const char *[]){ m, t, NULL }, 5000);

  g_assert_nonnull (line);
  if (strstr (line, r) == NULL)
    g_error ("%s %s: wanted %s in: %s", method, target, r, line);
}

/* [route] direct= and block= against the real cloud end: a direct name (localhost, which the
 * agent resolves itself), a direct CIDR (a second origin on 127.0.0.2), a blocked name, and a
 * target no rule names (127.0.0.1), each by CONNECT and by plain GET. Squid sees exactly the
 * tunneled ones; the agent's access lines say which way each went. */
static void
ph_tunnel_routes (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const char *proxy = fx->proxy;
  guint16 http = cloud->origin_http_port, https = cloud->origin_https_port;
  g_autoptr (PhSecondOrigin) second = ph_second_origin_new ("127.0.0.2");
  g_autofree char *name_get = g_strdup_printf ("http://localhost:%u/hello", http);
  g_autofree char *name_https = g_strdup_printf ("https://localhost:%u/hello", https);
  g_autofree char *name_connect = g_strdup_printf ("localhost:%u", https);
  g_autofree char *cidr_get = g_strdup_printf ("http://127.0.0.2:%u/x", second->port);
  g_autofree char *cidr_connect = g_strdup_printf ("127.0.0.2:%u", second->port);
  g_autofree char *proxied_get = ph_url ("http", http, "/hello");
  g_autofree char *proxied_https = ph_url ("https", https, "/hello");
  g_autofree char *proxied_connect = g_strdup_printf ("127.0.0.1:%u", https);
  g_autofree char *squid_get = g_strdup_printf ("GET %s ", proxied_get);
  g_autofree char *squid_connect = g_strdup_printf ("CONNECT %s ", proxied_connect);
  guint squid_all, squid_get_base, squid_connect_base, squid_name_base, squid_cidr_base;
  guint squid_blocked_base;
  g_autoptr (PhTestCurl) c = NULL;

  /* The cloud end is shared with the cases before: only lines added here count. */
  squid_all = ph_test_cloud_settled_access_log_lines (cloud, NULL);
  squid_get_base = ph_test_cloud_access_log_lines (cloud, squid_get);
  squid_connect_base = ph_test_cloud_access_log_lines (cloud, squid_connect);
  squid_name_base = ph_test_cloud_access_log_lines (cloud, "localhost");
  squid_cidr_base = ph_test_cloud_access_log_lines (cloud, "127.0.0.2");
  squid_blocked_base = ph_test_cloud_access_log_lines (cloud, "blocked.pinhole.test");

  /* A direct name, by GET and by CONNECT (TLS to the origin, verified, through the agent). */
  c = ph_test_curl ("-x", proxy, name_get, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "hello\n");
  g_clear_pointer (&c, ph_test_curl_free);
  c = ph_test_curl ("-x", proxy, "--cacert", cloud->origin_ca, name_https, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "hello\n");
  g_clear_pointer (&c, ph_test_curl_free);

  /* A direct CIDR, by GET and by CONNECT (-p: curl tunnels plain HTTP). */
  c = ph_test_curl ("-x", proxy, cidr_get, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "second origin\n");
  g_clear_pointer (&c, ph_test_curl_free);
  c = ph_test_curl ("-x", proxy, "-p", cidr_get, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "second origin\n");
  g_clear_pointer (&c, ph_test_curl_free);
  g_assert_cmpint (g_atomic_int_get (&second->served), ==, 2);

  /* A blocked name, by GET and by CONNECT: refused by the agent, 403 blocked. */
  {
    g_autofree char *body = NULL;
    g_autofree char *head = ph_test_exchange (
        agent->port,
        "GET http://ads.blocked.pinhole.test/track HTTP/1.1\r\nHost: ads.blocked.pinhole.test\r\n"
        "\r\n",
        &body, NULL, 5000);

    ph_assert_refusal (agent, head, body, 403, "blocked");
    g_assert_nonnull (strstr (body, "ads.blocked.pinhole.test"));
  }
  {
    g_autofree char *body = NULL;
    g_autofree char *head = ph_test_exchange (agent->port,
                                              "CONNECT blocked.pinhole.test:443 HTTP/1.1\r\n"
                                              "Host: blocked.pinhole.test:443\r\n\r\n",
                                              &body, NULL, 5000);

    ph_assert_refusal (agent, head, body, 403, "blocked");
  }

  /* A target no rule names: through the cloud proxy, by GET and by CONNECT. */
  c = ph_test_curl ("-x", proxy, proxied_get, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "hello\n");
  g_clear_pointer (&c, ph_test_curl_free);
  c = ph_test_curl ("-x", proxy, "--cacert", cloud->origin_ca, proxied_https, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "hello\n");
  g_clear_pointer (&c, ph_test_curl_free);

  ph_assert_route (agent, "GET", name_get, "direct");
  ph_assert_route (agent, "CONNECT", name_connect, "direct");
  ph_assert_route (agent, "GET", cidr_get, "direct");
  ph_assert_route (agent, "CONNECT", cidr_connect, "direct");
  ph_assert_route (agent, "GET", "http://ads.blocked.pinhole.test/track", "block");
  ph_assert_route (agent, "CONNECT", "blocked.pinhole.test:443", "block");
  ph_assert_route (agent, "GET", proxied_get, "proxy");
  ph_assert_route (agent, "CONNECT", proxied_connect, "proxy");

  /* Squid saw the two tunneled requests and nothing else. */
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (cloud, squid_get), ==,
                    squid_get_base + 1);
  g_assert_cmpuint (ph_test_cloud_access_log_lines (cloud, squid_connect), ==,
                    squid_connect_base + 1);
  g_assert_cmpuint (ph_test_cloud_access_log_lines (cloud, "localhost"), ==, squid_name_base);
  g_assert_cmpuint (ph_test_cloud_access_log_lines (cloud, "127.0.0.2"), ==, squid_cidr_base);
  g_assert_cmpuint (ph_test_cloud_access_log_lines (cloud, "blocked.pinhole.test"), ==,
                    squid_blocked_base);
  /* Lines without a request (warm connections that closed unused) may come and go. */
  g_assert_cmpuint (ph_test_cloud_access_log_lines (cloud, NULL)
                        - ph_test_cloud_access_log_lines (cloud, "transaction-end-before-headers"),
                    <=, squid_all + 2);
}

/* Every case gets a started agent on the shared cloud end unless its line says otherwise. */
/* --- SOCKS5 and SOCKS4a on the listener's port --- */

/* Sends @len bytes of SOCKS on a fresh connection to the agent and returns everything that comes
 * back until the agent closes (asserted, within 15 s). */
static GBytes *
ph_socks_exchange (PhTestAgent *agent, const char *bytes, gsize len)
{
  g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
  gboolean closed = FALSE;
  GBytes *got;

  g_assert_true (ph_test_conn_send (conn, bytes, (gssize) len));
  got = ph_test_conn_read_to_eof (conn, 15000, &closed);
  g_assert_true (closed);
  return got;
}

#define PH_SOCKS5_HELLO "\x05\x01\x00"
#define PH_SOCKS5_ACCEPT "\x05\x00"

/* A SOCKS5 exchange (greeting and request at once) answered with @code, then closed. */
static void
ph_assert_socks5_code (PhTestAgent *agent, const char *request, gsize len, guint8 code)
{
  g_autoptr (GByteArray) send = g_byte_array_new ();
  g_autoptr (GBytes) got = NULL;
  guint8 want[12] = { 5, 0, 5, code, 0, 1, 0, 0, 0, 0, 0, 0 };

  g_byte_array_append (send, (const guint8 *) PH_SOCKS5_HELLO, 3);
  g_byte_array_append (send, (const guint8 *) request, len);
  got = ph_socks_exchange (agent, (const char *) send->data, send->len);
  if (g_bytes_get_size (got) != sizeof want)
    ph_test_agent_print_log (agent, "SOCKS5 reply of the wrong size");
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), want, sizeof want);
}

/* The SOCKS5 request for CONNECT @name:@port (ATYP 3). */
static GByteArray *
ph_socks5_name_request (const char *name, guint16 port)
{
  GByteArray *a = g_byte_array_new ();
  guint8 head[5] = { 5, 1, 0, 3, (guint8) strlen (name) };
  guint8 p[2] = { port >> 8, port & 0xff };

  g_byte_array_append (a, head, 5);
  g_byte_array_append (a, (const guint8 *) name, strlen (name));
  g_byte_array_append (a, p, 2);
  return a;
}

/* curl --socks5-hostname, --socks5, --socks4a and --socks4 to the origin's HTTPS; git over
 * socks5h://. A name goes to Squid as a name (CONNECT localhost:PORT), and every access line
 * says proto=socks5 or socks4 beside the fields an HTTP CONNECT's has. */
static void
ph_tunnel_socks_curl (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *socks = g_strdup_printf ("127.0.0.1:%u", agent->port);
  g_autofree char *by_name
      = g_strdup_printf ("https://localhost:%u/hello", cloud->origin_https_port);
  g_autofree char *by_ip = ph_url ("https", cloud->origin_https_port, "/hello");
  g_autofree char *squid_name = g_strdup_printf ("CONNECT localhost:%u ", cloud->origin_https_port);
  g_autofree char *name_target = g_strdup_printf ("target=localhost:%u", cloud->origin_https_port);
  g_autofree char *ip_target = g_strdup_printf ("target=127.0.0.1:%u", cloud->origin_https_port);
  g_autofree char *line = NULL;
  guint squid_base = ph_test_cloud_settled_access_log_lines (cloud, squid_name);
  static const char *const flags[] = { "--socks5-hostname", "--socks4a", "--socks5", "--socks4" };

  for (gsize i = 0; i < G_N_ELEMENTS (flags); i++)
    {
      g_autoptr (PhTestCurl) c = ph_test_curl (flags[i], socks, "--cacert", cloud->origin_ca,
                                               i < 2 ? by_name : by_ip, NULL);

      g_test_message ("curl %s", flags[i]);
      ph_assert_curl_ok (c);
      g_assert_cmpstr (c->out_str, ==, "hello\n");
    }
  /* The two names reached Squid as names: it resolved them, not the agent. */
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (cloud, squid_name) - squid_base, ==, 2);
  ph_test_agent_assert_access (agent,
                               (const char *[]){ "method=CONNECT", name_target, "status=200",
                                                 "route=proxy", "proto=socks5", NULL },
                               1, 5000);
  ph_test_agent_assert_access (
      agent, (const char *[]){ "method=CONNECT", name_target, "status=200", "proto=socks4", NULL },
      1, 5000);
  ph_test_agent_assert_access (
      agent, (const char *[]){ "method=CONNECT", ip_target, "status=200", "proto=socks5", NULL }, 1,
      5000);
  ph_test_agent_assert_access (
      agent, (const char *[]){ "method=CONNECT", ip_target, "status=200", "proto=socks4", NULL }, 1,
      5000);
  line = ph_wait_access (agent, (const char *[]){ name_target, "proto=socks5", NULL }, 5000);
  g_assert_true (g_regex_match_simple ("access client=127\\.0\\.0\\.1:[0-9]+ method=CONNECT "
                                       "target=\\S+ status=200 up=[0-9]+ down=[0-9]+ "
                                       "duration=[0-9.]+s route=proxy( error=\\S+)? proto=socks5"
                                       "( upstream=h2)?$",
                                       line, 0, 0));
  g_assert_cmpuint (ph_access_field (line, "down"), >, 6);

  /* git over socks5h://: no git server here, so the origin answers 404, but the tunnel it asked
   * for went through, by name, TLS verified (GIT_SSL_CAINFO: git's GnuTLS build ignores
   * -c http.sslCAInfo). */
  {
    g_autofree char *proxy = g_strdup_printf ("http.proxy=socks5h://%s", socks);
    g_autofree char *ca = g_strdup_printf ("http.sslCAInfo=%s", cloud->origin_ca);
    g_autofree char *repo
        = g_strdup_printf ("https://localhost:%u/repo.git", cloud->origin_https_port);
    const char *argv[] = { "git", "-c", proxy, "-c", ca, "ls-remote", repo, NULL };
    g_autofree char *err = NULL;
    g_autofree char *git = g_find_program_in_path ("git");
    g_auto (GStrv) envp
        = g_environ_setenv (g_get_environ (), "GIT_SSL_CAINFO", cloud->origin_ca, TRUE);
    int status = 0;

    if (git == NULL)
      {
        g_assert_cmpstr (g_getenv ("CI"), !=, "true");
        g_test_message ("git is not installed: git over socks5h:// not tried");
        return;
      }
    squid_base = ph_test_cloud_settled_access_log_lines (cloud, squid_name);
    envp = g_environ_unsetenv (envp, "https_proxy");
    envp = g_environ_unsetenv (envp, "HTTPS_PROXY");
    envp = g_environ_unsetenv (envp, "all_proxy");
    envp = g_environ_unsetenv (envp, "ALL_PROXY");
    g_assert_true (g_spawn_sync (NULL, (char **) argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL,
                                 &err, &status, NULL));
    g_test_message ("git ls-remote: %s", err);
    g_assert_nonnull (strstr (err, "repo.git/' not found"));
    g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (cloud, squid_name) - squid_base, >=,
                      1);
  }
}

/* A hand-built SOCKS5 client (Python, raw socket): ATYP 3 and ATYP 1 to the origin's plain HTTP
 * port, the HTTP request sent at once after the SOCKS request (bytes that go through the tunnel
 * untouched). */
static void
ph_tunnel_socks_python (PhTunnelFixture *fx)
{
  static const char script[]
      = "import socket, struct, sys\n"
        "port, origin = int(sys.argv[1]), int(sys.argv[2])\n"
        "for atyp, addr in ((3, b'\\x09localhost'), (1, socket.inet_aton('127.0.0.1'))):\n"
        "    s = socket.create_connection(('127.0.0.1', port), timeout=15)\n"
        "    s.sendall(b'\\x05\\x01\\x00')\n"
        "    assert s.recv(2) == b'\\x05\\x00'\n"
        "    req = b'GET /hello HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n'\n"
        "    s.sendall(bytes([5, 1, 0, atyp]) + addr + struct.pack('>H', origin) + req)\n"
        "    reply = b''\n"
        "    while len(reply) < 10:\n"
        "        reply += s.recv(10 - len(reply))\n"
        "    assert reply == b'\\x05\\x00\\x00\\x01' + bytes(6), reply\n"
        "    data = b''\n"
        "    while True:\n"
        "        chunk = s.recv(4096)\n"
        "        if not chunk:\n"
        "            break\n"
        "        data += chunk\n"
        "    assert data.startswith(b'HTTP/1.') and data.endswith(b'\\r\\n\\r\\nhello\\n'), data\n"
        "    print('ok', atyp)\n";
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *port = g_strdup_printf ("%u", agent->port);
  g_autofree char *origin = g_strdup_printf ("%u", cloud->origin_http_port);
  const char *argv[] = { "python3", "-c", script, port, origin, NULL };
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *name_target = g_strdup_printf ("target=localhost:%u", cloud->origin_http_port);
  g_autofree char *ip_target = g_strdup_printf ("target=127.0.0.1:%u", cloud->origin_http_port);
  g_autoptr (GError) error = NULL;
  int status = 0;

  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out,
                               &err, &status, &error));
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_printerr ("# python: %s%s\n", out, err);
      ph_test_agent_print_log (agent, "the Python SOCKS5 client failed");
    }
  g_assert_cmpstr (out, ==, "ok 3\nok 1\n");
  ph_test_agent_assert_access (
      agent, (const char *[]){ name_target, "status=200", "proto=socks5", NULL }, 1, 5000);
  ph_test_agent_assert_access (
      agent, (const char *[]){ ip_target, "status=200", "proto=socks5", NULL }, 1, 5000);
}

/* What a SOCKS client gets for what the agent does not take: only user/password offered (0xFF),
 * a bad version, BIND and UDP ASSOCIATE (0x07), an unknown address type (0x08), a name that is
 * none (0x04), SOCKS4 BIND (0x5B); and a refused connection behind Squid (0x05). */
static void
ph_tunnel_socks_malformed (PhTunnelFixture *fx)
{
  PhTestAgent *agent = fx->agent;
  guint16 closed_port = ph_test_free_port ();
  g_autoptr (GBytes) got = NULL;
  g_autoptr (GByteArray) refused = ph_socks5_name_request ("localhost", closed_port);

  got = ph_socks_exchange (agent, "\x05\x01\x02", 3);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), "\x05\xff", 2);
  g_clear_pointer (&got, g_bytes_unref);
  got = ph_socks_exchange (agent, "\x05\x02\x01\x02", 4);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), "\x05\xff", 2);
  g_clear_pointer (&got, g_bytes_unref);

  ph_assert_socks5_code (agent, "\x04\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10, 0x01);
  ph_assert_socks5_code (agent, "\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50", 10, 0x07);
  ph_assert_socks5_code (agent, "\x05\x03\x00\x01\x7f\x00\x00\x01\x00\x35", 10, 0x07);
  ph_assert_socks5_code (agent, "\x05\x01\x00\x09\x7f\x00\x00\x01\x00\x50", 10, 0x08);
  ph_assert_socks5_code (agent, "\x05\x01\x00\x03\x03\x61 b\x00\x50", 10, 0x04);
  ph_assert_socks5_code (agent, (const char *) refused->data, refused->len, 0x05);

  got = ph_socks_exchange (agent, "\x04\x02\x00\x50\x7f\x00\x00\x01\x00", 9);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got),
                   "\x00\x5b\x00\x00\x00\x00\x00\x00", 8);

  ph_test_agent_assert_access (agent, (const char *[]){ "error=socks-no-method", NULL }, 2, 5000);
  ph_test_agent_assert_access (
      agent, (const char *[]){ "error=socks-command", "proto=socks5", NULL }, 2, 5000);
  ph_test_agent_assert_access (agent, (const char *[]){ "error=socks-address-type", NULL }, 1,
                               5000);
  ph_test_agent_assert_access (
      agent, (const char *[]){ "error=socks-command", "proto=socks4", NULL }, 1, 5000);
  ph_test_agent_assert_access (agent, (const char *[]){ "status=503", "proto=socks5", NULL }, 1,
                               5000);
  /* HTTP on the same port is as before. */
  {
    g_autofree char *get = ph_test_get_request (fx->cloud->origin_http_port, "/hello");
    g_autofree char *body = NULL;
    g_autofree char *head = ph_test_exchange (agent->port, get, &body, NULL, 15000);

    g_assert_cmpint (ph_test_head_status (head), ==, 200);
    g_assert_cmpstr (body, ==, "hello\n");
  }
}

/* A SOCKS head that stops half-way is closed after head-timeout, without a reply to it. */
static void
ph_tunnel_socks_head_timeout (PhTunnelFixture *fx)
{
  PhTestAgent *agent = fx->agent;
  static const struct
  {
    const char *bytes;
    gsize len;
    const char *answer;
    gsize answer_len;
  } cases[] = {
    { "\x05\x01", 2, "", 0 },                                 /* greeting cut */
    { "\x05\x01\x00\x05\x01\x00", 6, "\x05\x00", 2 },         /* request cut */
    { "\x04\x01\x00\x50\x00\x00\x00\x01\x00loc", 12, "", 0 }, /* SOCKS4a name cut */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
      g_autoptr (GBytes) got = NULL;
      gboolean closed = FALSE;
      gint64 start = g_get_monotonic_time (), elapsed;

      ph_test_conn_send (conn, cases[i].bytes, (gssize) cases[i].len);
      got = ph_test_conn_read_to_eof (conn, 10000, &closed);
      elapsed = g_get_monotonic_time () - start;
      g_assert_true (closed);
      g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), cases[i].answer,
                       cases[i].answer_len);
      g_assert_cmpint (elapsed, >=, 800 * G_TIME_SPAN_MILLISECOND);
      g_assert_cmpint (elapsed, <, 4 * G_USEC_PER_SEC);
    }
  ph_test_agent_assert_access (agent, (const char *[]){ "error=head-timeout", NULL }, 3, 5000);
}

/* Routes apply to SOCKS as to HTTP CONNECT: a blocked name gets 0x02 (not allowed by ruleset),
 * a direct one is connected by the agent and never reaches Squid. */
static void
ph_tunnel_socks_routes (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autoptr (GByteArray) blocked = ph_socks5_name_request ("x.blocked.pinhole.test", 443);
  g_autofree char *socks = g_strdup_printf ("socks5h://127.0.0.1:%u", agent->port);
  g_autofree char *by_name
      = g_strdup_printf ("https://localhost:%u/hello", cloud->origin_https_port);
  g_autofree char *name_target = g_strdup_printf ("target=localhost:%u", cloud->origin_https_port);
  guint squid_all = ph_test_cloud_settled_access_log_lines (cloud, NULL);
  g_autoptr (PhTestCurl) c = NULL;

  ph_assert_socks5_code (agent, (const char *) blocked->data, blocked->len, 0x02);
  ph_test_agent_assert_access (agent,
                               (const char *[]){ "target=x.blocked.pinhole.test:443", "status=403",
                                                 "route=block", "error=blocked", "proto=socks5",
                                                 NULL },
                               1, 5000);
  c = ph_test_curl ("-x", socks, "--cacert", cloud->origin_ca, by_name, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "hello\n");
  ph_test_agent_assert_access (
      agent, (const char *[]){ name_target, "status=200", "route=direct", "proto=socks5", NULL }, 1,
      5000);
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (cloud, NULL), ==, squid_all);
}

/* The cloud proxy unreachable: a SOCKS5 client gets 0x01 (general failure: the SOCKS server's
 * own way out is down), a SOCKS4 one 0x5B. */
static void
ph_tunnel_socks_upstream_down (PhTunnelFixture *fx)
{
  PhTestAgent *agent = NULL;
  g_autoptr (GByteArray) req = ph_socks5_name_request ("localhost", 443);
  g_autoptr (GBytes) got = NULL;

  g_key_file_set_integer (fx->config, "upstream", "port", ph_test_free_port ());
  agent = ph_tunnel_start (fx);
  ph_assert_socks5_code (agent, (const char *) req->data, req->len, 0x01);
  got = ph_socks_exchange (agent, "\x04\x01\x01\xbb\x00\x00\x00\x01\x00localhost\x00", 19);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got),
                   "\x00\x5b\x00\x00\x00\x00\x00\x00", 8);
  ph_test_agent_assert_access (
      agent, (const char *[]){ "error=upstream-tcp", "proto=socks5", NULL }, 1, 5000);
  ph_test_agent_assert_access (
      agent, (const char *[]){ "error=upstream-tcp", "proto=socks4", NULL }, 1, 5000);
}

/* [listener] socks-users names a user, and the clients are on loopback: they need no sign-in
 * (curl and PySocks with credentials offer 0x00 beside 0x02, and are let in without a check;
 * without credentials too), but one that offers 0x02 alone signs in, and is refused with RFC
 * 1929's failure when the password is not alice's (this standalone agent has no secret store,
 * so no password is right: tests/netns/test-socks-auth.sh signs in for real, from a LAN
 * address). Malformed sub-negotiations get the failure reply and the agent keeps serving. No
 * password reaches the agent's log. */
static void
ph_tunnel_socks_auth_loopback (PhTunnelFixture *fx)
{
  static const char script[]
      = "import socks, ssl, sys\n"
        "port, origin, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n"
        "for user, password in ((None, None), ('alice', sys.stdin.readline().strip())):\n"
        "    s = socks.socksocket()\n"
        "    s.settimeout(15)\n"
        "    s.set_proxy(socks.SOCKS5, '127.0.0.1', port, rdns=True, username=user,\n"
        "                password=password)\n"
        "    s.connect(('localhost', origin))\n"
        "    t = ssl.create_default_context(cafile=ca).wrap_socket(s, "
        "server_hostname='localhost')\n"
        "    t.sendall(b'GET /hello HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n')\n"
        "    data = b''\n"
        "    while True:\n"
        "        chunk = t.recv(4096)\n"
        "        if not chunk:\n"
        "            break\n"
        "        data += chunk\n"
        "    assert data.endswith(b'\\r\\n\\r\\nhello\\n'), data\n"
        "    print('ok', user)\n";
  static const struct
  {
    const char *bytes;
    gsize len;
  } bad[] = {
    { "\x05\x01\x02\x02\x01u\x01p", 8 },   /* version 2 */
    { "\x05\x01\x02\x01\x00\x01p", 7 },    /* no name */
    { "\x05\x01\x02\x05\x01\x00", 6 },     /* a greeting again */
    { "\x05\x01\x02\xff\xff\xff\xff", 7 }, /* garbage */
    { "\x05\x01\x02\x01\x05"
      "alice\x00",
      11 }, /* an empty password */
  };
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  const char *password = "Sx9-not-alices-7Qm";
  g_autofree char *socks = g_strdup_printf ("127.0.0.1:%u", agent->port);
  g_autofree char *user = g_strdup_printf ("alice:%s", password);
  g_autofree char *by_name
      = g_strdup_printf ("https://localhost:%u/hello", cloud->origin_https_port);
  g_autofree char *squid_name = g_strdup_printf ("CONNECT localhost:%u ", cloud->origin_https_port);
  g_autofree char *name_target = g_strdup_printf ("target=localhost:%u", cloud->origin_https_port);
  g_autofree char *log = NULL;
  guint squid_base = ph_test_cloud_settled_access_log_lines (cloud, squid_name);
  g_autoptr (GByteArray) signin = g_byte_array_new ();
  g_autoptr (GBytes) got = NULL;

  /* curl with credentials, and without. */
  {
    g_autoptr (PhTestCurl) with = ph_test_curl ("--socks5-hostname", socks, "--proxy-user", user,
                                                "--cacert", cloud->origin_ca, by_name, NULL);
    g_autoptr (PhTestCurl) without
        = ph_test_curl ("--socks5-hostname", socks, "--cacert", cloud->origin_ca, by_name, NULL);

    ph_assert_curl_ok (with);
    g_assert_cmpstr (with->out_str, ==, "hello\n");
    ph_assert_curl_ok (without);
    g_assert_cmpstr (without->out_str, ==, "hello\n");
  }
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (cloud, squid_name) - squid_base, ==, 2);
  ph_test_agent_assert_access (
      agent, (const char *[]){ name_target, "status=200", "proto=socks5", NULL }, 2, 5000);

  /* 0x02 alone: chosen, then the password checked and refused. */
  g_byte_array_append (signin,
                       (const guint8 *) "\x05\x01\x02\x01\x05"
                                        "alice",
                       10);
  g_byte_array_append (signin, (const guint8 *) "\x12", 1);
  g_byte_array_append (signin, (const guint8 *) password, strlen (password));
  got = ph_socks_exchange (agent, (const char *) signin->data, signin->len);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), "\x05\x02\x01\x01", 4);
  g_clear_pointer (&got, g_bytes_unref);
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      got = ph_socks_exchange (agent, bad[i].bytes, bad[i].len);
      g_test_message ("malformed sub-negotiation %" G_GSIZE_FORMAT, i);
      g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), "\x05\x02\x01\x01", 4);
      g_clear_pointer (&got, g_bytes_unref);
    }
  ph_test_agent_assert_access (
      agent, (const char *[]){ "status=407", "error=socks-auth", "proto=socks5", NULL },
      1 + G_N_ELEMENTS (bad), 5000);

  /* PySocks (Debian's python3-socks), socks5h, without and with credentials; and the agent
   * still serves after the refusals. */
  {
    g_autofree char *port = g_strdup_printf ("%u", agent->port);
    g_autofree char *origin = g_strdup_printf ("%u", cloud->origin_https_port);
    const char *python = g_getenv ("PH_PYTHON") ? g_getenv ("PH_PYTHON") : "/usr/bin/python3";
    const char *check[] = { python, "-c", "import socks", NULL };
    const char *argv[] = { python, "-c", script, port, origin, cloud->origin_ca, NULL };
    g_autoptr (GSubprocess) proc = NULL;
    g_autoptr (GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *input = g_strdup_printf ("%s\n", password);
    int status = 1;

    if (!g_spawn_sync (NULL, (char **) check, NULL,
                       G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL,
                       NULL, &status, NULL)
        || !g_spawn_check_wait_status (status, NULL))
      {
        g_assert_cmpstr (g_getenv ("CI"), !=, "true");
        g_test_message ("PySocks (python3-socks) is not installed: not tried");
      }
    else
      {
        proc = g_subprocess_newv (argv,
                                  G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                      | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                  &error);
        g_assert_no_error (error);
        g_assert_true (g_subprocess_communicate_utf8 (proc, input, NULL, &out, &err, &error));
        g_assert_no_error (error);
        if (!g_subprocess_get_successful (proc))
          {
            g_printerr ("# PySocks: %s%s\n", out, err);
            ph_test_agent_print_log (agent, "the PySocks client failed");
          }
        g_assert_cmpstr (out, ==, "ok None\nok alice\n");
        ph_test_agent_assert_access (
            agent, (const char *[]){ name_target, "status=200", "proto=socks5", NULL }, 4, 5000);
      }
  }
  log = ph_test_agent_log (agent);
  g_assert_null (strstr (log, password));
}

/* The cases tunnel-h2 (--h2) runs against nghttpx --http2-proxy (the agent's tunnels and plain
 * requests are streams of one HTTP/2 connection there), and its own h2-* cases. The others are
 * left out: the idle pool, warm, max-tunnels and kept-alive HTTP/1.1 connection cases count
 * connections HTTP/2 does not make; tinyproxy, the TLS recorder and the network namespace are
 * other cloud ends; stunnel's own faults (upstream-slow) are not nghttpx's, whose are in
 * h2-dead-connection. */
static const char *const ph_h2_cases[] = {
  "connect-https",
  "plain-get",
  "proxy-answers",
  "chunked-post",
  "expect-continue",
  "keep-alive",
  "hop-by-hop",
  "bulk-download",
  "bulk-upload",
  "pin-mismatch-cloud",
  "early-data",
  "wrong-password",
  "upstream-reset",
  "client-vanishes",
  "slow-upload",
  "routes",
  "socks-curl",
  "h2-one-connection",
  "h2-two-connections",
  "h2-http2-off",
  "h2-dead-connection",
  "h2-stream-limit",
  NULL,
};

static gboolean
ph_tunnel_h2 (void)
{
  return g_strcmp0 (g_getenv ("PH_CLOUD_FRONT"), "nghttpx") == 0;
}

static gboolean
ph_tunnel_case_runs_on_h2 (const char *name)
{
  return g_strv_contains (ph_h2_cases, name);
}

/* The agent's TCP connections to the cloud proxy's port now (ss: only the agent goes there). */
static guint
ph_tunnel_cloud_connections (PhTestCloud *cloud)
{
  g_autofree char *cmd
      = g_strdup_printf ("ss -Htn state established '( dport = :%u )'", cloud->tls_port);
  g_autofree char *out = NULL;
  g_autoptr (GError) error = NULL;
  guint n = 0;
  int status = 0;

  g_assert_true (g_spawn_command_line_sync (cmd, &out, NULL, &status, &error));
  g_assert_no_error (error);
  for (const char *p = out; p != NULL && *p != '\0'; p = strchr (p, '\n'))
    {
      if (*p == '\n')
        p++;
      if (*p != '\0')
        n++;
    }
  return n;
}

/* Opens @n tunnels to the origin's plain port at once (those that come while a connection is
 * being made wait for it), then checks a GET /hello in each; they stay open in @conns. */
static void
ph_tunnel_open_hello_tunnels (PhTunnelFixture *fx, PhTestConn **conns, guint n)
{
  PhTestCloud *cloud = fx->cloud;
  g_autofree char *authority = g_strdup_printf ("127.0.0.1:%u", cloud->origin_http_port);
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *get = g_strdup_printf ("GET /hello HTTP/1.1\r\nHost: %s\r\n\r\n", authority);

  for (guint i = 0; i < n; i++)
    {
      conns[i] = ph_test_conn_new (fx->agent->port);
      g_assert_true (ph_test_conn_send (conns[i], connect, -1));
    }
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *established = ph_test_conn_read_head (conns[i], 15000);
      g_autofree char *head = NULL;
      g_autoptr (GByteArray) body = g_byte_array_new ();

      g_assert_nonnull (established);
      g_assert_cmpint (ph_test_head_status (established), ==, 200);
      g_assert_true (ph_test_conn_send (conns[i], get, -1));
      head = ph_test_conn_read_head (conns[i], 10000);
      g_assert_nonnull (head);
      g_assert_cmpint (ph_test_head_status (head), ==, 200);
      g_assert_cmpuint (ph_test_conn_read_body (conns[i], 6, body, 10000), ==, 6);
      g_assert_cmpmem (body->data, body->len, "hello\n", 6);
    }
}

/* tunnel-h2: several tunnels open at once, each with its bytes checked, go as streams of ONE
 * TLS connection to the cloud proxy (the warm pool keeps none for a proxy that speaks HTTP/2),
 * and each access line says upstream=h2. */
static void
ph_tunnel_h2_one_connection (PhTunnelFixture *fx)
{
  enum
  {
    N = 6
  };
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *target = g_strdup_printf ("target=127.0.0.1:%u", cloud->origin_http_port);
  /* h2-two-connections: [upstream] h2-connections=2 spreads them over two. */
  guint expected = MAX (1, g_key_file_get_integer (fx->config, "upstream", "h2-connections", NULL));
  PhTestConn *conns[N];

  ph_tunnel_open_hello_tunnels (fx, conns, N);
  /* Every tunnel still open: one connection carries them all. */
  g_test_message ("%u tunnels open, %u TCP connection(s) to the cloud proxy", N,
                  ph_tunnel_cloud_connections (cloud));
  g_assert_cmpuint (ph_tunnel_cloud_connections (cloud), ==, expected);
  for (guint i = 0; i < N; i++)
    ph_test_conn_free (conns[i]);
  ph_test_agent_assert_access (
      agent, (const char *[]){ "method=CONNECT", target, "status=200", "upstream=h2", NULL }, N,
      5000);
  /* A tunnel after them takes the same connection. */
  {
    g_autofree char *url = ph_url ("https", cloud->origin_https_port, "/hello");
    g_autoptr (PhTestCurl) c
        = ph_test_curl ("-x", fx->proxy, "--cacert", cloud->origin_ca, url, NULL);
    ph_assert_curl_ok (c);
    g_assert_cmpstr (c->out_str, ==, "hello\n");
  }
  g_assert_cmpuint (ph_tunnel_cloud_connections (cloud), ==, expected);
}

/* tunnel-h2: [upstream] http2=off against the same nghttpx: no h2 offered, so the tunnel goes
 * over HTTP/1.1 (nghttpx's HTTP/1.1 front) as before, and its access line has no upstream=h2. */
static void
ph_tunnel_h2_http2_off (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  g_autofree char *url = ph_url ("https", cloud->origin_https_port, "/hello");
  g_autoptr (PhTestCurl) c = NULL;
  g_autofree char *log = NULL;

  g_key_file_set_string (fx->config, "upstream", "http2", "off");
  ph_tunnel_start (fx);
  c = ph_test_curl ("-x", fx->proxy, "--cacert", cloud->origin_ca, url, NULL);
  ph_assert_curl_ok (c);
  g_assert_cmpstr (c->out_str, ==, "hello\n");
  ph_test_agent_assert_access (fx->agent, (const char *[]){ "method=CONNECT", "status=200", NULL },
                               1, 5000);
  log = ph_test_agent_log (fx->agent);
  g_assert_null (strstr (log, "upstream=h2"));
}

/* tunnel-h2: nghttpx takes 2 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS 2). Five
 * tunnels asked for at once: those past the limit (refused, or never opened) go to new
 * connections, 2 + 2 + 1, and every one works. */
static void
ph_tunnel_h2_stream_limit (PhTunnelFixture *fx)
{
  enum
  {
    N = 5
  };
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *log = NULL;
  PhTestConn *conns[N];

  ph_tunnel_open_hello_tunnels (fx, conns, N);
  /* The streams opened before nghttpx's SETTINGS came were refused (REFUSED_STREAM) and went
   * again. */
  log = ph_test_agent_log (agent);
  g_assert_nonnull (strstr (log, "did not take the stream"));
  g_assert_cmpuint (ph_tunnel_cloud_connections (cloud), ==, 3);
  for (guint i = 0; i < N; i++)
    ph_test_conn_free (conns[i]);
  ph_test_agent_assert_access (
      agent, (const char *[]){ "method=CONNECT", "status=200", "upstream=h2", NULL }, N, 5000);
}

/* The state letter of process @pid (/proc/PID/stat: R, S, T...), '?' when it is gone. */
static char
ph_tunnel_proc_state (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *text = NULL;
  const char *paren;

  if (!g_file_get_contents (path, &text, NULL, NULL) || (paren = strrchr (text, ')')) == NULL
      || paren[1] != ' ')
    return '?';
  return paren[2];
}

/* nghttpx's processes (its master and every process under it, found by their parent in /proc)
 * get @signum; with SIGSTOP, returns once each is stopped. */
static void
ph_tunnel_signal_nghttpx (PhTestCloud *cloud, int signum)
{
  g_autofree char *path = g_build_filename (cloud->dir, "nghttpx.pid", NULL);
  g_autofree char *text = NULL;
  g_autoptr (GArray) pids = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autoptr (GDir) proc = NULL;
  const char *name;
  GPid master;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  master = (GPid) g_ascii_strtoll (text, NULL, 10);
  g_assert_cmpint (master, >, 0);
  g_array_append_val (pids, master);
  proc = g_dir_open ("/proc", 0, NULL);
  g_assert_nonnull (proc);
  while ((name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *stat_path = g_strdup_printf ("/proc/%s/stat", name);
      g_autofree char *stat = NULL;
      const char *paren;
      int ppid = 0;

      if (!g_ascii_isdigit (name[0]) || !g_file_get_contents (stat_path, &stat, NULL, NULL)
          || (paren = strrchr (stat, ')')) == NULL || sscanf (paren + 2, "%*c %d", &ppid) != 1)
        continue;
      if (ppid == (int) master)
        {
          GPid child = (GPid) g_ascii_strtoll (name, NULL, 10);
          g_array_append_val (pids, child);
        }
    }
  g_assert_cmpuint (pids->len, >=, 2); /* the master and its worker */
  for (guint i = 0; i < pids->len; i++)
    g_assert_cmpint (kill (g_array_index (pids, GPid, i), signum), ==, 0);
  for (guint i = 0; signum == SIGSTOP && i < pids->len; i++)
    {
      gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

      while (ph_tunnel_proc_state (g_array_index (pids, GPid, i)) != 'T')
        {
          g_assert_cmpint (g_get_monotonic_time (), <, deadline);
          g_usleep (10 * 1000);
        }
    }
}

/* tunnel-h2: the HTTP/2 connection goes silent (nghttpx stopped: a network that went away
 * without a word). A CONNECT on it is answered 504 after response-timeout, the PING that follows
 * gets no answer, so the connection is taken as lost: once the cloud end is back, the next
 * tunnel is made on a new connection and works. Then the cloud end is killed while a tunnel
 * carries a download: the client sees the end at once (not a hang), and the agent serves on. */
static void
ph_tunnel_h2_dead_connection (PhTunnelFixture *fx)
{
  PhTestCloud *cloud = fx->cloud;
  PhTestAgent *agent = fx->agent;
  g_autofree char *url = ph_url ("https", cloud->origin_https_port, "/hello");
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *authority = g_strdup_printf ("127.0.0.1:%u", cloud->origin_http_port);
  g_autofree char *inner = g_strdup_printf (
      "GET /bytes/%" G_GUINT64_FORMAT " HTTP/1.1\r\nHost: %s\r\n\r\n", PH_100MB, authority);
  g_autofree char *log = NULL;
  gint64 start, elapsed;

  {
    g_autoptr (PhTestCurl) c
        = ph_test_curl ("-x", fx->proxy, "--cacert", cloud->origin_ca, url, NULL);
    ph_assert_curl_ok (c);
  }
  ph_tunnel_signal_nghttpx (cloud, SIGSTOP);
  {
    g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
    g_autofree char *head = NULL;

    start = g_get_monotonic_time ();
    g_assert_true (ph_test_conn_send (conn, connect, -1));
    head = ph_test_conn_read_head (conn, 15000);
    elapsed = g_get_monotonic_time () - start;
    g_test_message ("silent HTTP/2 connection: %s after %.2f s", head ? head : "(nothing)",
                    (double) elapsed / G_USEC_PER_SEC);
    g_assert_nonnull (head);
    g_assert_cmpint (ph_test_head_status (head), ==, 504);
    g_assert_cmpint (elapsed, >=, 1500 * G_TIME_SPAN_MILLISECOND);
    g_assert_cmpint (elapsed, <, 6 * G_USEC_PER_SEC);
  }
  /* The PING's 5 s. */
  start = g_get_monotonic_time ();
  while (log == NULL || strstr (log, "did not answer an HTTP/2 PING") == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time () - start, <, 15 * G_USEC_PER_SEC);
      g_usleep (100 * 1000);
      g_free (log);
      log = ph_test_agent_log (agent);
    }
  ph_tunnel_signal_nghttpx (cloud, SIGCONT);
  {
    g_autoptr (PhTestCurl) c
        = ph_test_curl ("-x", fx->proxy, "--cacert", cloud->origin_ca, url, NULL);
    ph_assert_curl_ok (c);
    g_assert_cmpstr (c->out_str, ==, "hello\n");
  }
  /* The new connection resumed the TLS session of the one before (kept from its streams). */
  g_clear_pointer (&log, g_free);
  log = ph_test_agent_log (agent);
  g_assert_nonnull (strstr (log, ", resumed)"));
  ph_test_agent_assert_access (
      agent, (const char *[]){ "method=CONNECT", "status=200", "upstream=h2", NULL }, 2, 5000);

  /* Killed mid-stream. */
  {
    g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
    g_autofree char *head = NULL;
    g_autoptr (GBytes) rest = NULL;
    gboolean closed = FALSE;

    g_assert_true (ph_test_conn_send (conn, connect, -1));
    head = ph_test_conn_read_head (conn, 15000);
    g_assert_cmpint (ph_test_head_status (head), ==, 200);
    g_assert_true (ph_test_conn_send (conn, inner, -1));
    g_clear_pointer (&head, g_free);
    head = ph_test_conn_read_head (conn, 15000);
    g_assert_cmpint (ph_test_head_status (head), ==, 200);
    g_assert_cmpuint (ph_test_conn_read_body (conn, 1 << 20, NULL, 15000), ==, 1 << 20);
    ph_tunnel_signal_nghttpx (cloud, SIGKILL);
    start = g_get_monotonic_time ();
    rest = ph_test_conn_read_to_eof (conn, 10000, &closed);
    elapsed = g_get_monotonic_time () - start;
    g_test_message ("cloud end killed mid-stream: the client's end came after %.2f s",
                    (double) elapsed / G_USEC_PER_SEC);
    g_assert_true (closed);
    g_assert_cmpint (elapsed, <, 5 * G_USEC_PER_SEC);
  }
  /* The agent serves on: with the cloud end gone, a clear 502. */
  {
    g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
    g_autofree char *head = NULL;

    g_assert_true (ph_test_conn_send (conn, connect, -1));
    head = ph_test_conn_read_head (conn, 15000);
    g_assert_nonnull (head);
    g_assert_cmpint (ph_test_head_status (head), ==, 502);
  }
}

static const PhTunnelCase ph_cases[] = {
  { "connect-https", ph_tunnel_connect_https },
  { "plain-get", ph_tunnel_plain_get },
  { "proxy-answers", ph_tunnel_proxy_answers },
  { "chunked-post", ph_tunnel_chunked_post },
  { "expect-continue", ph_tunnel_expect_continue },
  { "keep-alive", ph_tunnel_keep_alive },
  { "hop-by-hop", ph_tunnel_hop_by_hop },
  { "bulk-download", ph_tunnel_bulk_download },
  { "bulk-upload", ph_tunnel_bulk_upload },
  { "verify-ca", ph_tunnel_verify_ca, .agent = PH_TUNNEL_AGENT_NONE },
  { "pin-mismatch-cloud", ph_tunnel_pin_mismatch_cloud, .agent = PH_TUNNEL_AGENT_CONFIG },
  { "pin-mismatch-recorder", ph_tunnel_pin_mismatch_recorder, .agent = PH_TUNNEL_AGENT_CONFIG },
  { "early-data", ph_tunnel_early_data },
  { "wrong-password", ph_tunnel_wrong_password, .agent = PH_TUNNEL_AGENT_CONFIG,
    .wrong_password = TRUE },
  { "wrong-password-fixed", ph_tunnel_wrong_password_fixed, .wrong_password = TRUE,
    .needs_sighup = TRUE },
  { "upstream-down", ph_tunnel_upstream_down, .agent = PH_TUNNEL_AGENT_CONFIG },
  { "unreachable-direct", ph_tunnel_unreachable_direct, .agent = PH_TUNNEL_AGENT_CONFIG,
    .settings = { { "route", "when-unreachable", "direct" } } },
  { "unreachable-pin-mismatch", ph_tunnel_unreachable_pin_mismatch, .agent = PH_TUNNEL_AGENT_CONFIG,
    .settings = { { "route", "when-unreachable", "direct" } } },
  { "unreachable-block", ph_tunnel_unreachable_block, .agent = PH_TUNNEL_AGENT_CONFIG },
  { "upstream-slow", ph_tunnel_upstream_slow, .agent = PH_TUNNEL_AGENT_CONFIG,
    .settings = { { "upstream", "handshake-timeout", "1s" } } },
  { "upstream-reset", ph_tunnel_upstream_reset },
  { "client-vanishes", ph_tunnel_client_vanishes },
  { "head-timeout", ph_tunnel_head_timeout, .settings = { { "tunnel", "head-timeout", "1" } } },
  { "malformed", ph_tunnel_malformed },
  { "max-tunnels", ph_tunnel_max_tunnels,
    .settings = { { "tunnel", "max-tunnels", "1" }, { "log", "level", "debug" } } },
  /* The default, not the fixture's 16. */
  { "many-idle-tunnels", ph_tunnel_many_idle_tunnels,
    .settings = { { "tunnel", "max-tunnels", "auto" } }, .linux_agent_only = TRUE },
  { "max-tunnels-keepalive", ph_tunnel_max_tunnels_keepalive,
    .settings = { { "tunnel", "max-tunnels", "3" }, { "upstream", "warm", "0" } } },
  /* No warm connections: the only connection to the cloud is the kept-alive one. */
  { "idle-upstream-post", ph_tunnel_idle_upstream_post, .cloud = PH_TUNNEL_CLOUD_SQUID_IDLE,
    .settings = { { "upstream", "warm", "0" } } },
  { "idle-pool", ph_tunnel_idle_pool, .needs_sighup = TRUE,
    .settings = { { "upstream", "warm", "0" }, { "log", "level", "debug" } } },
  { "idle-pool-bound", ph_tunnel_idle_pool_bound,
    .settings = { { "upstream", "warm", "0" }, { "log", "level", "debug" } } },
  { "idle-pool-cloud-closes", ph_tunnel_idle_pool_cloud_closes, .cloud = PH_TUNNEL_CLOUD_SQUID_IDLE,
    .settings = { { "upstream", "warm", "0" }, { "log", "level", "debug" } } },
  { "network-change", ph_tunnel_network_change, .cloud = PH_TUNNEL_CLOUD_NETNS,
    .linux_agent_only = TRUE,
    .settings = { { "upstream", "warm", "2" }, { "log", "level", "debug" } } },
  { "slow-upload", ph_tunnel_slow_upload,
    .settings = { { "upstream", "response-timeout", "2s" } } },
  { "proxy-401", ph_tunnel_proxy_401, .cloud = PH_TUNNEL_CLOUD_TINYPROXY },
  { "routes", ph_tunnel_routes,
    .settings = { { "route", "direct", "localhost, 127.0.0.2/31" },
                  { "route", "block", ".blocked.pinhole.test" } } },
  { "socks-curl", ph_tunnel_socks_curl },
  { "socks-python", ph_tunnel_socks_python },
  { "socks-malformed", ph_tunnel_socks_malformed },
  { "socks-head-timeout", ph_tunnel_socks_head_timeout,
    .settings = { { "tunnel", "head-timeout", "1" } } },
  { "socks-routes", ph_tunnel_socks_routes,
    .settings
    = { { "route", "direct", "localhost" }, { "route", "block", ".blocked.pinhole.test" } } },
  { "socks-upstream-down", ph_tunnel_socks_upstream_down, .agent = PH_TUNNEL_AGENT_CONFIG },
  { "socks-auth-loopback", ph_tunnel_socks_auth_loopback,
    .settings = { { "listener", "socks-users", "alice" } } },
  /* HTTP/1.1 suite only (stunnel offers no ALPN). */
  { "http2-require", ph_tunnel_http2_require, .settings = { { "upstream", "http2", "require" } } },
  /* The default warm=2: no warm HTTP/1.1 connections beside the HTTP/2 one. */
  { "h2-one-connection", ph_tunnel_h2_one_connection, .h2_only = TRUE },
  { "h2-two-connections", ph_tunnel_h2_one_connection, .h2_only = TRUE,
    .settings = { { "upstream", "warm", "0" }, { "upstream", "h2-connections", "2" } } },
  { "h2-http2-off", ph_tunnel_h2_http2_off, .h2_only = TRUE, .agent = PH_TUNNEL_AGENT_CONFIG },
  { "h2-stream-limit", ph_tunnel_h2_stream_limit, .h2_only = TRUE,
    .cloud = PH_TUNNEL_CLOUD_H2_TWO_STREAMS, .settings = { { "log", "level", "debug" } } },
  { "h2-dead-connection", ph_tunnel_h2_dead_connection, .h2_only = TRUE,
    .settings = { { "upstream", "response-timeout", "2s" }, { "log", "level", "debug" } } },
  { "check-config", ph_tunnel_check_config, .agent = PH_TUNNEL_AGENT_NONE },
  { "reload", ph_tunnel_reload, .needs_sighup = TRUE },
  { "sigterm", ph_tunnel_sigterm },
  /* last: reads the logs of every agent above */
  { "log-redaction", ph_tunnel_log_redaction, .settings = { { "log", "level", "debug" } } },
};

int
main (int argc, char **argv)
{
  struct rlimit rl;

  /* --h2 (meson test tunnel-h2): the cloud end's HTTP/2 front, for this process, its case
   * subprocesses and the cloud ends they start. */
  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--h2") == 0)
      {
        g_setenv ("PH_CLOUD_FRONT", "nghttpx", TRUE);
        memmove (&argv[i], &argv[i + 1], (argc - i) * sizeof (char *));
        argc--;
        break;
      }
  g_test_init (&argc, &argv, NULL);
  /* For many-idle-tunnels: this process holds a client's descriptor per tunnel, and the cloud
   * end it starts (stunnel, Squid, the origin) inherits the limit. */
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (ph_cases); i++)
    {
      g_autofree char *path = g_strconcat ("/pinhole/tunnel/", ph_cases[i].name, NULL);

      /* tunnel-h2 (PH_CLOUD_FRONT=nghttpx): the CONNECT cases, over HTTP/2; the h2-only cases
       * only there. */
      if (ph_tunnel_h2 () ? !ph_tunnel_case_runs_on_h2 (ph_cases[i].name) : ph_cases[i].h2_only)
        continue;

      g_test_add (path, PhTunnelFixture, &ph_cases[i], ph_tunnel_setup, ph_tunnel_test,
                  ph_tunnel_teardown);
    }
  return ph_test_run_cases ();
}
