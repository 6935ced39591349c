/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-doctor.c: the doctor: each cloud proxy taken step by step (DNS, TCP, TLS, the proxy's
 * authentication, the target) on connections of its own, each step judged in the words a user
 * and their IT department act on: a timed-out port is a firewall, a certificate a CA issued in
 * place of the pinned key is a TLS-inspecting device, a 407 is a rejected password. */
#define G_LOG_DOMAIN "pinhole-doctor"

#include "ph-doctor.h"
#include "ph-ask.h"
#include "ph-error.h"
#include "ph-http.h"
#include "ph-netfilter.h"
#include "ph-pin.h"
#include "ph-stream.h"
#include "ph-tls.h"
#include "ph-upstream.h"
#include "ph-wipe.h"

#include <string.h>
#include <glib/gi18n.h>

/* A diagnosis should answer in seconds: a silent port is a firewall after 5 s, not after the
 * configured connect-timeout's 10. */
#define TCP_TIMEOUT_CAP_MS 5000
#define DNS_TIMEOUT_MS 10000
#define HANDSHAKE_TIMEOUT_CAP_MS 10000
#define ANSWER_TIMEOUT_CAP_MS 15000
/* Addresses tried in turn at most (all are reported), so that a name with many cannot hold the
 * report. */
#define MAX_ADDRESSES 4
#define EXPIRY_WARNING_DAYS 30

typedef enum
{
  STEP_DNS,
  STEP_TCP,
  STEP_TLS,
  STEP_AUTH,
  STEP_TARGET,
  N_STEPS
} PhStepId;

static const char *const step_names[N_STEPS] = { "dns", "tcp", "tls", "auth", "target" };

typedef struct
{
  const char *status; /* "ok", "warning", "failed", "skipped"; NULL: not run yet */
  const char *code;
  char *verdict;
  char *advice;
  guint ms;
  GVariantDict *details;
} PhStep;

typedef struct _PhDoctorRun PhDoctorRun;
typedef struct _PhProbe PhProbe;

typedef void (*PhExchangeFunc) (PhProbe *p, PhHttpResponse *resp, const char *why);

struct _PhDoctorRun
{
  GTask *task;
  PhConfig *config;
  PhUpstream *up; /* private and shut: writes the heads, holds the credentials */
  GCancellable *cancellable;
  GSocketClient *client;
  char *url;              /* "" when none */
  char *target_authority; /* https://: "host:port" to CONNECT; NULL for http:// */
  char *target_head;      /* the request line and Host of the target step */
  GPtrArray *probes;      /* of PhProbe* */
  guint pending;
};

struct _PhProbe
{
  PhDoctorRun *run;
  char *host;
  guint port;
  char *server_name;
  char *name;
  PhStep steps[N_STEPS];
  PhStepId current;
  gint64 started_us;

  GCancellable *cancel; /* this step's: the run's, or a timer's */
  gulong chain_id;
  GSource *timer;
  gboolean timed_out;

  GList *addresses; /* of GInetAddress */
  GList *next_address;
  GInetAddress *reached;
  guint n_tried;
  gboolean any_timeout, any_refused;
  char *tcp_problem;

  GSocketConnection *conn;
  PhTlsContext *tls;

  /* the exchange with the proxy (auth, target) */
  PhStream *stream;
  PhAsk *ask;
  PhExchangeFunc exchange_done;
  char *exchange_text; /* the head to send, without credentials */
};

static void probe_next (PhProbe *p);
static void tcp_try_next (PhProbe *p);

/* ---- steps ---- */

static void
step_begin (PhProbe *p, PhStepId id)
{
  p->current = id;
  p->started_us = g_get_monotonic_time ();
}

/* Sets the current step's verdict; @verdict and @advice are taken. */
static void
step_set (PhProbe *p, const char *status, const char *code, char *verdict, char *advice)
{
  PhStep *s = &p->steps[p->current];

  s->status = status;
  s->code = code;
  g_free (s->verdict);
  g_free (s->advice);
  s->verdict = verdict;
  s->advice = advice != NULL ? advice : g_strdup ("");
  s->ms = (guint) ((g_get_monotonic_time () - p->started_us) / 1000);
  g_debug ("%s: %s %s: %s", p->name, step_names[p->current], code, verdict);
}

static void
step_fail (PhProbe *p, const char *code, char *verdict, char *advice)
{
  step_set (p, "failed", code, verdict, advice);
}

static void
step_ok (PhProbe *p, char *verdict)
{
  step_set (p, "ok", "ok", verdict, NULL);
}

static gboolean
timer_fired (gpointer data)
{
  PhProbe *p = data;

  p->timed_out = TRUE;
  g_clear_pointer (&p->timer, g_source_unref);
  g_cancellable_cancel (p->cancel);
  return G_SOURCE_REMOVE;
}

static void
chain_cancel (GCancellable *cancellable, gpointer data)
{
  g_cancellable_cancel (G_CANCELLABLE (data));
}

static void
timer_stop (PhProbe *p)
{
  if (p->timer != NULL)
    {
      g_source_destroy (p->timer);
      g_clear_pointer (&p->timer, g_source_unref);
    }
  if (p->chain_id != 0)
    g_cancellable_disconnect (p->run->cancellable, p->chain_id);
  p->chain_id = 0;
  g_clear_object (&p->cancel);
}

