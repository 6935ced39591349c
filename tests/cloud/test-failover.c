/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-failover.c: several cloud proxies (issue 14). Each case starts two real cloud ends
 * (stunnel + Squid, the same credentials, different keys) and the real agent with both in
 * upstream.host, and reads in which Squid's access log each request appears: priority keeps to
 * the first, round-robin spreads new tunnels over both, killing the active one under 32 clients
 * loses no request, the first is used again once it is back, and a pin mismatch on one is
 * reported, not hidden by the other. With --h2 the two cloud ends are nghttpx + Squid. */
#include "ph-test-cloud.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define PH_CASE_TIMEOUT_S 240

typedef struct
{
  PhTestCloud *a; /* the first of upstream.host; runs the origin */
  PhTestCloud *b;
  GKeyFile *config;
  PhTestAgent *agent;
  char *name_a, *name_b; /* "127.0.0.1:PORT" as the agent names them */
} Fixture;

static void
fixture_start (Fixture *f, const char *failover, gboolean b_first, gboolean trust_b)
{
  g_autofree char *password_env = NULL;
  g_autofree char *hosts = NULL;
  g_autofree char *pins = NULL;

  f->a = ph_test_cloud_new ("PH_CLOUD_ORIGIN=1", NULL);
  password_env = g_strconcat ("PH_CLOUD_PASSWORD=", f->a->password, NULL);
  f->b = ph_test_cloud_new (password_env, NULL);
  f->name_a = g_strdup_printf ("127.0.0.1:%u", f->a->tls_port);
  f->name_b = g_strdup_printf ("127.0.0.1:%u", f->b->tls_port);
  f->config = ph_test_agent_config (f->a);
  hosts = b_first ? g_strdup_printf ("%s; %s", f->name_b, f->name_a)
                  : g_strdup_printf ("%s; %s", f->name_a, f->name_b);
  g_key_file_set_string (f->config, "upstream", "host", hosts);
  pins = trust_b ? g_strdup_printf ("%s;%s", f->a->pin, f->b->pin) : g_strdup (f->a->pin);
  g_key_file_set_string (f->config, "upstream", "pins", pins);
  g_key_file_set_string (f->config, "upstream", "failover", failover);
  g_key_file_set_string (f->config, "log", "level", "debug");
  f->agent = ph_test_agent_start (f->a, "failover", f->config);
}

static void
fixture_stop (Fixture *f)
{
  if (f->agent != NULL)
    ph_test_agent_stop_ok (f->agent);
  g_clear_pointer (&f->agent, ph_test_agent_free);
  if (f->a != NULL)
    ph_test_cloud_assert_agents_redacted (f->a, NULL);
  g_clear_pointer (&f->config, g_key_file_unref);
  g_clear_pointer (&f->a, ph_test_cloud_free);
  g_clear_pointer (&f->b, ph_test_cloud_free);
  g_free (f->name_a);
  g_free (f->name_b);
}

/* A plain GET of /bytes/@n through the agent, on a fresh client connection: TRUE when it was
 * answered 200 for @n bytes (its Content-Length; the exchange reads them all). */
static gboolean
get_bytes (Fixture *f, guint n, char **head_out)
{
  g_autofree char *path = g_strdup_printf ("/bytes/%u", n);
  g_autofree char *req = ph_test_get_request (f->a->origin_http_port, path);
  g_autofree char *head = ph_test_exchange (f->agent->port, req, NULL, NULL, 20000);
  g_autofree char *length = ph_test_head_header (head, "Content-Length");
  gboolean ok = ph_test_head_status (head) == 200 && length != NULL
                && g_ascii_strtoull (length, NULL, 10) == n;

  if (head_out != NULL)
    *head_out = g_steal_pointer (&head);
  return ok;
}

static void
assert_get (Fixture *f, guint n)
{
  g_autofree char *head = NULL;

  if (!get_bytes (f, n, &head))
    {
      ph_test_agent_print_log (f->agent, head ? head : "no answer");
      g_assert_not_reached ();
    }
}

/* A CONNECT to the origin's port through the agent: its 200, then the client closes. */
static void
assert_tunnel (Fixture *f)
{
  g_autofree char *req = ph_test_connect_request (f->a->origin_http_port);
  g_autofree char *head = ph_test_exchange (f->agent->port, req, NULL, NULL, 20000);

  if (ph_test_head_status (head) != 200)
    ph_test_agent_print_log (f->agent, head ? head : "no answer");
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
}

/* priority: every request goes to the first proxy while it is up. */
static void
test_priority (void)
{
  Fixture f = { 0 };
  g_autofree char *connect_line = NULL;

  if (!ph_test_require_tools () || !ph_test_case_fork (PH_CASE_TIMEOUT_S))
    return;
  fixture_start (&f, "priority", FALSE, TRUE);
  for (guint i = 0; i < 6; i++)
    assert_get (&f, 3100 + i);
  for (guint i = 0; i < 6; i++)
    assert_tunnel (&f);
  connect_line = g_strdup_printf ("CONNECT 127.0.0.1:%u", f.a->origin_http_port);
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (f.a, "/bytes/310"), ==, 6);
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (f.a, connect_line), ==, 6);
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (f.b, "/bytes/"), ==, 0);
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (f.b, connect_line), ==, 0);
  fixture_stop (&f);
}