/* A cancellable for the current step, cancelled with the run or after @timeout_ms (0: never). */
static void
timer_start (PhProbe *p, guint timeout_ms)
{
  timer_stop (p);
  p->timed_out = FALSE;
  p->cancel = g_cancellable_new ();
  p->chain_id = g_cancellable_connect (p->run->cancellable, G_CALLBACK (chain_cancel),
                                       g_object_ref (p->cancel), g_object_unref);
  if (timeout_ms > 0)
    {
      p->timer = g_timeout_source_new (timeout_ms);
      g_source_set_callback (p->timer, timer_fired, p, NULL);
      g_source_attach (p->timer, NULL);
    }
}

static char *
join_addresses (PhProbe *p)
{
  g_autoptr (GString) s = g_string_new (NULL);

  for (GList *l = p->addresses; l != NULL; l = l->next)
    {
      g_autofree char *a = g_inet_address_to_string (l->data);
      if (s->len > 0)
        g_string_append (s, ", ");
      g_string_append (s, a);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static guint
capped (guint configured, guint cap)
{
  return MIN (configured, cap);
}

/* ---- dns ---- */

static void
dns_done (GObject *source, GAsyncResult *result, gpointer data)
{
  PhProbe *p = data;
  g_autoptr (GError) error = NULL;
  GList *list = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);
  GVariantBuilder as;

  timer_stop (p);
  if (list == NULL)
    {
      const char *why = p->timed_out ? _ ("no answer in time") : error->message;
      step_fail (p, "unresolvable",
                 /* TRANSLATORS: the cloud proxy's DNS name, then why (the resolver's words) */
                 g_strdup_printf (_ ("the name %s cannot be resolved: %s"), p->host, why),
                 /* TRANSLATORS: %s is the cloud proxy's DNS name */
                 g_strdup_printf (_ ("Check the name in upstream.host; if it is right, ask your "
                                     "IT department why their DNS does not resolve %s."),
                                  p->host));
      probe_next (p);
      return;
    }
  p->addresses = list;
  g_variant_builder_init (&as, G_VARIANT_TYPE_STRING_ARRAY);
  for (GList *l = p->addresses; l != NULL; l = l->next)
    {
      g_autofree char *a = g_inet_address_to_string (l->data);
      g_variant_builder_add (&as, "s", a);
    }
  g_variant_dict_insert_value (p->steps[STEP_DNS].details, "addresses",
                               g_variant_builder_end (&as));
  {
    g_autofree char *joined = join_addresses (p);
    guint ms = (guint) ((g_get_monotonic_time () - p->started_us) / 1000);
    /* TRANSLATORS: a DNS name, its addresses ("192.0.2.1, 2001:db8::1"), then the time the
     * lookup took in milliseconds */
    step_ok (p, g_strdup_printf (_ ("%s resolves to %s (%u ms)"), p->host, joined, ms));
  }
  probe_next (p);
}

static void
dns_run (PhProbe *p)
{
  GInetAddress *literal;
  g_autoptr (GResolver) resolver = NULL;

  step_begin (p, STEP_DNS);
  literal = g_inet_address_new_from_string (p->host);
  if (literal != NULL)
    {
      const char *as[] = { p->host, NULL };
      p->addresses = g_list_append (NULL, literal);
      g_variant_dict_insert (p->steps[STEP_DNS].details, "addresses", "^as", as);
      /* TRANSLATORS: %s is an IP address */
      step_ok (p, g_strdup_printf (_ ("%s is an address: nothing to look up"), p->host));
      probe_next (p);
      return;
    }
  timer_start (p, DNS_TIMEOUT_MS);
  resolver = g_resolver_get_default ();
  g_resolver_lookup_by_name_async (resolver, p->host, p->cancel, dns_done, p);
}

/* ---- tcp ---- */

static void
tcp_done (GObject *source, GAsyncResult *result, gpointer data)
{
  PhProbe *p = data;
  g_autoptr (GError) error = NULL;
  GSocketConnection *conn
      = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  gboolean timed_out = p->timed_out;

  timer_stop (p);
  if (conn != NULL)
    {
      g_autofree char *a = NULL;
      p->conn = conn;
      p->reached = g_object_ref (p->next_address->data);
      a = g_inet_address_to_string (p->reached);
      g_variant_dict_insert (p->steps[STEP_TCP].details, "address", "s", a);
      ph_socket_set_nodelay (g_socket_connection_get_socket (conn));
      if (g_strcmp0 (a, p->host) == 0)
        /* TRANSLATORS: a TCP port, then the address reached */
        step_ok (p, g_strdup_printf (_ ("TCP port %u is open on %s"), p->port, a));
      else
        /* TRANSLATORS: a TCP port, then the cloud proxy's name and the address reached */
        step_ok (p, g_strdup_printf (_ ("TCP port %u is open on %s (%s)"), p->port, p->host, a));
      probe_next (p);
      return;
    }
  if (timed_out)
    p->any_timeout = TRUE;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
    p->any_refused = TRUE;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      step_fail (p, "unreachable", g_strdup (_ ("the diagnosis was cancelled")), NULL);
      probe_next (p);
      return;
    }
  g_free (p->tcp_problem);
  p->tcp_problem = g_strdup (timed_out ? "" : error->message);
  p->next_address = p->next_address->next;
  tcp_try_next (p);
}

static void
tcp_try_next (PhProbe *p)
{
  PhConfig *config = p->run->config;
  guint timeout_ms = capped (ph_config_get_connect_timeout_ms (config), TCP_TIMEOUT_CAP_MS);
  g_autoptr (GSocketAddress) sa = NULL;
  g_autofree char *addresses = NULL;

  if (p->next_address != NULL && p->n_tried++ < MAX_ADDRESSES)
    {
      timer_start (p, timeout_ms);
      sa = g_inet_socket_address_new (p->next_address->data, p->port);
      g_socket_client_connect_async (p->run->client, G_SOCKET_CONNECTABLE (sa), p->cancel, tcp_done,
                                     p);
      return;
    }
  addresses = join_addresses (p);
  if (p->any_timeout)
    step_fail (p, "timeout",
               /* TRANSLATORS: a TCP port, the time allowed in seconds ("s"), the proxy's
                * name and its addresses */
               g_strdup_printf (_ ("TCP port %u is probably blocked by a firewall: no answer "
                                   "within %.1fs from %s (%s)"),
                                p->port, timeout_ms / 1000.0, p->host, addresses),
               /* TRANSLATORS: a TCP port, the proxy's name and its addresses */
               g_strdup_printf (_ ("Ask your IT department to allow outgoing TCP %u to %s (%s)."),
                                p->port, p->host, addresses));
  else if (p->any_refused)
    step_fail (p, "refused",
               /* TRANSLATORS: the proxy's name, its addresses, a TCP port */
               g_strdup_printf (_ ("%s (%s) refused the connection to TCP port %u: nothing "
                                   "listens there, or a firewall rejects it"),
                                p->host, addresses, p->port),
               /* TRANSLATORS: a TCP port, the proxy's name */
               g_strdup_printf (_ ("Check upstream.host and upstream.port; if they are right, "
                                   "ask the cloud proxy's administrator whether it listens on "
                                   "TCP %u, and your IT department to allow TCP %u to %s."),
                                p->port, p->port, p->host));
  else
    step_fail (p, "unreachable",
               /* TRANSLATORS: the proxy's name, a TCP port, then why (the system's words) */
               g_strdup_printf (_ ("%s cannot be reached on TCP port %u: %s"), p->host, p->port,
                                p->tcp_problem ? p->tcp_problem : ""),
               /* TRANSLATORS: %s is the proxy's name */
               g_strdup_printf (_ ("Check the network connection and that this computer has a "
                                   "route to %s."),
                                p->host));
  probe_next (p);
}

static void
tcp_run (PhProbe *p)
{
  step_begin (p, STEP_TCP);
  p->next_address = p->addresses;
  tcp_try_next (p);
}

/* ---- tls ---- */

static gboolean
cert_is_issued (const PhCertInfo *leaf)
{
  return g_strcmp0 (ph_cert_info_get_issuer (leaf), ph_cert_info_get_subject (leaf)) != 0;
}