/* round-robin: new tunnels (and the warm pool) take turns. */
static void
test_round_robin (void)
{
  Fixture f = { 0 };
  g_autofree char *connect_line = NULL;
  guint on_a, on_b;

  if (!ph_test_require_tools () || !ph_test_case_fork (PH_CASE_TIMEOUT_S))
    return;
  fixture_start (&f, "round-robin", FALSE, TRUE);
  for (guint i = 0; i < 16; i++)
    assert_tunnel (&f);
  connect_line = g_strdup_printf ("CONNECT 127.0.0.1:%u", f.a->origin_http_port);
  on_a = ph_test_cloud_settled_access_log_lines (f.a, connect_line);
  on_b = ph_test_cloud_settled_access_log_lines (f.b, connect_line);
  g_test_message ("16 tunnels: %u through the first proxy, %u through the second", on_a, on_b);
  g_assert_cmpuint (on_a + on_b, ==, 16);
  /* Turns, not chance: 8 each, give or take the warm connections made before the first. */
  g_assert_cmpuint (on_a, >=, 6);
  g_assert_cmpuint (on_b, >=, 6);
  fixture_stop (&f);
}

/* ---- failover under load ---- */

typedef struct
{
  Fixture *f;
  guint client;
  guint n;
  guint ok;
  guint failed;
  char *first_failure;
} LoadClient;

#define LOAD_CLIENTS 32
#define LOAD_REQUESTS 24

static gpointer
load_client (gpointer data)
{
  LoadClient *c = data;

  for (guint i = 0; i < c->n; i++)
    {
      g_autofree char *head = NULL;

      /* A size of its own per request: the path names it in the Squid logs. */
      if (get_bytes (c->f, 10000 + c->client * 100 + i, &head))
        c->ok++;
      else
        {
          c->failed++;
          if (c->first_failure == NULL)
            c->first_failure = g_strdup (head ? head : "(no answer)");
        }
      g_usleep (20000);
    }
  return NULL;
}

/* 32 clients, each with requests on fresh connections; the first proxy's stunnel is killed
 * midway: every request gets exactly one answer, a 200 with its bytes, through one proxy or the
 * other. Then the first comes back and takes the traffic again (priority). */
static void
test_failover_load (void)
{
  Fixture f = { 0 };
  LoadClient clients[LOAD_CLIENTS] = { 0 };
  GThread *threads[LOAD_CLIENTS];
  guint ok = 0, failed = 0, on_a, on_b;
  g_autofree char *down = NULL;
  g_autofree char *up_again = NULL;

  if (!ph_test_require_tools () || !ph_test_case_fork (PH_CASE_TIMEOUT_S))
    return;
  fixture_start (&f, "priority", FALSE, TRUE);
  for (guint i = 0; i < LOAD_CLIENTS; i++)
    {
      clients[i] = (LoadClient){ .f = &f, .client = i, .n = LOAD_REQUESTS };
      threads[i] = g_thread_new ("load", load_client, &clients[i]);
    }
  g_usleep (300 * 1000);
  g_test_message ("killing the first proxy's stunnel under load");
  ph_test_cloud_kill_stunnel (f.a, SIGKILL);
  for (guint i = 0; i < LOAD_CLIENTS; i++)
    {
      g_thread_join (threads[i]);
      ok += clients[i].ok;
      failed += clients[i].failed;
      if (clients[i].first_failure != NULL)
        g_test_message ("client %u: %s", i, clients[i].first_failure);
      g_free (clients[i].first_failure);
    }
  on_a = ph_test_cloud_settled_access_log_lines (f.a, "/bytes/");
  on_b = ph_test_cloud_settled_access_log_lines (f.b, "/bytes/");
  g_test_message ("%u requests answered 200, %u not; Squid logs: %u on the first, %u on the "
                  "second",
                  ok, failed, on_a, on_b);
  if (failed > 0)
    ph_test_agent_print_log (f.agent, "requests failed during the failover");
  g_assert_cmpuint (failed, ==, 0);
  g_assert_cmpuint (ok, ==, LOAD_CLIENTS * LOAD_REQUESTS);
  /* Both took a share: the kill came midway. */
  g_assert_cmpuint (on_a, >, 0);
  g_assert_cmpuint (on_b, >, 0);
  down = g_strdup_printf ("cloud proxy %s is down", f.name_a);
  g_assert_true (ph_test_agent_wait_log (f.agent, down, 1, 5000));

  /* Back: the background probe finds it, and new requests go to it again. */
  ph_test_cloud_restart_stunnel (f.a);
  up_again = g_strdup_printf ("cloud proxy %s is up again", f.name_a);
  if (!ph_test_agent_wait_log (f.agent, up_again, 1, 70000))
    ph_test_agent_print_log (f.agent, "the first proxy was not found up again");
  g_assert_true (ph_test_agent_wait_log (f.agent, up_again, 1, 1));
  on_a = ph_test_cloud_settled_access_log_lines (f.a, "/bytes/5");
  on_b = ph_test_cloud_settled_access_log_lines (f.b, "/bytes/5");
  for (guint i = 0; i < 5; i++)
    assert_get (&f, 5000 + i);
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (f.a, "/bytes/5"), ==, on_a + 5);
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (f.b, "/bytes/5"), ==, on_b);
  fixture_stop (&f);
}