static void
tls_judge (PhProbe *p, PhTlsInspection *inspection)
{
  PhConfig *config = p->run->config;
  GVariantDict *d = p->steps[STEP_TLS].details;
  const PhCertInfo *leaf = ph_tls_inspection_get_cert (inspection, 0);
  const char *pin = ph_cert_info_get_pin (leaf);
  const char *issuer = ph_cert_info_get_issuer (leaf);
  g_autoptr (PhPin) parsed = ph_pin_parse (pin, NULL);
  gboolean pin_trusted = parsed != NULL && ph_config_has_pin (config, parsed);
  gboolean ca_trusted = ph_tls_inspection_get_ca_trusted (inspection);
  PhVerifyMode verify = ph_config_get_verify (config);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  gint64 not_after = ph_cert_info_get_not_after (leaf);
  gint64 days_left = not_after >= now ? (not_after - now) / 86400 : -((now - not_after) / 86400);
  const char *version = ph_tls_inspection_get_protocol (inspection);
  const char *cipher = ph_tls_inspection_get_cipher (inspection);

  g_variant_dict_insert (d, "version", "s", version ? version : "");
  g_variant_dict_insert (d, "cipher", "s", cipher ? cipher : "");
  g_variant_dict_insert (d, "pin", "s", pin);
  g_variant_dict_insert (d, "pin-trusted", "b", pin_trusted);
  g_variant_dict_insert (d, "issuer", "s", issuer);
  g_variant_dict_insert (d, "not-after", "x", not_after);
  g_variant_dict_insert (d, "days-left", "x", days_left);
  g_variant_dict_insert (d, "ca-trusted", "b", ca_trusted);

  if (verify != PH_VERIFY_CA && !pin_trusted)
    {
      if (cert_is_issued (leaf))
        step_fail (p, "intercepted",
                   /* TRANSLATORS: the issuer of the certificate (an X.509 name), then the pin
                    * seen ("sha256//…") */
                   g_strdup_printf (_ ("a TLS-inspecting device is in the path: the "
                                       "certificate was issued by “%s” and its key (%s) is not "
                                       "the trusted one"),
                                    issuer, pin),
                   /* TRANSLATORS: %s is the cloud proxy's name */
                   g_strdup_printf (_ ("Ask your IT department to exempt %s from TLS "
                                       "inspection (SSL decryption)."),
                                    p->host));
      else
        step_fail (p, "pin-mismatch",
                   /* TRANSLATORS: %s is the pin seen ("sha256//…") */
                   g_strdup_printf (_ ("the cloud proxy's key changed: it presented %s, which "
                                       "is not a trusted pin"),
                                    pin),
                   /* TRANSLATORS: %s is the pin seen; "pinholectl pin trust" is a command */
                   g_strdup_printf (_ ("Compare %s with the pin the cloud proxy's administrator "
                                       "gives you; if they are the same, trust it with "
                                       "“pinholectl pin trust” or in the tray's settings."),
                                    pin));
      return;
    }
  if (verify != PH_VERIFY_PIN && !ca_trusted)
    {
      const char *problem = ph_tls_inspection_get_ca_problem (inspection);
      if (cert_is_issued (leaf))
        step_fail (p, "intercepted",
                   /* TRANSLATORS: the issuer (an X.509 name), then why the CA check failed */
                   g_strdup_printf (_ ("a TLS-inspecting device is in the path: the "
                                       "certificate was issued by “%s”, which no trusted CA "
                                       "vouches for (%s)"),
                                    issuer, problem),
                   /* TRANSLATORS: %s is the cloud proxy's name */
                   g_strdup_printf (_ ("Ask your IT department to exempt %s from TLS "
                                       "inspection (SSL decryption)."),
                                    p->host));
      else
        step_fail (p, "untrusted",
                   /* TRANSLATORS: %s says why the CA check failed (GnuTLS's words) */
                   g_strdup_printf (_ ("no trusted CA vouches for the cloud proxy's "
                                       "certificate: %s"),
                                    problem),
                   g_strdup (_ ("Trust the cloud proxy's key with “pinholectl pin trust” after "
                                "comparing it with the one its administrator gives you, or name "
                                "its CA in [upstream] ca-file.")));
      return;
    }
  if (days_left < EXPIRY_WARNING_DAYS)
    {
      g_autoptr (GDateTime) when = g_date_time_new_from_unix_utc (not_after);
      g_autofree char *date = when ? g_date_time_format (when, "%Y-%m-%d") : g_strdup ("?");
      step_set (p, "warning", "expiring",
                days_left >= 0
                    /* TRANSLATORS: a number of days, then a date */
                    ? g_strdup_printf (_ ("the cloud proxy's certificate expires in %d days (%s)"),
                                       (int) days_left, date)
                    /* TRANSLATORS: a date */
                    : g_strdup_printf (_ ("the cloud proxy's certificate expired on %s"), date),
                g_strdup (_ ("Ask the cloud proxy's administrator to renew its certificate; "
                             "a new key needs a new pin.")));
      return;
    }
  step_ok (p, verify == PH_VERIFY_CA
                  /* TRANSLATORS: the TLS version, the cipher, a number of days */
                  ? g_strdup_printf (_ ("a trusted CA vouches for the certificate (%s, %s); it is "
                                        "valid for %d more days"),
                                     version, cipher, (int) days_left)
                  /* TRANSLATORS: the TLS version, the cipher, a number of days */
                  : g_strdup_printf (_ ("the cloud proxy presented its trusted key (%s, %s); its "
                                        "certificate is valid for %d more days"),
                                     version, cipher, (int) days_left));
}

static void
tls_done (PhTlsInspection *inspection, GError *error, gpointer data)
{
  PhProbe *p = data;

  timer_stop (p);
  g_clear_object (&p->conn);
  if (inspection == NULL)
    {
      if (g_error_matches (error, PH_ERROR, PH_ERROR_TIMEOUT))
        step_fail (p, "timeout",
                   /* TRANSLATORS: the proxy's host:port, then the error */
                   g_strdup_printf (_ ("the TLS handshake with %s did not finish: %s"), p->name,
                                    error->message),
                   /* TRANSLATORS: the proxy's name, a TCP port */
                   g_strdup_printf (_ ("Check that %s speaks TLS on TCP %u (its stunnel), and "
                                       "that nothing in between holds the connection."),
                                    p->host, p->port));
      else if (g_error_matches (error, PH_ERROR, PH_ERROR_INVALID_CONFIG))
        step_fail (p, "handshake-failed", g_strdup (error->message), NULL);
      else
        step_fail (
            p, "handshake-failed",
            /* TRANSLATORS: the proxy's host:port, then the error */
            g_strdup_printf (_ ("the TLS handshake with %s failed: %s"), p->name, error->message),
            /* TRANSLATORS: the proxy's name, a TCP port */
            g_strdup_printf (_ ("Check that %s speaks TLS on TCP %u (its stunnel), and "
                                "that nothing in between blocks it."),
                             p->host, p->port));
      g_error_free (error);
    }
  else if (ph_tls_inspection_get_n_certs (inspection) == 0)
    step_fail (p, "handshake-failed", g_strdup (_ ("the server sent no certificate")), NULL);
  else
    tls_judge (p, inspection);
  g_clear_pointer (&inspection, ph_tls_inspection_free);
  probe_next (p);
}

static void
tls_run (PhProbe *p)
{
  GError *error = NULL;
  g_autoptr (PhTlsContext) inspector = NULL;

  step_begin (p, STEP_TLS);
  inspector = ph_tls_context_new_inspector (p->run->config, p->server_name, &error);
  if (inspector == NULL)
    {
      tls_done (NULL, error, p);
      return;
    }
  timer_start (p, 0);
  ph_tls_inspect_async (
      inspector, p->conn,
      capped (ph_config_get_handshake_timeout_ms (p->run->config), HANDSHAKE_TIMEOUT_CAP_MS),
      p->cancel, tls_done, p);
}

/* ---- the exchange with the proxy: a new verified connection, one head, its answer ---- */

static void
exchange_finish (PhProbe *p, PhHttpResponse *resp, const char *why)
{
  PhExchangeFunc done = p->exchange_done;

  timer_stop (p);
  g_clear_pointer (&p->ask, ph_ask_free);
  g_clear_pointer (&p->stream, ph_stream_free);
  g_clear_object (&p->conn);
  g_clear_pointer (&p->exchange_text, g_free);
  p->exchange_done = NULL;
  done (p, resp, why);
  g_clear_pointer (&resp, ph_http_response_free);
}

static void
exchange_answered (PhHttpResponse *resp, const char *why, gpointer data)
{
  PhProbe *p = data;

  p->ask = NULL; /* freed once this returns */
  exchange_finish (p, resp, why);
}

static void
exchange_handshake_done (PhStream *stream, GError *error, gpointer data)
{
  PhProbe *p = data;
  g_autoptr (PhHttpRequest) req = NULL;
  gsize consumed = 0;
  guint status = 0;
  g_autofree char *reason = NULL;
  guint timeout_ms;

  timer_stop (p);
  g_clear_object (&p->conn);
  if (stream == NULL)
    {
      /* TRANSLATORS: %s is the error */
      g_autofree char *why = g_strdup_printf (_ ("no verified connection: %s"), error->message);
      g_error_free (error);
      exchange_finish (p, NULL, why);
      return;
    }
  p->stream = stream;
  if (ph_http_request_parse (p->exchange_text, strlen (p->exchange_text), NULL, &req, &consumed,
                             &status, &reason)
      != PH_HTTP_PARSE_DONE)
    {
      exchange_finish (p, NULL, reason ? reason : "?");
      return;
    }
  /* The one writer of Proxy-Authorization; wiped once sent, and when done. */
  timeout_ms = capped (ph_config_get_response_timeout_ms (p->run->config), ANSWER_TIMEOUT_CAP_MS);
  p->ask = ph_ask_new (stream, ph_upstream_build_request (p->run->up, req), timeout_ms,
                       exchange_answered, p);
}

static void
exchange_tcp_done (GObject *source, GAsyncResult *result, gpointer data)
{
  PhProbe *p = data;
  g_autoptr (GError) error = NULL;
  gboolean timed_out = p->timed_out;

  p->conn = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  timer_stop (p);
  if (p->conn == NULL)
    {
      /* TRANSLATORS: %s is the error */
      g_autofree char *why = g_strdup_printf (_ ("no connection: %s"),
                                              timed_out ? _ ("no answer in time") : error->message);
      exchange_finish (p, NULL, why);
      return;
    }
  ph_socket_set_nodelay (g_socket_connection_get_socket (p->conn));
  timer_start (p, 0);
  ph_tls_handshake_async (
      p->tls, p->conn,
      capped (ph_config_get_handshake_timeout_ms (p->run->config), HANDSHAKE_TIMEOUT_CAP_MS),
      p->cancel, exchange_handshake_done, p);
}

/* Sends @head (a request head without credentials; ph_upstream_build_request adds them) on a
 * new verified connection to the address TCP reached, and calls @done with the final answer's
 * head, or NULL and why not. */
static void
exchange_start (PhProbe *p, const char *head, PhExchangeFunc done)
{
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (p->reached, p->port);
  GError *error = NULL;

  p->exchange_done = done;
  p->exchange_text = g_strdup (head);
  if (p->tls == NULL)
    p->tls = ph_tls_context_new (p->run->config, p->server_name, &error);
  if (p->tls == NULL)
    {
      g_autofree char *why = g_strdup (error->message);
      g_error_free (error);
      exchange_finish (p, NULL, why);
      return;
    }
  timer_start (p, capped (ph_config_get_connect_timeout_ms (p->run->config), TCP_TIMEOUT_CAP_MS));
  g_socket_client_connect_async (p->run->client, G_SOCKET_CONNECTABLE (sa), p->cancel,
                                 exchange_tcp_done, p);
}

static char *
connect_head (const char *authority)
{
  return g_strdup_printf ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", authority, authority);
}

/* ---- auth ---- */

static const char *
probe_authority (PhProbe *p, char **owned)
{
  const char *configured = ph_config_get_doctor_target (p->run->config);

  if (configured != NULL)
    return configured;
  /* 443: the port every proxy lets CONNECT reach (Squid's SSL_ports). */
  *owned = g_strdup_printf (strchr (p->host, ':') ? "[%s]:443" : "%s:443", p->host);
  return *owned;
}