/* The first proxy presents a key that is not pinned: it is refused, never failed over in
 * silence. The agent says which proxy and why (its state error names it), the traffic goes
 * through the second, and nothing goes to the first's Squid. */
static void
test_pin_mismatch_one (void)
{
  Fixture f = { 0 };
  g_autofree char *refused = NULL;
  g_autofree char *state = NULL;

  if (!ph_test_require_tools () || !ph_test_case_fork (PH_CASE_TIMEOUT_S))
    return;
  /* b first, and only a's pin trusted. */
  fixture_start (&f, "priority", TRUE, FALSE);
  refused = g_strdup_printf ("cloud proxy %s refused", f.name_b);
  if (!ph_test_agent_wait_log (f.agent, refused, 1, 15000))
    ph_test_agent_print_log (f.agent, "no refusal logged");
  g_assert_true (ph_test_agent_wait_log (f.agent, refused, 1, 1));
  state = g_strdup_printf ("tunnel error: cloud proxy %s: ", f.name_b);
  g_assert_true (ph_test_agent_wait_log (f.agent, state, 1, 5000));
  g_assert_true (ph_test_agent_wait_log (f.agent, "requests go through the others", 1, 5000));
  for (guint i = 0; i < 4; i++)
    assert_get (&f, 4100 + i);
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (f.a, "/bytes/410"), ==, 4);
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (f.b, NULL), ==, 0);
  fixture_stop (&f);
}

/* The first cloud end's Squid dies and its stunnel stays: TLS still works there, but nothing
 * answers. Requests move on to the second without the client seeing it, the first is marked
 * down, and its background probe (which asks for a tunnel, not just a handshake) does not take
 * it for up again. */
static void
test_nothing_behind_tls (void)
{
  Fixture f = { 0 };
  g_autofree char *pid_path = NULL;
  g_autofree char *pid_text = NULL;
  g_autofree char *down = NULL;
  g_autofree char *up_again = NULL;

  if (!ph_test_require_tools () || !ph_test_case_fork (PH_CASE_TIMEOUT_S))
    return;
  fixture_start (&f, "priority", FALSE, TRUE);
  assert_get (&f, 6000);
  pid_path = g_build_filename (f.a->dir, "squid.pid", NULL);
  g_assert_true (g_file_get_contents (pid_path, &pid_text, NULL, NULL));
  g_assert_cmpint (kill ((pid_t) atoi (pid_text), SIGKILL), ==, 0);
  g_usleep (200 * 1000);
  for (guint i = 1; i <= 12; i++)
    {
      assert_get (&f, 6000 + i);
      assert_tunnel (&f);
    }
  down = g_strdup_printf ("cloud proxy %s is down", f.name_a);
  g_assert_true (ph_test_agent_wait_log (f.agent, down, 1, 5000));
  /* Probes at 1, 2 and 4 s find a handshake and no answer. */
  g_assert_true (
      ph_test_agent_wait_log (f.agent, "took a TLS connection but answered no request", 2, 10000));
  up_again = g_strdup_printf ("cloud proxy %s is up again", f.name_a);
  if (ph_test_agent_wait_log (f.agent, up_again, 1, 1))
    ph_test_agent_print_log (f.agent, "up again");
  g_assert_false (ph_test_agent_wait_log (f.agent, up_again, 1, 1));
  g_assert_cmpuint (ph_test_cloud_settled_access_log_lines (f.b, "/bytes/60"), >=, 9);
  fixture_stop (&f);
}

int
main (int argc, char **argv)
{
  gboolean h2 = FALSE;

  /* --h2 (meson test failover-h2): both cloud ends are nghttpx in front of Squid, and the
   * agent's tunnels and requests are HTTP/2 streams. */
  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--h2") == 0)
      {
        g_setenv ("PH_CLOUD_FRONT", "nghttpx", TRUE);
        memmove (&argv[i], &argv[i + 1], (argc - i) * sizeof (char *));
        argc--;
        h2 = TRUE;
        break;
      }
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pinhole/failover/priority", test_priority);
  g_test_add_func ("/pinhole/failover/round-robin", test_round_robin);
  g_test_add_func ("/pinhole/failover/pin-mismatch-one", test_pin_mismatch_one);
  /* Not behind nghttpx: under-load-and-back kills and restarts stunnel; and with Squid gone
   * nghttpx answers 502 itself (server: nghttpx) where stunnel closes the connection, which is
   * what nothing-behind-tls fails over on. */
  if (!h2)
    {
      g_test_add_func ("/pinhole/failover/under-load-and-back", test_failover_load);
      g_test_add_func ("/pinhole/failover/nothing-behind-tls", test_nothing_behind_tls);
    }
  return ph_test_run_cases ();
}