static void
auth_done (PhProbe *p, PhHttpResponse *resp, const char *why)
{
  PhConfig *config = p->run->config;
  g_autofree char *owned = NULL;
  const char *probe = probe_authority (p, &owned);
  const char *user = ph_config_get_username (config);
  guint status;

  if (resp == NULL)
    {
      step_fail (
          p, "no-answer",
          /* TRANSLATORS: a host:port, then why */
          g_strdup_printf (_ ("the cloud proxy did not answer a CONNECT to %s: %s"), probe, why),
          g_strdup (_ ("Check that the cloud proxy (Squid behind its stunnel) is "
                       "running; its administrator can tell from its logs.")));
      probe_next (p);
      return;
    }
  status = ph_http_response_get_status (resp);
  g_variant_dict_insert (p->steps[STEP_AUTH].details, "status", "u", status);
  if (status >= 200 && status < 300)
    step_ok (p, user != NULL
                    /* TRANSLATORS: a user name, a host:port, an HTTP status */
                    ? g_strdup_printf (_ ("the cloud proxy took the credentials of “%s” (CONNECT "
                                          "%s: %u)"),
                                       user, probe, status)
                    /* TRANSLATORS: a host:port, an HTTP status */
                    : g_strdup_printf (_ ("the cloud proxy took a CONNECT to %s without "
                                          "credentials (%u)"),
                                       probe, status));
  else if (status == 502 || status == 503 || status == 504)
    /* Squid checks the credentials before it forwards: they were taken. */
    step_set (p, "warning", "ok",
              /* TRANSLATORS: a host:port, the HTTP status and its reason phrase */
              g_strdup_printf (_ ("the cloud proxy took the credentials, but could not reach "
                                  "the probe target %s: %u %s"),
                               probe, status, ph_http_response_get_reason (resp)),
              g_strdup (_ ("Set [doctor] target= to a HOST:PORT the cloud proxy can reach, so "
                           "that this check is complete.")));
  else if ((status == 407 || status == 401)
           && (user == NULL || ph_config_get_password (config) == NULL))
    step_fail (p, "no-credentials",
               /* TRANSLATORS: an HTTP status */
               g_strdup_printf (_ ("the cloud proxy asks for a user name and password (%u), and "
                                   "none is stored"),
                                status),
               g_strdup (_ ("Store them with “pinholectl set-credentials USER” or in the tray's "
                            "settings.")));
  else if (status == 407 || status == 401)
    step_fail (p, "rejected",
               /* TRANSLATORS: a user name, an HTTP status */
               g_strdup_printf (_ ("password rejected: the cloud proxy refused the credentials "
                                   "of “%s” (%u)"),
                                user, status),
               /* TRANSLATORS: %s is the user name */
               g_strdup_printf (_ ("Set the right password with “pinholectl set-credentials %s” "
                                   "or in the tray's settings."),
                                user));
  else
    step_fail (p, "refused",
               /* TRANSLATORS: a host:port, the HTTP status and its reason phrase */
               g_strdup_printf (_ ("the cloud proxy refused a CONNECT to %s: %u %s"), probe, status,
                                ph_http_response_get_reason (resp)),
               /* TRANSLATORS: a host:port */
               g_strdup_printf (_ ("Ask the cloud proxy's administrator to allow CONNECT to %s, "
                                   "or set [doctor] target= to a HOST:PORT it allows."),
                                probe));
  probe_next (p);
}

static void
auth_run (PhProbe *p)
{
  g_autofree char *owned = NULL;
  const char *probe = probe_authority (p, &owned);
  g_autofree char *head = connect_head (probe);

  step_begin (p, STEP_AUTH);
  g_variant_dict_insert (p->steps[STEP_AUTH].details, "probe", "s", probe);
  exchange_start (p, head, auth_done);
}

/* ---- target ---- */

static void
target_done (PhProbe *p, PhHttpResponse *resp, const char *why)
{
  const char *url = p->run->url;
  gboolean tunnel = p->run->target_authority != NULL;
  guint status;
  const char *reason;

  if (resp == NULL)
    {
      step_fail (p, "unreachable",
                 /* TRANSLATORS: a URL, then why */
                 g_strdup_printf (_ ("no answer through the cloud proxy for %s: %s"), url, why),
                 g_strdup (_ ("Try again; if it persists, the cloud proxy's administrator can "
                              "tell from its logs.")));
      probe_next (p);
      return;
    }
  status = ph_http_response_get_status (resp);
  reason = ph_http_response_get_reason (resp);
  g_variant_dict_insert (p->steps[STEP_TARGET].details, "status", "u", status);
  if (status < 400 && (!tunnel || status < 300))
    /* TRANSLATORS: a URL, an HTTP status and its reason phrase */
    step_ok (
        p, g_strdup_printf (_ ("%s answered through the cloud proxy: %u %s"), url, status, reason));
  else if (status == 502 || status == 503 || status == 504 || (!tunnel && status >= 500))
    step_fail (p, "unreachable",
               /* TRANSLATORS: a URL, an HTTP status and its reason phrase */
               g_strdup_printf (_ ("the cloud proxy cannot reach %s: %u %s"), url, status, reason),
               g_strdup (_ ("Check that the site is up and that the cloud proxy may reach it; "
                            "its administrator can tell from its logs.")));
  else if (tunnel && status == 403)
    step_fail (
        p, "blocked",
        /* TRANSLATORS: a URL, an HTTP status and its reason phrase */
        g_strdup_printf (_ ("the cloud proxy does not allow %s: %u %s"), url, status, reason),
        /* TRANSLATORS: a URL */
        g_strdup_printf (_ ("Ask the cloud proxy's administrator to allow %s."), url));
  else
    step_fail (p, "http-error",
               /* TRANSLATORS: a URL, an HTTP status and its reason phrase */
               g_strdup_printf (_ ("%s answered with an error: %u %s"), url, status, reason), NULL);
  probe_next (p);
}

static void
target_run (PhProbe *p)
{
  step_begin (p, STEP_TARGET);
  g_variant_dict_insert (p->steps[STEP_TARGET].details, "url", "s", p->run->url);
  exchange_start (p, p->run->target_head, target_done);
}

/* ---- the run ---- */

static void run_probe_finished (PhDoctorRun *run);

static void
skip_rest (PhProbe *p, PhStepId from, const char *why)
{
  for (PhStepId i = from; i < N_STEPS; i++)
    {
      PhStep *s = &p->steps[i];
      s->status = "skipped";
      s->code = "skipped";
      g_free (s->verdict);
      s->verdict = g_strdup (why);
      g_free (s->advice);
      s->advice = g_strdup ("");
      s->ms = 0;
    }
}

/* After each step: the next one, or the end of this proxy. */
static void
probe_next (PhProbe *p)
{
  PhStepId done = p->current;

  if (g_strcmp0 (p->steps[done].status, "failed") == 0)
    {
      skip_rest (p, done + 1, _ ("an earlier step failed"));
      run_probe_finished (p->run);
      return;
    }
  switch (done)
    {
      case STEP_DNS:
        tcp_run (p);
        return;
      case STEP_TCP:
        tls_run (p);
        return;
      case STEP_TLS:
        auth_run (p);
        return;
      case STEP_AUTH:
        if (p->run->target_head == NULL)
          {
            skip_rest (p, STEP_TARGET, _ ("no URL was given"));
            run_probe_finished (p->run);
            return;
          }
        target_run (p);
        return;
      case STEP_TARGET:
      case N_STEPS:
        break;
    }
  run_probe_finished (p->run);
}

static void
probe_free (PhProbe *p)
{
  timer_stop (p);
  g_free (p->host);
  g_free (p->server_name);
  g_free (p->name);
  for (guint i = 0; i < N_STEPS; i++)
    {
      g_free (p->steps[i].verdict);
      g_free (p->steps[i].advice);
      g_variant_dict_unref (p->steps[i].details);
    }
  g_resolver_free_addresses (p->addresses);
  g_clear_object (&p->reached);
  g_clear_object (&p->conn);
  g_clear_pointer (&p->tls, ph_tls_context_unref);
  g_free (p->tcp_problem);
  g_free (p);
}

static void
run_free (PhDoctorRun *run)
{
  g_clear_pointer (&run->probes, g_ptr_array_unref);
  if (run->up != NULL)
    ph_upstream_unref (run->up);
  ph_config_unref (run->config);
  g_clear_object (&run->client);
  g_clear_object (&run->cancellable);
  g_free (run->url);
  g_free (run->target_authority);
  g_free (run->target_head);
  g_free (run);
}

/* Builders, not dictionaries, so that the keys keep the contract's order on the wire and in
 * pinholectl's JSON. */
static GVariant *
step_to_variant (PhProbe *p, PhStepId id)
{
  PhStep *s = &p->steps[id];
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "step", g_variant_new_string (step_names[id]));
  g_variant_builder_add (&b, "{sv}", "status",
                         g_variant_new_string (s->status ? s->status : "skipped"));
  g_variant_builder_add (&b, "{sv}", "code", g_variant_new_string (s->code ? s->code : "skipped"));
  g_variant_builder_add (&b, "{sv}", "verdict",
                         g_variant_new_string (s->verdict ? s->verdict : ""));
  g_variant_builder_add (&b, "{sv}", "advice", g_variant_new_string (s->advice ? s->advice : ""));
  g_variant_builder_add (&b, "{sv}", "ms", g_variant_new_uint32 (s->ms));
  g_variant_builder_add (&b, "{sv}", "details", g_variant_dict_end (s->details));
  return g_variant_builder_end (&b);
}

static GVariant *
run_report (PhDoctorRun *run)
{
  GVariantBuilder proxies;
  GVariantBuilder report;
  gboolean ok = TRUE;
  gboolean warned = FALSE;
  g_autofree char *summary = NULL;

  g_variant_builder_init (&proxies, G_VARIANT_TYPE ("aa{sv}"));
  for (guint i = 0; i < run->probes->len; i++)
    {
      PhProbe *p = g_ptr_array_index (run->probes, i);
      GVariantBuilder steps;
      GVariantBuilder d;

      g_variant_builder_init (&steps, G_VARIANT_TYPE ("aa{sv}"));
      for (PhStepId id = 0; id < N_STEPS; id++)
        {
          const char *status = p->steps[id].status;
          g_variant_builder_add_value (&steps, step_to_variant (p, id));
          if (g_strcmp0 (status, "warning") == 0)
            warned = TRUE;
          if (g_strcmp0 (status, "failed") == 0 && ok)
            {
              ok = FALSE;
              summary = g_strdup_printf ("%s: %s", p->name, p->steps[id].verdict);
            }
        }
      g_variant_builder_init (&d, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&d, "{sv}", "name", g_variant_new_string (p->name));
      g_variant_builder_add (&d, "{sv}", "host", g_variant_new_string (p->host));
      g_variant_builder_add (&d, "{sv}", "port", g_variant_new_uint32 (p->port));
      g_variant_builder_add (&d, "{sv}", "server-name", g_variant_new_string (p->server_name));
      g_variant_builder_add (&d, "{sv}", "steps", g_variant_builder_end (&steps));
      g_variant_builder_add_value (&proxies, g_variant_builder_end (&d));
    }
  if (ok)
    summary = g_strdup (run->probes->len == 1
                            ? (warned ? _ ("The cloud proxy works; see the warning.")
                                      : _ ("The cloud proxy works."))
                            : (warned ? _ ("All cloud proxies work; see the warnings.")
                                      : _ ("All cloud proxies work.")));
  g_variant_builder_init (&report, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&report, "{sv}", "version", g_variant_new_uint32 (PH_DOCTOR_VERSION));
  g_variant_builder_add (&report, "{sv}", "ok", g_variant_new_boolean (ok));
  g_variant_builder_add (&report, "{sv}", "summary", g_variant_new_string (summary));
  g_variant_builder_add (&report, "{sv}", "url", g_variant_new_string (run->url));
  g_variant_builder_add (&report, "{sv}", "proxies", g_variant_builder_end (&proxies));
  return g_variant_ref_sink (g_variant_builder_end (&report));
}

static void
run_probe_finished (PhDoctorRun *run)
{
  GTask *task;

  g_assert (run->pending > 0);
  if (--run->pending > 0)
    return;
  task = run->task;
  g_task_return_pointer (task, run_report (run), (GDestroyNotify) g_variant_unref);
  g_object_unref (task);
}

/* The URL of the target step as the heads to send: a CONNECT for https://, the request in
 * absolute form for http://. */
static gboolean
run_set_url (PhDoctorRun *run, const char *url, GError **error)
{
  g_autoptr (GUri) uri = NULL;
  const char *scheme;
  const char *host;
  int port;
  g_autofree char *authority = NULL;

  run->url = g_strdup (url != NULL ? url : "");
  if (url == NULL || *url == '\0')
    return TRUE;
  uri = g_uri_parse (url, G_URI_FLAGS_ENCODED, NULL);
  scheme = uri ? g_uri_get_scheme (uri) : NULL;
  host = uri ? g_uri_get_host (uri) : NULL;
  if (uri == NULL || (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0)
      || host == NULL || *host == '\0')
    {
      g_set_error (error, PH_ERROR, PH_ERROR_BAD_REQUEST,
                   /* TRANSLATORS: %s is what the user gave */
                   _ ("“%s” is not an http:// or https:// URL"), url);
      return FALSE;
    }
  if (g_uri_get_userinfo (uri) != NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_BAD_REQUEST,
                   _ ("a URL with a user name or password in it is not taken: the report "
                      "would show it"));
      return FALSE;
    }
  port = g_uri_get_port (uri);
  if (port <= 0)
    port = g_strcmp0 (scheme, "https") == 0 ? 443 : 80;
  authority = g_strdup_printf (strchr (host, ':') ? "[%s]:%d" : "%s:%d", host, port);
  if (g_strcmp0 (scheme, "https") == 0)
    {
      run->target_head = connect_head (authority);
      run->target_authority = g_steal_pointer (&authority);
    }
  else
    {
      const char *path = g_uri_get_path (uri);
      const char *query = g_uri_get_query (uri);
      run->target_head = g_strdup_printf ("GET http://%s%s%s%s HTTP/1.1\r\nHost: %s\r\n\r\n",
                                          authority, *path != '\0' ? path : "/", query ? "?" : "",
                                          query ? query : "", authority);
    }
  /* What the parser would refuse (spaces, control characters) is refused now. */
  {
    g_autoptr (PhHttpRequest) req = NULL;
    gsize consumed = 0;
    guint status = 0;
    g_autofree char *reason = NULL;
    if (ph_http_request_parse (run->target_head, strlen (run->target_head), NULL, &req, &consumed,
                               &status, &reason)
        != PH_HTTP_PARSE_DONE)
      {
        g_set_error (error, PH_ERROR, PH_ERROR_BAD_REQUEST,
                     /* TRANSLATORS: the URL, then what is wrong with it */
                     _ ("“%s” cannot be requested: %s"), url, reason ? reason : "?");
        return FALSE;
      }
  }
  return TRUE;
}

void
ph_doctor_run_async (PhConfig *config, const char *url, GCancellable *cancellable,
                     GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  PhDoctorRun *run = g_new0 (PhDoctorRun, 1);
  GError *error = NULL;
  guint n = ph_config_get_n_proxies (config);

  g_task_set_source_tag (task, ph_doctor_run_async);
  run->config = ph_config_ref (config);
  run->cancellable = cancellable ? g_object_ref (cancellable) : g_cancellable_new ();
  g_task_set_task_data (task, run, (GDestroyNotify) run_free);
  if (n == 0)
    {
      g_task_return_new_error (task, PH_ERROR, PH_ERROR_NOT_CONFIGURED, "%s",
                               _ ("no cloud proxy is configured: set upstream.host"));
      return;
    }
  if (!run_set_url (run, url, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  /* Fresh and shut: it keeps no pool, but writes the heads with the credentials, which it tries
   * even if the agent's own upstream found them rejected. */
  run->up = ph_upstream_new (config, &error);
  if (run->up == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  ph_upstream_shutdown (run->up);
  run->client = g_socket_client_new ();
  g_socket_client_set_enable_proxy (run->client, FALSE);
  ph_netfilter_mark_client (run->client, ph_config_get_mark (run->config));
  run->probes = g_ptr_array_new_with_free_func ((GDestroyNotify) probe_free);
  for (guint i = 0; i < n; i++)
    {
      PhProbe *p = g_new0 (PhProbe, 1);
      p->run = run;
      p->host = g_strdup (ph_config_get_proxy_host (config, i));
      p->port = ph_config_get_proxy_port (config, i);
      p->server_name = g_strdup (ph_config_get_proxy_server_name (config, i));
      p->name = ph_config_dup_proxy_name (config, i);
      for (guint s = 0; s < N_STEPS; s++)
        p->steps[s].details = g_variant_dict_new (NULL);
      g_ptr_array_add (run->probes, p);
    }
  run->task = g_steal_pointer (&task);
  run->pending = n;
  for (guint i = 0; i < n; i++)
    dns_run (g_ptr_array_index (run->probes, i));
}

GVariant *
ph_doctor_run_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
