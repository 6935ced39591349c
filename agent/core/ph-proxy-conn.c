/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-proxy-conn.c: the life of one client connection.
 *
 *   HEAD ──CONNECT──► UPSTREAM ─► EXCHANGE ─200─► TUNNEL (two raw pipes)
 *     ▲   └─http://─►              (request pipe, response head, body pipe)
 *     └──────────── keep-alive ◄──────┘
 *
 * Each request is routed (ph-route) before a tunnel slot or an upstream
 * connection is taken for it: through the cloud proxy, directly (the
 * agent connects to the target; a CONNECT is answered 200 here, an
 * http:// request goes in origin form), or refused (403). A direct
 * connection is kept for this client's next request to the same origin,
 * never put in the shared pool, which holds cloud connections only.
 * GET /proxy.pac and /wpad.dat, asked of the listener itself, are
 * answered here with the PAC (ph-pac.c). A first byte 0x05 or 0x04 is a
 * SOCKS5 or SOCKS4/4a client (ph-socks.c): its CONNECT becomes the same
 * request as an HTTP CONNECT, and only the answers differ (SOCKS replies). What is said to the
 * cloud proxy and how its answer is read are ph-upstream's; this file moves those bytes and the
 * client's. Nothing is written upstream before the upstream stream exists,
 * and it exists only once verified (ph-tls.c).
 *
 * Lifetime (g_atomic_rc_box, like every shared object of the engine): the
 * owner (the listener's table) holds one reference while the connection is
 * open, and closing drops it. Every entry from the main loop (a socket
 * wait, a pipe's callback, the upstream's callback, the owner's calls)
 * holds one more for its whole duration, so code that closes the
 * connection, directly or through a callback it triggers, can go on
 * looking at it. */
#define G_LOG_DOMAIN "pinhole-conn"

#include "ph-proxy-conn.h"
#include "ph-error.h"
#include "ph-wipe.h"
#include "ph-http.h"
#include "ph-log.h"
#include "ph-pac.h"
#include "ph-relay.h"
#include "ph-route.h"
#include "ph-netfilter.h"
#include "ph-sniff.h"
#include "ph-socks.h"

#include <string.h>

/* Interim (1xx) responses passed on before a final one. Real origins send
 * one 100 or 103, and a WebDAV 102 every few seconds of a long operation;
 * past this the origin is flooding, not informing. */
#define MAX_INTERIM_RESPONSES 32

/* How long a transparent client's first bytes are waited for before its connection goes to the
 * cloud proxy as "ip:port": TLS and HTTP clients speak at once; a protocol whose server speaks
 * first (SMTP, SSH) sends nothing until then. */
#define SNIFF_WAIT_MS 1000

typedef enum
{
  CONN_HEAD,
  CONN_UPSTREAM,
  CONN_EXCHANGE,
  CONN_TUNNEL,
  CONN_CLOSING,
  CONN_CLOSED,
} PhConnState;

struct _PhProxyConn
{
  const PhProxyConnOwner *owner;
  gpointer owner_data;
  PhConfig *config;
  PhRouter *router;
  PhRouteKind route;      /* this request's route (PROXY until decided) */
  const char *route_name; /* for the access line: "proxy", "direct", "block", "pac"; NULL */
  char *direct_target;    /* conn->up is a direct connection to this "host:port"; NULL: cloud */
  char *local;            /* the listener's address this client reached, "host:port" */
  PhUpstream *upstream;
  PhStream *client;
  PhStream *up;
  char *peer;
  GCancellable *cancellable;
  PhConnState state;
  gboolean logged;              /* this exchange's bytes are in the owner's totals */
  gboolean sniffed;             /* the first byte said whether this is a SOCKS client */
  PhSocksVersion socks;         /* PH_SOCKS5 or PH_SOCKS4, PH_SOCKS_NONE: HTTP */
  gboolean socks_greeted;       /* SOCKS5: the method reply is out, the request comes next */
  GInetSocketAddress *original; /* transparent: where the client was going; NULL: a proxy client */
  char *original_text;          /* the same, "ip:port" */
  PhSniffKind learned;          /* how the transparent client's name was learned */
  gint64 sniff_deadline_us;     /* transparent: when to stop waiting for a name */

  /* SOCKS5: 0x02 was chosen, RFC 1929's sub-negotiation comes next */
  gboolean socks_signing_in;
  /* The client is on this machine (a SOCKS5 one needs no sign-in) */
  gboolean loopback;

  GByteArray *cin; /* client bytes read and not used yet */
  GByteArray *uin; /* upstream bytes of a response head */
  GSource *client_wait;
  GSource *up_wait;
  PhHttpRequest *req;
  PhHttpResponse *resp;
  gboolean resp_keep_alive; /* resp leaves the upstream connection open: its
                             * keep-alive, and a body not ended by close */
  PhPipe *c2u;
  PhPipe *u2c;
  gboolean u2c_interim; /* u2c passes interim heads (interim_sent) */
  gboolean holds_tunnel;
  gboolean request_sent;
  gboolean response_done;
  gboolean keep_alive;
  gboolean up_reused;   /* conn->up served an earlier request (idle pool or this client) */
  gboolean up_h2;       /* conn->up is a stream of the proxy's HTTP/2 connection */
  GSource *h2_linger;   /* the client ended its side of an HTTP/2 tunnel: see h2_linger_cb */
  guint64 linger_bytes; /* u2c's bytes at the last look */
  gboolean fresh_only;  /* the request is sent again: on a connection never used before */
  guint failovers;      /* times it moved on to another cloud proxy that had not answered */
  gboolean bound;       /* the origin signs in per connection (NTLM, Negotiate): conn->up
                         * stays with this client, never in the shared pool */
  gint64 up_idle_us;    /* since when conn->up waits for this client's next request */
  guint n_interim;      /* interim responses passed on for this request */
  gboolean final_waits; /* a final head waits in uin for interim ones to go out */
  PhHttpResponse *held; /* a 407 waiting for the proxy's word on our credentials */
  gsize held_len;
  gboolean auth_checked; /* this request's 407 is known to be the origin's */

  gint64 opened_us; /* accepted: the connection's age */
  gint64 started_us;
  gint64 deadline_us; /* head or response; 0 when none */
  guint64 seen_bytes; /* idle detection */
  gint64 seen_us;
  guint status;
};

static void conn_read_head (PhProxyConn *conn);
static void conn_read_response (PhProxyConn *conn);
static void conn_finish_request (PhProxyConn *conn);
static void conn_get_upstream (PhProxyConn *conn);
static void conn_connect_direct (PhProxyConn *conn);
static gboolean conn_may_go_direct (PhProxyConn *conn, const GError *error);
static void conn_send_request (PhProxyConn *conn);
static void interim_sent (PhPipe *pipe, GError *error, gpointer data);

PhProxyConn *
ph_proxy_conn_ref (PhProxyConn *conn)
{
  return g_atomic_rc_box_acquire (conn);
}

static void
conn_clear (PhProxyConn *conn)
{
  g_clear_object (&conn->original);
  g_clear_pointer (&conn->original_text, g_free);
  g_clear_pointer (&conn->c2u, ph_pipe_free);
  g_clear_pointer (&conn->u2c, ph_pipe_free);
  g_clear_pointer (&conn->client, ph_stream_free);
  g_clear_pointer (&conn->up, ph_stream_free);
  g_clear_pointer (&conn->cin, g_byte_array_unref);
  g_clear_pointer (&conn->uin, g_byte_array_unref);
  g_clear_pointer (&conn->req, ph_http_request_free);
  g_clear_pointer (&conn->resp, ph_http_response_free);
  g_clear_pointer (&conn->held, ph_http_response_free);
  g_clear_object (&conn->cancellable);
  g_clear_pointer (&conn->upstream, ph_upstream_unref);
  g_clear_pointer (&conn->router, ph_router_unref);
  ph_config_unref (conn->config);
  g_free (conn->direct_target);
  g_free (conn->local);
  g_free (conn->peer);
}

void
ph_proxy_conn_unref (PhProxyConn *conn)
{
  g_atomic_rc_box_release_full (conn, (GDestroyNotify) conn_clear);
}

static void
conn_u2c_init (PhProxyConn *conn, PhStream *src, PhStream *dst, PhPipeDoneFunc done,
               gpointer user_data)
{
  conn->u2c_interim = done == interim_sent;
  ph_pipe_init (conn->u2c, src, dst, done, user_data);
}

static void
drop_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static guint64
conn_bytes (PhProxyConn *conn)
{
  return ph_pipe_get_bytes (conn->c2u) + ph_pipe_get_bytes (conn->u2c);
}

static const char *
conn_target (PhProxyConn *conn)
{
  if (conn->req == NULL)
    return "-";
  if (ph_http_request_get_kind (conn->req) == PH_HTTP_ABSOLUTE)
    return ph_http_request_get_target (conn->req);
  return ph_http_request_get_authority (conn->req) ? ph_http_request_get_authority (conn->req)
                                                   : ph_http_request_get_target (conn->req);
}

static void
conn_log (PhProxyConn *conn, const char *error_kind)
{
  gint64 now = g_get_monotonic_time ();

  conn->logged = TRUE;
  ph_log_access (
      conn->peer, conn->req ? ph_http_request_get_method (conn->req) : "-", conn_target (conn),
      conn->status, ph_pipe_get_bytes (conn->c2u), ph_pipe_get_bytes (conn->u2c),
      now - conn->started_us, conn->route_name, error_kind,
      conn->original != NULL     ? "transparent"
      : conn->socks == PH_SOCKS5 ? "socks5"
      : conn->socks == PH_SOCKS4 ? "socks4"
                                 : NULL,
      conn->original != NULL && conn->req != NULL && conn->learned != PH_SNIFF_NONE
          ? ph_http_request_get_host (conn->req)
          : NULL,
      conn->original != NULL && conn->req != NULL
          ? (conn->learned == PH_SNIFF_NONE ? "ip" : ph_sniff_kind_to_string (conn->learned))
          : NULL,
      conn->original_text, conn->up_h2 ? "h2" : NULL);
  conn->owner->account (conn->owner_data, ph_pipe_get_bytes (conn->c2u),
                        ph_pipe_get_bytes (conn->u2c));
}

static void
conn_release_tunnel (PhProxyConn *conn)
{
  if (conn->holds_tunnel)
    {
      conn->holds_tunnel = FALSE;
      conn->owner->release_tunnel (conn->owner_data);
    }
}

/* Ends the connection. @abort resets the client instead of closing it
 * cleanly, so a truncated transfer cannot pass for a complete one. */
static void
conn_close_full (PhProxyConn *conn, gboolean abort)
{
  if (conn->state == CONN_CLOSED)
    return;
  conn->state = CONN_CLOSED;
  g_cancellable_cancel (conn->cancellable);
  ph_pipe_stop (conn->c2u);
  ph_pipe_stop (conn->u2c);
  drop_source (&conn->client_wait);
  drop_source (&conn->up_wait);
  drop_source (&conn->h2_linger);
  if (abort && conn->client != NULL)
    ph_stream_abort (conn->client);
  g_clear_pointer (&conn->client, ph_stream_free);
  g_clear_pointer (&conn->up, ph_stream_free);
  conn_release_tunnel (conn);
  conn->owner->closed (conn->owner_data, conn);
}

void
ph_proxy_conn_get_live_bytes (PhProxyConn *conn, guint64 *up, guint64 *down)
{
  *up = conn->logged ? 0 : ph_pipe_get_bytes (conn->c2u);
  *down = conn->logged ? 0 : ph_pipe_get_bytes (conn->u2c);
}

static const char *
conn_state_to_string (PhConnState state)
{
  switch (state)
    {
      case CONN_HEAD:
        return "head";
      case CONN_UPSTREAM:
        return "connecting";
      case CONN_EXCHANGE:
        return "exchange";
      case CONN_TUNNEL:
        return "tunnel";
      case CONN_CLOSING:
      case CONN_CLOSED:
      default:
        return "closing";
    }
}

GVariant *
ph_proxy_conn_describe (PhProxyConn *conn, gint64 now_us)
{
  GVariantDict dict;
  guint64 up = 0, down = 0;
  const PhProxy *proxy = NULL;
  const char *target = "";

  if (conn->req != NULL)
    target = ph_http_request_get_authority (conn->req) ? ph_http_request_get_authority (conn->req)
                                                       : ph_http_request_get_target (conn->req);
  else if (conn->original_text != NULL)
    target = conn->original_text;
  /* A stream of the cloud carries its proxy; a direct one carries none. */
  if (conn->up != NULL && conn->direct_target == NULL && conn->route == PH_ROUTE_PROXY)
    proxy = ph_stream_get_origin (conn->up);
  ph_proxy_conn_get_live_bytes (conn, &up, &down);
  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "client", "s", conn->peer ? conn->peer : "");
  g_variant_dict_insert (&dict, "target", "s", target);
  g_variant_dict_insert (&dict, "route", "s", conn->route_name ? conn->route_name : "");
  g_variant_dict_insert (&dict, "proxy", "s", proxy ? ph_proxy_get_name (proxy) : "");
  g_variant_dict_insert (&dict, "proto", "s",
                         conn->original != NULL     ? "transparent"
                         : conn->socks == PH_SOCKS5 ? "socks5"
                         : conn->socks == PH_SOCKS4 ? "socks4"
                                                    : "http");
  if (conn->original != NULL)
    {
      g_variant_dict_insert (&dict, "name", "s",
                             conn->req != NULL && conn->learned != PH_SNIFF_NONE
                                 ? ph_http_request_get_host (conn->req)
                                 : "");
      g_variant_dict_insert (&dict, "learned", "s",
                             conn->req == NULL ? ""
                             : conn->learned == PH_SNIFF_NONE
                                 ? "ip"
                                 : ph_sniff_kind_to_string (conn->learned));
      g_variant_dict_insert (&dict, "original", "s",
                             conn->original_text ? conn->original_text : "");
    }
  g_variant_dict_insert (&dict, "bytes-up", "t", up);
  g_variant_dict_insert (&dict, "bytes-down", "t", down);
  g_variant_dict_insert (&dict, "age-seconds", "t",
                         (guint64) MAX (now_us - conn->opened_us, 0) / G_USEC_PER_SEC);
  g_variant_dict_insert (&dict, "state", "s", conn_state_to_string (conn->state));
  return g_variant_dict_end (&dict);
}

void
ph_proxy_conn_close (PhProxyConn *conn)
{
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);

  conn_close_full (conn, FALSE);
}

static void
refusal_sent (PhPipe *pipe, GError *error, gpointer data)
{
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (data);

  g_clear_error (&error);
  ph_proxy_conn_close (data);
}

static void conn_answer (PhProxyConn *conn, guint status, const char *kind, GString *resp);
static void conn_answer_bytes (PhProxyConn *conn, guint status, const char *kind,
                               const guint8 *data, gsize len);

/* Answers with a refusal and closes: the one way errors reach a client. */
static void
conn_refuse (PhProxyConn *conn, guint status, const char *kind, const char *message)
{
  g_autoptr (GString) resp = ph_http_build_error (status, kind, message);

  conn_answer (conn, status, kind, resp);
}

/* A SOCKS client's failure reply (@code; SOCKS4: rejected), then the connection closes. Nothing
 * is sent before a SOCKS5 greeting was answered, nor for a head that did not come in time. */
static void
conn_answer_socks (PhProxyConn *conn, guint status, const char *kind, guint8 code)
{
  guint8 reply[PH_SOCKS5_REPLY_LEN];
  gsize len = 0;

  if (conn->socks == PH_SOCKS4)
    {
      ph_socks4_build_reply (FALSE, reply);
      len = PH_SOCKS4_REPLY_LEN;
    }
  else if (conn->socks_greeted)
    {
      ph_socks5_build_reply (code, reply);
      len = PH_SOCKS5_REPLY_LEN;
    }
  if (status == 408)
    len = 0;
  if (len == 0)
    {
      if (conn->state == CONN_CLOSED)
        return;
      conn->status = status;
      conn_log (conn, kind);
      ph_proxy_conn_close (conn);
      return;
    }
  conn_answer_bytes (conn, status, kind, reply, len);
}

/* Answers with @resp (a whole message the agent wrote) and closes; a SOCKS client gets the
 * SOCKS reply that says the same. */
static void
conn_answer (PhProxyConn *conn, guint status, const char *kind, GString *resp)
{
  if (conn->original != NULL)
    {
      /* A transparent client did not ask a proxy: no answer of the agent's would make sense to
       * it, and a reset says "not reachable" the way the network would have. */
      if (conn->state == CONN_CLOSED)
        return;
      conn->status = status;
      conn_log (conn, kind);
      conn_close_full (conn, TRUE);
    }
  else if (conn->socks != PH_SOCKS_NONE)
    conn_answer_socks (conn, status, kind, ph_socks5_code_for (status, kind, NULL));
  else
    conn_answer_bytes (conn, status, kind, (const guint8 *) resp->str, resp->len);
}

static void
conn_answer_bytes (PhProxyConn *conn, guint status, const char *kind, const guint8 *data, gsize len)
{
  g_autoptr (GBytes) pending = NULL;

  if (conn->state == CONN_CLOSED)
    return;
  conn->status = status;
  conn_log (conn, kind);
  conn->state = CONN_CLOSING;
  conn->deadline_us = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  ph_pipe_stop (conn->c2u);
  ph_pipe_stop (conn->u2c);
  drop_source (&conn->client_wait);
  drop_source (&conn->up_wait);
  g_clear_pointer (&conn->up, ph_stream_free);
  conn_release_tunnel (conn);
  /* Interim heads not yet out go first: the answer must not cut one. */
  if (conn->u2c_interim)
    pending = ph_pipe_dup_pending (conn->u2c);
  ph_pipe_clear (conn->u2c);
  conn_u2c_init (conn, NULL, conn->client, refusal_sent, conn);
  if (pending != NULL)
    ph_pipe_push (conn->u2c, g_bytes_get_data (pending, NULL), g_bytes_get_size (pending));
  ph_pipe_push (conn->u2c, data, len);
  ph_pipe_start (conn->u2c, PH_PIPE_FLUSH);
}

static void
conn_refuse_error (PhProxyConn *conn, const GError *error)
{
  guint status = 502;
  const char *kind = "upstream-protocol";

  if (error->domain == PH_ERROR)
    switch ((PhError) error->code)
      {
        case PH_ERROR_UPSTREAM_UNREACHABLE:
          kind = "upstream-tcp";
          break;
        case PH_ERROR_UPSTREAM_TLS:
        case PH_ERROR_CERT_UNTRUSTED:
          kind = "upstream-tls";
          break;
        case PH_ERROR_PIN_MISMATCH:
          kind = "pin-mismatch";
          break;
        case PH_ERROR_AUTH_REJECTED:
          kind = "auth-rejected";
          break;
        case PH_ERROR_TIMEOUT:
          status = 504;
          kind = "upstream-timeout";
          break;
        default:
          break;
      }
  g_debug ("%s: %s", conn->peer, error->message);
  conn_refuse (conn, status, kind, error->message);
}

static void
conn_refuse_auth (PhProxyConn *conn)
{
  g_autofree char *msg = g_strdup_printf (
      "the cloud proxy %s rejected the credentials of user “%s”; Pinhole will not send them again "
      "until they are changed",
      conn->up != NULL ? ph_upstream_get_stream_proxy_name (conn->upstream, conn->up)
                       : ph_upstream_get_name (conn->upstream),
      ph_config_get_username (conn->config) ? ph_config_get_username (conn->config) : "");
  conn_refuse (conn, 502, "auth-rejected", msg);
}

static gboolean
client_readable_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhProxyConn *conn = data;
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);

  g_clear_pointer (&conn->client_wait, g_source_unref);
  conn_read_head (conn);
  return G_SOURCE_REMOVE;
}

/* ---- upstream exchange ---- */

/* Which side broke a pipe: the client when its socket failed, whichever
 * direction that was. Only an upstream failure resets the client, so that
 * a cut-off transfer does not look complete to it. */
static gboolean
pipe_failed_on_client (PhProxyConn *conn, PhPipe *pipe)
{
  return (pipe == conn->u2c) == ph_pipe_get_write_failed (pipe);
}

static void conn_upstream_lost (PhProxyConn *conn, const GError *error);

static void
conn_pipe_failed (PhProxyConn *conn, PhPipe *pipe, GError *error)
{
  gboolean client = pipe_failed_on_client (conn, pipe);

  if (!client && pipe == conn->c2u && conn->state == CONN_EXCHANGE && conn->resp == NULL
      && conn->n_interim == 0 && conn->uin != NULL && conn->uin->len == 0
      && !ph_pipe_is_running (conn->u2c))
    {
      /* Writing the request failed before any answer: the client is told
       * with a 502 (or the request goes again), not by a reset. */
      g_debug ("%s: sending %s failed: %s", conn->peer, conn_target (conn), error->message);
      conn_upstream_lost (conn, error);
      g_error_free (error);
      return;
    }

  g_debug ("%s: %s %s ended: %s", conn->peer,
           conn->state == CONN_TUNNEL ? "tunnel to" : "exchange with", conn_target (conn),
           error->message);
  g_error_free (error);
  conn_log (conn, client ? "client-closed" : "upstream-reset");
  conn_close_full (conn, !client);
}

/* The client ended its side of a tunnel that is an HTTP/2 stream. nghttpx (and HTTP/2 proxies
 * generally) do not pass a stream's END_STREAM on to the origin as a half-close, so the origin
 * never learns the client is gone and the tunnel would stay open until an idle timeout: once the
 * origin has sent nothing for a second after the client's end, the tunnel ends (the stream is
 * reset), as a closed client would have ended it over HTTP/1.1. */
#define H2_LINGER_MS 1000

static gboolean
h2_linger_cb (gpointer data)
{
  PhProxyConn *conn = data;
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);
  guint64 bytes = ph_pipe_get_bytes (conn->u2c);

  if (conn->state == CONN_TUNNEL && bytes == conn->linger_bytes)
    {
      g_clear_pointer (&conn->h2_linger, g_source_unref);
      conn_log (conn, NULL);
      ph_proxy_conn_close (conn);
      return G_SOURCE_REMOVE;
    }
  conn->linger_bytes = bytes;
  return G_SOURCE_CONTINUE;
}

static void
tunnel_pipe_done (PhPipe *pipe, GError *error, gpointer data)
{
  PhProxyConn *conn = data;
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);

  if (error != NULL)
    {
      conn_pipe_failed (conn, pipe, error);
      return;
    }
  if (ph_pipe_is_finished (conn->c2u) && ph_pipe_is_finished (conn->u2c))
    {
      conn_log (conn, NULL);
      ph_proxy_conn_close (conn);
    }
  else if (conn->up_h2 && pipe == conn->c2u && conn->h2_linger == NULL)
    {
      conn->linger_bytes = ph_pipe_get_bytes (conn->u2c);
      conn->h2_linger = g_timeout_source_new (H2_LINGER_MS);
      g_source_set_callback (conn->h2_linger, h2_linger_cb, conn, NULL);
      g_source_attach (conn->h2_linger, NULL);
    }
}

static void
conn_start_tunnel (PhProxyConn *conn, const guint8 *extra, gsize extra_len)
{
  static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  guint8 socks_reply[PH_SOCKS5_REPLY_LEN];

  conn->state = CONN_TUNNEL;
  conn->deadline_us = 0;
  conn->status = 200;
  conn_u2c_init (conn, conn->up, conn->client, tunnel_pipe_done, conn);
  if (conn->original != NULL)
    ; /* the client thinks it is talking to its server already */
  else if (conn->socks == PH_SOCKS5)
    {
      ph_socks5_build_reply (PH_SOCKS5_SUCCEEDED, socks_reply);
      ph_pipe_push (conn->u2c, socks_reply, PH_SOCKS5_REPLY_LEN);
    }
  else if (conn->socks == PH_SOCKS4)
    {
      ph_socks4_build_reply (TRUE, socks_reply);
      ph_pipe_push (conn->u2c, socks_reply, PH_SOCKS4_REPLY_LEN);
    }
  else
    ph_pipe_push (conn->u2c, established, strlen (established));
  if (extra_len > 0)
    ph_pipe_push_body (conn->u2c, extra, extra_len);
  ph_pipe_init (conn->c2u, conn->client, conn->up, tunnel_pipe_done, conn);
  if (conn->cin->len > 0)
    {
      /* The client spoke early (e.g. a TLS ClientHello right after CONNECT). */
      ph_pipe_push_body (conn->c2u, conn->cin->data, conn->cin->len);
      g_byte_array_set_size (conn->cin, 0);
    }
  ph_pipe_start (conn->u2c, PH_PIPE_RAW);
  if (conn->state == CONN_TUNNEL)
    ph_pipe_start (conn->c2u, PH_PIPE_RAW);
}

static void
response_pipe_done (PhPipe *pipe, GError *error, gpointer data)
{
  PhProxyConn *conn = data;
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);

  if (error != NULL)
    {
      conn_pipe_failed (conn, pipe, error);
      return;
    }
  if (ph_pipe_get_overran (pipe))
    conn->keep_alive = FALSE;
  conn->response_done = TRUE;
  conn_finish_request (conn);
}

static void
request_pipe_done (PhPipe *pipe, GError *error, gpointer data)
{
  PhProxyConn *conn = data;
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);

  if (error != NULL)
    {
      gboolean bad_body = g_error_matches (error, PH_ERROR, PH_ERROR_BAD_REQUEST);
      g_debug ("%s: request to %s: %s", conn->peer, conn_target (conn), error->message);
      if (bad_body && !ph_pipe_is_running (conn->u2c))
        {
          conn_refuse (conn, 400, "bad-request", error->message);
          g_error_free (error);
        }
      else
        conn_pipe_failed (conn, pipe, error);
      return;
    }
  conn->request_sent = TRUE;
  /* The answer is awaited from the moment the request is all out: an
   * upload slower than response-timeout is not a silent proxy. While it
   * goes, the idle timeout watches it. */
  if (conn->state == CONN_EXCHANGE && conn->resp == NULL)
    conn->deadline_us = g_get_monotonic_time ()
                        + (gint64) ph_config_get_response_timeout_ms (conn->config) * 1000;
  if (ph_http_request_get_kind (conn->req) == PH_HTTP_CONNECT)
    return; /* the response decides what happens next */
  conn_finish_request (conn);
}

static gboolean
auth_is_per_connection (const char *value)
{
  return value != NULL
         && (g_ascii_strncasecmp (value, "NTLM", 4) == 0
             || g_ascii_strncasecmp (value, "Negotiate", 9) == 0);
}

/* Whether the origin signs this client in per connection (NTLM and
 * Negotiate, RFC 4559): its upstream connection then carries that
 * sign-in through the cloud proxy (Squid pins it), so it must never serve
 * another client, as a forward proxy keeps such server connections to
 * their client. */
static gboolean
conn_is_bound (PhProxyConn *conn)
{
  const PhHttpHeaders *h;

  if (conn->req == NULL)
    return FALSE;
  h = ph_http_request_get_headers (conn->req);
  if (auth_is_per_connection (ph_http_header_get (h, "Authorization")))
    return TRUE;
  if (conn->resp == NULL)
    return FALSE;
  h = ph_http_response_get_headers (conn->resp);
  for (guint i = 0; i < ph_http_headers_get_len (h); i++)
    {
      const char *name, *value;

      ph_http_headers_get_nth (h, i, &name, &value);
      if (g_ascii_strcasecmp (name, "WWW-Authenticate") == 0 && auth_is_per_connection (value))
        return TRUE;
      if (g_ascii_strcasecmp (name, "Proxy-Support") == 0
          && strstr (value, "Session-Based-Authentication") != NULL)
        return TRUE;
    }
  return FALSE;
}

/* Both halves of a forwarded message are done: next request, or close. */
static void
conn_finish_request (PhProxyConn *conn)
{
  if (!conn->response_done || !conn->request_sent || conn->state != CONN_EXCHANGE)
    {
      /* A response that ends before its request: the rest of the request
       * cannot be told apart from a next one. */
      if (conn->response_done && !conn->request_sent)
        {
          conn_log (conn, NULL);
          ph_proxy_conn_close (conn);
        }
      return;
    }
  conn_log (conn, NULL);
  /* The upstream connection first, whether or not the client stays: one
   * the proxy keeps open goes to the shared idle pool, for any client's
   * next request; one bound to this client (its origin signs in per
   * connection) stays here with its tunnel slot (max-tunnels bounds every
   * connection to the cloud proxy) until another request needs the slot
   * more. */
  conn->bound = conn->bound || conn_is_bound (conn);
  if ((conn->resp != NULL && !conn->resp_keep_alive)
      || ph_http_request_get_kind (conn->req) == PH_HTTP_CONNECT)
    /* Only plain exchanges give their connection back: after a refused
     * CONNECT a proxy may be in any state (Squid closes it). */
    g_clear_pointer (&conn->up, ph_stream_free);
  else if (conn->route == PH_ROUTE_DIRECT)
    ; /* a direct connection stays with this client, for its next request to that origin */
  else if (conn->up != NULL && !conn->bound)
    ph_upstream_put_idle (conn->upstream, g_steal_pointer (&conn->up));
  else if (conn->up != NULL)
    ph_upstream_save_session (conn->upstream, conn->up);
  if (conn->up == NULL)
    {
      conn_release_tunnel (conn);
      g_clear_pointer (&conn->direct_target, g_free);
    }
  if (!conn->keep_alive || conn->owner->is_draining (conn->owner_data))
    {
      ph_proxy_conn_close (conn);
      return;
    }
  /* Ready for the next request on this client connection. */
  conn->up_idle_us = g_get_monotonic_time ();
  conn->fresh_only = FALSE;
  conn->failovers = 0;
  g_clear_pointer (&conn->req, ph_http_request_free);
  g_clear_pointer (&conn->resp, ph_http_response_free);
  ph_pipe_clear (conn->c2u);
  ph_pipe_clear (conn->u2c);
  ph_pipe_init (conn->c2u, NULL, NULL, NULL, NULL);
  conn_u2c_init (conn, NULL, NULL, NULL, NULL);
  conn->logged = FALSE;
  conn->route = PH_ROUTE_PROXY;
  conn->route_name = NULL;
  conn->state = CONN_HEAD;
  conn->status = 0;
  conn->request_sent = conn->response_done = FALSE;
  conn->started_us = g_get_monotonic_time ();
  conn->deadline_us
      = conn->started_us + (gint64) ph_config_get_idle_timeout_ms (conn->config) * 1000;
  conn_read_head (conn);
}

static gboolean
up_readable_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhProxyConn *conn = data;
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);

  g_clear_pointer (&conn->up_wait, g_source_unref);
  conn_read_response (conn);
  return G_SOURCE_REMOVE;
}

static void conn_handle_response (PhProxyConn *conn, PhHttpResponse *resp, gsize head_len);

static void
auth_checked (gboolean rejected, gpointer data)
{
  PhProxyConn *conn = data;
  PhHttpResponse *resp = g_steal_pointer (&conn->held);

  if (conn->state != CONN_EXCHANGE || resp == NULL)
    {
      g_clear_pointer (&resp, ph_http_response_free);
      ph_proxy_conn_unref (conn);
      return;
    }
  if (rejected)
    {
      ph_http_response_free (resp);
      conn_refuse_auth (conn);
    }
  else
    {
      /* The origin's own 407: it goes to the client as it is. */
      conn->auth_checked = TRUE;
      conn_handle_response (conn, resp, conn->held_len);
    }
  ph_proxy_conn_unref (conn);
}

/* A 407 to an http:// request: is it the proxy's? The answer waits, its
 * bytes unread, until the proxy has said. */
static void
conn_check_auth (PhProxyConn *conn, PhHttpResponse *resp, gsize head_len)
{
  conn->held = resp;
  conn->held_len = head_len;
  conn->deadline_us = 0; /* the check has a timeout of its own, and answers */
  ph_upstream_check_auth_async (conn->upstream, ph_http_request_get_host (conn->req), auth_checked,
                                ph_proxy_conn_ref (conn));
}

static void
interim_sent (PhPipe *pipe, GError *error, gpointer data)
{
  PhProxyConn *conn = data;
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);

  if (error != NULL)
    {
      conn_pipe_failed (conn, pipe, error);
      return;
    }
  if (conn->final_waits)
    {
      conn->final_waits = FALSE;
      conn_read_response (conn);
    }
}

/* An interim response (100 Continue, 102, 103) goes to the client through
 * the response pipe, in order and whatever the client's pace. FALSE when
 * the connection ended. */
static gboolean
conn_pass_interim (PhProxyConn *conn, PhHttpResponse *resp, gsize head_len)
{
  g_autoptr (GString) interim = NULL;

  if (++conn->n_interim > MAX_INTERIM_RESPONSES)
    {
      g_autofree char *msg = g_strdup_printf (
          "the origin sent more than %d interim (1xx) responses", MAX_INTERIM_RESPONSES);
      ph_http_response_free (resp);
      conn_refuse (conn, 502, "upstream-protocol", msg);
      return FALSE;
    }
  if (conn->socks != PH_SOCKS_NONE || conn->original != NULL)
    {
      /* A SOCKS or transparent client has no use for an HTTP interim head. */
      ph_http_response_free (resp);
      g_byte_array_remove_range (conn->uin, 0, head_len);
      return TRUE;
    }
  interim = ph_http_response_build_forward (resp, TRUE);
  ph_http_response_free (resp);
  g_byte_array_remove_range (conn->uin, 0, head_len);
  /* 102 Processing says the origin is still at work. */
  conn->deadline_us
      = g_get_monotonic_time () + (gint64) ph_config_get_response_timeout_ms (conn->config) * 1000;
  ph_pipe_push (conn->u2c, interim->str, interim->len);
  if (!ph_pipe_is_running (conn->u2c))
    ph_pipe_start (conn->u2c, PH_PIPE_FLUSH);
  return conn->state == CONN_EXCHANGE;
}

/* A final response head from the cloud proxy has arrived. */
static void
conn_handle_response (PhProxyConn *conn, PhHttpResponse *resp, gsize head_len)
{
  const guint8 *extra = conn->uin->data + head_len;
  gsize extra_len = conn->uin->len - head_len;
  g_autoptr (GString) head = NULL;
  PhBodyMode mode;

  if (conn->route == PH_ROUTE_DIRECT)
    ; /* an origin's own answer: no session, no proxy credentials in play */
  else if (ph_upstream_save_session (conn->upstream, conn->up),
           ph_upstream_answer_rejects_credentials (conn->req, resp))
    {
      ph_http_response_free (resp);
      ph_upstream_set_auth_rejected (conn->upstream);
      conn_refuse_auth (conn);
      return;
    }
  if (conn->route != PH_ROUTE_DIRECT && !conn->auth_checked
      && ph_upstream_answer_needs_auth_check (conn->req, resp))
    {
      conn_check_auth (conn, resp, head_len);
      return;
    }
  if (ph_http_request_get_kind (conn->req) == PH_HTTP_CONNECT
      && ph_http_response_get_status (resp) >= 200 && ph_http_response_get_status (resp) < 300)
    {
      ph_http_response_free (resp);
      g_byte_array_remove_range (conn->uin, 0, head_len);
      conn_start_tunnel (conn, conn->uin->data, conn->uin->len);
      g_byte_array_set_size (conn->uin, 0);
      return;
    }
  if (ph_http_response_get_status (resp) == 101)
    {
      ph_http_response_free (resp);
      conn_refuse (conn, 502, "upstream-protocol", "the cloud proxy switched protocols");
      return;
    }

  if (conn->original != NULL)
    {
      guint status = ph_http_response_get_status (resp);

      ph_http_response_free (resp);
      conn_answer (conn, status, "refused-by-proxy", NULL);
      return;
    }
  if (conn->socks != PH_SOCKS_NONE)
    {
      /* A refused CONNECT: a SOCKS client gets the code that says why (Squid's X-Squid-Error
       * tells a refused connection from an unreachable host). */
      guint status = ph_http_response_get_status (resp);
      guint8 code = ph_socks5_code_for (
          status, NULL, ph_http_header_get (ph_http_response_get_headers (resp), "X-Squid-Error"));

      ph_http_response_free (resp);
      conn_answer_socks (conn, status, NULL, code);
      return;
    }
  /* A final answer other than a tunnel: it goes to the client as it is. */
  conn->status = ph_http_response_get_status (resp);
  if (!ph_http_response_has_body (resp, ph_http_request_get_method (conn->req))
      || (ph_http_request_get_kind (conn->req) == PH_HTTP_CONNECT
          && ph_http_response_get_status (resp) < 300))
    mode = PH_BODY_NONE;
  else if (ph_http_response_get_chunked (resp))
    mode = PH_BODY_CHUNKED;
  else if (ph_http_response_get_content_length (resp) >= 0)
    mode = PH_BODY_LENGTH;
  else
    mode = PH_BODY_UNTIL_CLOSE;
  conn->resp_keep_alive = mode != PH_BODY_UNTIL_CLOSE && ph_http_response_get_keep_alive (resp);
  conn->keep_alive = conn->keep_alive && conn->resp_keep_alive
                     && ph_http_request_get_kind (conn->req) != PH_HTTP_CONNECT;
  conn->resp = resp;
  head = ph_http_response_build_forward (resp, conn->keep_alive);

  conn->state = CONN_EXCHANGE;
  conn->deadline_us = 0;
  /* Interim responses before it are all out (conn_read_response waits). */
  ph_pipe_clear (conn->u2c);
  conn_u2c_init (conn, conn->up, conn->client, response_pipe_done, conn);
  ph_pipe_set_body (conn->u2c, mode, MAX (ph_http_response_get_content_length (resp), 0));
  ph_pipe_push (conn->u2c, head->str, head->len);
  if (extra_len > 0 && !ph_pipe_push_body (conn->u2c, extra, extra_len))
    {
      conn_refuse (conn, 502, "upstream-protocol", "malformed chunked body from the cloud proxy");
      return;
    }
  g_byte_array_set_size (conn->uin, 0);
  if (ph_http_request_get_kind (conn->req) == PH_HTTP_CONNECT)
    {
      /* A refused CONNECT: after this answer the connection ends. */
      conn->request_sent = TRUE;
      conn->keep_alive = FALSE;
    }
  ph_pipe_start (conn->u2c, PH_PIPE_BODY);
}

/* Whether the request may be sent again after its connection was lost
 * before any answer (RFC 9110 §9.2.2): an idempotent method and no body,
 * since a body already sent is not kept. A CONNECT qualifies too: until
 * the proxy's 200 nothing of the client's but the head was sent. */
static gboolean
conn_request_is_retryable (PhProxyConn *conn)
{
  static const char *const idempotent[]
      = { "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "CONNECT" };
  const char *method = ph_http_request_get_method (conn->req);

  if (ph_http_request_get_content_length (conn->req) > 0 || ph_http_request_get_chunked (conn->req))
    return FALSE;
  for (gsize i = 0; i < G_N_ELEMENTS (idempotent); i++)
    if (strcmp (method, idempotent[i]) == 0)
      return TRUE;
  return FALSE;
}

/* The connection to the proxy ended (or failed) before anything of the
 * answer to this request came. On a reused connection that is the proxy
 * closing it as we wrote: the request goes again on a fresh connection if
 * it may be repeated, once; otherwise the client gets 502, never a
 * guess. */
static void
conn_upstream_lost (PhProxyConn *conn, const GError *error)
{
  gboolean lost_new;

  if (conn->uin->len > 0 || conn->n_interim > 0 || conn->resp != NULL)
    {
      /* Part of an answer came: whatever happened, it is not a close of
       * an idle connection, and nothing is sent twice. */
      conn_refuse_error (conn, error);
      return;
    }
  /* A new connection that closes before it answers is the proxy failing (its TLS end took
   * the connection, what is behind it did not answer): with several proxies, the request
   * moves on to the next, and the client sees one answer. */
  lost_new = !conn->up_reused && conn->route == PH_ROUTE_PROXY && conn->up != NULL
             && ph_upstream_get_n_proxies (conn->upstream) > 1;
  if (lost_new)
    ph_upstream_report_lost (conn->upstream, conn->up);
  if (((conn->up_reused && !conn->fresh_only)
       || (lost_new && conn->failovers < ph_upstream_get_n_proxies (conn->upstream)))
      && conn_request_is_retryable (conn))
    {
      if (lost_new)
        conn->failovers++;
      g_debug ("%s: the %s upstream connection closed before answering %s %s; sending it "
               "again on a fresh one",
               conn->peer, lost_new ? "new" : "reused", ph_http_request_get_method (conn->req),
               conn_target (conn));
      ph_upstream_count_retry (conn->upstream);
      drop_source (&conn->up_wait);
      ph_pipe_clear (conn->c2u);
      ph_pipe_init (conn->c2u, NULL, NULL, NULL, NULL);
      ph_pipe_clear (conn->u2c);
      conn_u2c_init (conn, NULL, NULL, NULL, NULL);
      g_byte_array_set_size (conn->uin, 0);
      g_clear_pointer (&conn->up, ph_stream_free);
      conn->fresh_only = TRUE;
      if (conn->route == PH_ROUTE_DIRECT)
        conn_connect_direct (conn);
      else
        conn_get_upstream (conn);
      return;
    }
  if (conn->up_reused)
    {
      g_autofree char *msg = g_strdup_printf (
          "%s closed a reused connection before answering; %s %s was not sent again since it %s",
          conn->route == PH_ROUTE_DIRECT ? "the origin" : "the cloud proxy",
          ph_http_request_get_method (conn->req), conn_target (conn),
          conn_request_is_retryable (conn) ? "already failed once"
          : (ph_http_request_get_content_length (conn->req) > 0
             || ph_http_request_get_chunked (conn->req))
              ? "has a body that was already sent"
              : "is not idempotent");
      conn_refuse (conn, 502, "upstream-reset", msg);
      return;
    }
  conn_refuse_error (conn, error);
}

/* Reads response heads until a final one: interim ones are passed on in a
 * loop (never by recursion: an origin decides how many come). */
static void
conn_read_response (PhProxyConn *conn)
{
  while (conn->state == CONN_EXCHANGE)
    {
      g_autoptr (GError) error = NULL;
      PhHttpResponse *resp = NULL;
      g_autofree char *reason = NULL;
      gsize head_len = 0;

      switch (ph_ask_read_answer (conn->up, conn->uin, &resp, &head_len, &reason, &error))
        {
          case PH_ASK_ANSWER_HEAD:
            if (ph_http_response_get_status (resp) < 200
                && ph_http_response_get_status (resp) != 101)
              {
                if (!conn_pass_interim (conn, resp, head_len))
                  return;
                continue;
              }
            if (ph_pipe_is_running (conn->u2c))
              {
                /* Interim heads are still going out: the final one
                 * follows them (interim_sent). */
                ph_http_response_free (resp);
                conn->final_waits = TRUE;
                return;
              }
            conn_handle_response (conn, resp, head_len);
            return;
          case PH_ASK_ANSWER_MALFORMED:
            {
              g_autofree char *msg
                  = g_strdup_printf ("the cloud proxy sent a malformed response: %s", reason);
              conn_refuse (conn, 502, "upstream-protocol", msg);
              return;
            }
          case PH_ASK_ANSWER_AGAIN:
            conn->up_wait = ph_stream_wait (conn->up, FALSE, up_readable_cb, conn);
            return;
          case PH_ASK_ANSWER_CLOSED:
            break;
        }
      conn_upstream_lost (conn, error);
      return;
    }
}

/* The exchange starts on conn->up: its answer's state reset, the two pipes set up. */
static void
conn_begin_exchange (PhProxyConn *conn)
{
  conn->state = CONN_EXCHANGE;
  conn->deadline_us = 0; /* response-timeout runs once the request is out */
  conn->n_interim = 0;
  conn->final_waits = FALSE;
  conn->auth_checked = FALSE;
  conn->up_idle_us = 0;
  if (conn->uin == NULL)
    conn->uin = g_byte_array_new ();
  ph_pipe_init (conn->c2u, conn->client, conn->up, request_pipe_done, conn);
  conn_u2c_init (conn, NULL, conn->client, interim_sent, conn);
}

/* Sends the request head (and, for http://, its body) on a verified stream. */
static void
conn_send_request (PhProxyConn *conn)
{
  g_autoptr (GString) head = NULL;

  conn_begin_exchange (conn);

  head = conn->route == PH_ROUTE_DIRECT ? ph_http_request_build_direct (conn->req)
                                        : ph_upstream_build_request (conn->upstream, conn->req);
  if (ph_http_request_get_kind (conn->req) == PH_HTTP_CONNECT)
    {
      ph_pipe_push (conn->c2u, head->str, head->len);
      ph_wipe (head->str, head->len);
      ph_pipe_start (conn->c2u, PH_PIPE_FLUSH);
    }
  else
    {
      PhBodyMode mode = ph_http_request_get_chunked (conn->req)              ? PH_BODY_CHUNKED
                        : ph_http_request_get_content_length (conn->req) > 0 ? PH_BODY_LENGTH
                                                                             : PH_BODY_NONE;
      ph_pipe_set_body (conn->c2u, mode, MAX (ph_http_request_get_content_length (conn->req), 0));
      ph_pipe_set_overflow (conn->c2u, conn->cin); /* pipelined requests stay for later */
      ph_pipe_push (conn->c2u, head->str, head->len);
      ph_wipe (head->str, head->len);
      if (conn->cin->len > 0)
        {
          g_autoptr (GByteArray) ahead = g_byte_array_new ();
          g_byte_array_append (ahead, conn->cin->data, conn->cin->len);
          g_byte_array_set_size (conn->cin, 0);
          if (!ph_pipe_push_body (conn->c2u, ahead->data, ahead->len))
            {
              conn_refuse (conn, 400, "bad-request", "malformed chunked request body");
              return;
            }
        }
      ph_pipe_start (conn->c2u, PH_PIPE_BODY);
    }
  if (conn->state == CONN_EXCHANGE)
    conn_read_response (conn);
}

static void
upstream_ready (PhStream *stream, GError *error, gpointer data)
{
  PhProxyConn *conn = data;

  if (conn->state != CONN_UPSTREAM)
    {
      g_clear_pointer (&stream, ph_stream_free);
      g_clear_error (&error);
      ph_proxy_conn_unref (conn);
      return;
    }
  if (stream == NULL)
    {
      if (conn_may_go_direct (conn, error))
        {
          g_message ("%s: %s; %s goes directly ([route] when-unreachable=direct)", conn->peer,
                     error->message, conn_target (conn));
          conn_connect_direct (conn);
        }
      else
        conn_refuse_error (conn, error);
      g_error_free (error);
      ph_proxy_conn_unref (conn);
      return;
    }
  conn->up = stream;
  /* An exchange on the proxy's HTTP/2 connection is a new stream of a connection in use: lost
   * before its answer, a request that may be repeated goes again as on a reused connection. */
  conn->up_h2 = ph_upstream_stream_is_h2 (stream);
  conn->up_reused = conn->up_reused || conn->up_h2;
  conn_send_request (conn);
  ph_proxy_conn_unref (conn);
}

/* A CONNECT asked for over HTTP/2 ([upstream] http2): @resp is the proxy's answer on an HTTP/2
 * stream, handled as an HTTP/1.1 answer is (the same credential rules); without it, @stream is
 * an HTTP/1.1 connection and the CONNECT head goes on it as ever. */
static void
tunnel_ready (PhStream *stream, PhHttpResponse *resp, GError *error, gpointer data)
{
  PhProxyConn *conn = data;

  if (resp == NULL)
    {
      upstream_ready (stream, error, data);
      return;
    }
  if (conn->state != CONN_UPSTREAM)
    {
      ph_stream_free (stream);
      ph_http_response_free (resp);
      ph_proxy_conn_unref (conn);
      return;
    }
  conn->up = stream;
  conn->up_h2 = TRUE;
  /* The answer came whole from the stream's head: nothing of an earlier one is read on. */
  if (conn->uin != NULL)
    g_byte_array_set_size (conn->uin, 0);
  conn_begin_exchange (conn);
  conn_handle_response (conn, resp, 0);
  ph_proxy_conn_unref (conn);
}

/* Whether a request the cloud proxy could not take goes directly instead: under
 * when-unreachable=direct, and only when the proxy failed at TCP or TLS. A pin mismatch, a
 * certificate that is not trusted and rejected credentials are not an unreachable proxy: they
 * may be an attacker in the way, and never send anything around the tunnel. */
static gboolean
conn_may_go_direct (PhProxyConn *conn, const GError *error)
{
  return ph_config_get_when_unreachable (conn->config) == PH_UNREACHABLE_DIRECT
         && conn->route == PH_ROUTE_PROXY
         && ph_router_get_fallback (conn->router) != PH_ROUTE_FALLBACK_PORTAL_BLOCK
         && ph_upstream_error_is_unreachable (error);
}

/* "host:port" of the request's target, "[v6]:port" for IPv6. */
static char *
conn_host_port (PhProxyConn *conn)
{
  const char *host = ph_http_request_get_host (conn->req);

  return g_strdup_printf (strchr (host, ':') != NULL ? "[%s]:%u" : "%s:%u", host,
                          ph_http_request_get_port (conn->req));
}

static void
direct_connected (GObject *source, GAsyncResult *result, gpointer data)
{
  PhProxyConn *conn = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketConnection) sc
      = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);

  if (conn->state != CONN_UPSTREAM)
    {
      ph_proxy_conn_unref (conn);
      return;
    }
  if (sc == NULL)
    {
      g_autofree char *msg = g_strdup_printf ("cannot connect directly to %s: %s",
                                              conn->direct_target, error->message);
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        conn_refuse (conn, 504, "direct-timeout", msg);
      else
        conn_refuse (conn, 502, "direct-unreachable", msg);
      ph_proxy_conn_unref (conn);
      return;
    }
  /* The timeout was the connect's; a socket with one would wake its waits for nothing. */
  g_socket_set_timeout (g_socket_connection_get_socket (sc), 0);
  ph_socket_set_nodelay (g_socket_connection_get_socket (sc));
  conn->up = ph_stream_new (sc, NULL);
  conn->up_reused = FALSE;
  if (ph_http_request_get_kind (conn->req) == PH_HTTP_CONNECT)
    conn_start_tunnel (conn, NULL, 0);
  else
    conn_send_request (conn);
  ph_proxy_conn_unref (conn);
}

/* Connects to the request's target itself: a name is resolved here, by the system's resolver,
 * and each of its addresses tried in turn. */
static void
conn_connect_direct (PhProxyConn *conn)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  /* A transparent client's own destination: the address it chose, not the name's again. */
  g_autoptr (GSocketConnectable) address
      = conn->original != NULL ? G_SOCKET_CONNECTABLE (g_object_ref (conn->original))
                               : g_network_address_new (ph_http_request_get_host (conn->req),
                                                        ph_http_request_get_port (conn->req));

  conn->route = PH_ROUTE_DIRECT;
  conn->route_name = "direct";
  g_clear_pointer (&conn->up, ph_stream_free);
  g_free (conn->direct_target);
  conn->direct_target = conn_host_port (conn);
  g_socket_client_set_enable_proxy (client, FALSE);
  ph_netfilter_mark_client (client, ph_config_get_mark (conn->config));
  g_socket_client_set_timeout (
      client, MAX (1u, (ph_config_get_connect_timeout_ms (conn->config) + 999) / 1000));
  conn->state = CONN_UPSTREAM;
  conn->deadline_us = 0; /* the connect has its own */
  g_socket_client_connect_async (client, address, conn->cancellable, direct_connected,
                                 ph_proxy_conn_ref (conn));
}

/* GET /proxy.pac or /wpad.dat asked of the listener: the PAC, naming the address the client
 * reached the agent on (in gateway mode, the one the other machines see). */
static gboolean
conn_serve_pac (PhProxyConn *conn)
{
  const char *method = ph_http_request_get_method (conn->req);
  const char *path = ph_http_request_get_target (conn->req);
  g_autofree char *pac = NULL;
  g_autoptr (GString) resp = NULL;
  gsize path_len = strcspn (path, "?");

  if ((strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0)
      || !((path_len == 10 && strncmp (path, "/proxy.pac", 10) == 0)
           || (path_len == 9 && strncmp (path, "/wpad.dat", 9) == 0)))
    return FALSE;
  pac = ph_pac_build (conn->config, conn->local);
  resp = g_string_new (NULL);
  g_string_append_printf (resp,
                          "HTTP/1.1 200 OK\r\nContent-Type: " PH_PAC_CONTENT_TYPE
                          "\r\nContent-Length: %zu\r\nCache-Control: no-cache\r\n"
                          "Connection: close\r\n\r\n",
                          strlen (pac));
  if (strcmp (method, "HEAD") != 0)
    g_string_append (resp, pac);
  conn->route_name = "pac";
  conn_answer (conn, 200, NULL, resp);
  return TRUE;
}

static void conn_route (PhProxyConn *conn, GList *resolved);

static void
route_resolved (GObject *source, GAsyncResult *result, gpointer data)
{
  PhProxyConn *conn = data;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, NULL);

  /* A name the resolver does not know is routed by name: to the cloud proxy. */
  if (conn->state == CONN_UPSTREAM)
    conn_route (conn, addresses);
  g_resolver_free_addresses (addresses);
  ph_proxy_conn_unref (conn);
}

static void
conn_dispatch (PhProxyConn *conn)
{
  PhHttpRequest *req = conn->req;

  if (ph_http_request_get_kind (req) == PH_HTTP_ORIGIN)
    {
      if (!conn_serve_pac (conn))
        conn_refuse (conn, 405, "method-not-allowed",
                     "this is a proxy: send absolute-form requests (http://host/path) or "
                     "CONNECT; GET /proxy.pac is its PAC");
      return;
    }
  if (ph_router_wants_addresses (conn->router, ph_http_request_get_host (req)))
    {
      /* [route] resolve-for-cidr=true, and only a CIDR rule can decide this name. */
      g_autoptr (GResolver) resolver = g_resolver_get_default ();

      conn->state = CONN_UPSTREAM;
      conn->deadline_us = 0; /* the system resolver has its own timeout */
      g_resolver_lookup_by_name_async (resolver, ph_http_request_get_host (req), conn->cancellable,
                                       route_resolved, ph_proxy_conn_ref (conn));
      return;
    }
  conn_route (conn, NULL);
}

/* The route decides what carries the request before anything is taken for it. */
static void
conn_route (PhProxyConn *conn, GList *resolved)
{
  PhHttpRequest *req = conn->req;
  g_autoptr (PhRoute) route = NULL;
  g_autofree char *target = NULL;

  route = ph_router_route (
      conn->router, ph_http_request_get_kind (req) == PH_HTTP_ABSOLUTE ? "http" : NULL,
      ph_http_request_get_host (req), ph_http_request_get_port (req), resolved);
  conn->route = ph_route_get_kind (route);
  conn->route_name = ph_route_kind_to_string (conn->route);
  target = conn_host_port (conn);
  /* What this client kept from its last request serves this one only if it goes the same
   * way: its cloud connection for a cloud request, its direct one to the same origin. */
  if (conn->up != NULL
      && (conn->route != PH_ROUTE_DIRECT ? conn->direct_target != NULL
                                         : g_strcmp0 (conn->direct_target, target) != 0))
    g_clear_pointer (&conn->up, ph_stream_free);
  if (conn->up == NULL)
    g_clear_pointer (&conn->direct_target, g_free);
  switch (conn->route)
    {
      case PH_ROUTE_BLOCK:
        {
          g_autofree char *why = ph_route_describe (route);
          g_autofree char *msg = g_strdup_printf ("Pinhole does not carry requests for %s: %s",
                                                  ph_http_request_get_host (req), why);
          conn_refuse (conn, 403, "blocked", msg);
          return;
        }
      case PH_ROUTE_DIRECT:
      case PH_ROUTE_PROXY:
        break;
    }
  if (conn->route == PH_ROUTE_PROXY && ph_upstream_get_auth_rejected (conn->upstream))
    {
      conn_refuse_auth (conn);
      return;
    }
  if (!conn->holds_tunnel)
    {
      if (!conn->owner->acquire_tunnel (conn->owner_data))
        {
          conn_refuse (conn, 503, "too-many-tunnels",
                       "too many tunnels open at once; try again shortly");
          return;
        }
      conn->holds_tunnel = TRUE;
    }
  conn->keep_alive
      = ph_http_request_get_keep_alive (req) && ph_http_request_get_kind (req) == PH_HTTP_ABSOLUTE;
  if (conn->route == PH_ROUTE_DIRECT)
    {
      if (conn->up != NULL && ph_stream_is_idle_open (conn->up))
        {
          conn->up_reused = TRUE;
          conn_send_request (conn);
        }
      else
        conn_connect_direct (conn);
      return;
    }
  conn_get_upstream (conn);
}

/* The connection this client keeps (bound to it), else one from the
 * shared idle pool, else a warm one, else a new one. A request sent again
 * takes only a warm or new one. */
static void
conn_get_upstream (PhProxyConn *conn)
{
  /* A kept-alive connection the proxy has closed meanwhile (Apache after
   * 5 s idle, nghttpx after 60 s, Squid after 2 min) would swallow the
   * request: a body cannot be sent again, so look before writing. */
  if (conn->up != NULL && !ph_stream_is_idle_open (conn->up))
    {
      g_debug ("%s: the kept-alive upstream connection was closed; taking another", conn->peer);
      g_clear_pointer (&conn->up, ph_stream_free);
    }
  conn->up_reused = conn->up != NULL;
  conn->up_h2 = FALSE;
  if (conn->up == NULL && ph_upstream_wants_h2 (conn->upstream))
    {
      /* A tunnel or a plain request: a stream of the proxy's HTTP/2 connection when it speaks
       * h2 (a kept-alive HTTP/1.1 connection of this client's goes first, above). */
      conn->state = CONN_UPSTREAM;
      conn->deadline_us = 0;
      ph_upstream_open_tunnel_async (conn->upstream, conn->req, conn->cancellable, tunnel_ready,
                                     ph_proxy_conn_ref (conn));
      return;
    }
  if (conn->up == NULL && !conn->fresh_only)
    {
      conn->up = ph_upstream_take_idle (conn->upstream);
      conn->up_reused = conn->up != NULL;
    }
  if (conn->up == NULL)
    conn->up = ph_upstream_take_warm (conn->upstream);
  if (conn->up != NULL)
    {
      conn_send_request (conn);
      return;
    }
  conn->state = CONN_UPSTREAM;
  conn->deadline_us = 0; /* connect and handshake have their own */
  ph_upstream_connect_async (conn->upstream, conn->cancellable, upstream_ready,
                             ph_proxy_conn_ref (conn));
}

static void
socks_method_sent (PhPipe *pipe, GError *error, gpointer data)
{
  PhProxyConn *conn = data;
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);

  if (error != NULL)
    {
      g_error_free (error);
      conn_log (conn, "client-closed");
      ph_proxy_conn_close (conn);
      return;
    }
  if (conn->state != CONN_HEAD)
    return;
  ph_pipe_clear (conn->u2c);
  conn_u2c_init (conn, NULL, NULL, NULL, NULL);
  conn_read_head (conn);
}

/* A SOCKS5 reply that the client answers (the method, the sign-in's), then its next bytes. */
static void
socks_send_step (PhProxyConn *conn, const guint8 *reply, gsize len)
{
  conn_u2c_init (conn, NULL, conn->client, socks_method_sent, conn);
  ph_pipe_push (conn->u2c, reply, len);
  ph_pipe_start (conn->u2c, PH_PIPE_FLUSH);
}

/* RFC 1929's user name and password, checked against [listener] socks-users and the passwords
 * the service stored for them. A refusal is the failure status, then the end: RFC 1929 has the
 * server close after it. Neither the password nor the name goes to a log. */
static gboolean
conn_read_socks_auth (PhProxyConn *conn)
{
  PhSocks5Credentials credentials;
  guint8 reply[PH_SOCKS5_AUTH_REPLY_LEN];
  gsize consumed = 0;
  gboolean ok = FALSE;
  PhSocksResult r = ph_socks5_parse_auth (conn->cin->data, conn->cin->len, &consumed, &credentials);

  if (r == PH_SOCKS_MORE)
    return FALSE;
  if (r == PH_SOCKS_DONE)
    {
      /* A name with a NUL in it is no listed name, whatever comes before the NUL. */
      const char *expected = strlen (credentials.username) == credentials.username_len
                                 ? ph_config_get_socks_password (conn->config, credentials.username)
                                 : NULL;
      ok = ph_socks5_check_password (expected, &credentials);
      ph_wipe (conn->cin->data, consumed);
      g_byte_array_remove_range (conn->cin, 0, consumed);
    }
  ph_socks5_credentials_wipe (&credentials);
  ph_socks5_build_auth_reply (ok, reply);
  if (!ok)
    {
      ph_wipe (conn->cin->data, conn->cin->len);
      g_byte_array_set_size (conn->cin, 0);
      conn_answer_bytes (conn, 407, "socks-auth", reply, sizeof reply);
      return TRUE;
    }
  conn->socks_signing_in = FALSE;
  socks_send_step (conn, reply, sizeof reply);
  return TRUE;
}

/* A SOCKS client's greeting, sign-in and request, from what it sent so far. TRUE when the head
 * is dealt with (dispatched, refused, or a reply of the greeting or the sign-in going out), FALSE
 * to read more. */
static gboolean
conn_read_socks (PhProxyConn *conn)
{
  g_autofree char *head = NULL;
  g_autofree char *reason = NULL;
  PhHttpRequest *req = NULL;
  PhSocksRequest request;
  PhSocksResult r;
  gsize consumed = 0;
  guint status = 0;
  guint8 code = 0;

  if (conn->socks == PH_SOCKS5 && !conn->socks_greeted)
    {
      const char *const *users = ph_config_get_socks_users (conn->config);
      PhSocks5Offers offers = 0;
      guint8 method = PH_SOCKS5_NO_ACCEPTABLE_METHODS;
      guint8 reply[2];

      r = ph_socks5_parse_greeting (conn->cin->data, conn->cin->len, &consumed, &offers);
      if (r == PH_SOCKS_MORE)
        return FALSE;
      g_byte_array_remove_range (conn->cin, 0, consumed);
      if (r == PH_SOCKS_DONE)
        method
            = ph_socks5_choose_method (offers, conn->loopback, users != NULL && users[0] != NULL);
      ph_socks5_build_method_reply (method, reply);
      if (method == PH_SOCKS5_NO_ACCEPTABLE_METHODS)
        {
          /* Nothing it offers will do; the client hears 0xFF and the end. */
          conn_answer_bytes (conn, 407, "socks-no-method", reply, sizeof reply);
          return TRUE;
        }
      conn->socks_greeted = TRUE;
      conn->socks_signing_in = method == PH_SOCKS5_USERPASS;
      socks_send_step (conn, reply, sizeof reply);
      return TRUE;
    }
  if (conn->socks == PH_SOCKS5 && conn->socks_signing_in)
    return conn_read_socks_auth (conn);
  r = ph_socks_parse_request (conn->socks, conn->cin->data, conn->cin->len, &consumed, &request,
                              &code);
  if (r == PH_SOCKS_MORE)
    return FALSE;
  if (r == PH_SOCKS_ERROR)
    {
      gboolean socks4_command
          = conn->socks == PH_SOCKS4 && conn->cin->len >= 2 && conn->cin->data[1] != 1;

      conn_answer_socks (conn, 400,
                         code == PH_SOCKS5_COMMAND_NOT_SUPPORTED || socks4_command ? "socks-command"
                         : code == PH_SOCKS5_ATYP_NOT_SUPPORTED ? "socks-address-type"
                                                                : "bad-request",
                         code);
      return TRUE;
    }
  g_byte_array_remove_range (conn->cin, 0, consumed);
  if (conn->socks == PH_SOCKS4)
    {
      const char *const *users = ph_config_get_socks_users (conn->config);

      /* SOCKS4 has no password to check: where a LAN client must sign in, it is refused. */
      if (ph_socks_must_sign_in (conn->loopback, users != NULL && users[0] != NULL))
        {
          conn_answer_socks (conn, 407, "socks-auth", PH_SOCKS4_REJECTED);
          return TRUE;
        }
    }
  /* The same request as an HTTP CONNECT to host:port, a name left unresolved. */
  head = ph_socks_request_to_connect (&request);
  if (ph_http_request_parse (head, strlen (head), &ph_http_default_limits, &req, &consumed, &status,
                             &reason)
      != PH_HTTP_PARSE_DONE)
    {
      g_clear_pointer (&req, ph_http_request_free);
      conn_answer_socks (conn, 400, "bad-request", PH_SOCKS5_GENERAL_FAILURE);
      return TRUE;
    }
  conn->req = req;
  conn_dispatch (conn);
  return TRUE;
}

/* A transparent client's first bytes, so far: its name from a TLS ClientHello's SNI or an HTTP
 * head's Host, and then the same request as an HTTP CONNECT to name:port (ip:port without one).
 * The bytes stay in cin, to go through untouched. FALSE to read more; @force decides with what
 * there is (the wait is over, or the client stopped sending). */
static gboolean
conn_read_transparent (PhProxyConn *conn, gboolean force)
{
  g_autofree char *name = NULL;
  g_autofree char *head = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *ip = NULL;
  PhSniffKind kind = PH_SNIFF_NONE;
  PhHttpRequest *req = NULL;
  gsize consumed = 0;
  guint status = 0;
  guint port = g_inet_socket_address_get_port (conn->original);

  if (conn->cin->len > 0
      && ph_sniff (conn->cin->data, conn->cin->len, &name, &kind) == PH_SNIFF_NEED_MORE)
    {
      if (!force && conn->cin->len < PH_SNIFF_MAX_BYTES)
        return FALSE;
      g_clear_pointer (&name, g_free);
      kind = PH_SNIFF_NONE;
    }
  if (name != NULL)
    {
      head = g_strdup_printf ("CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n\r\n", name, port, name,
                              port);
      if (ph_http_request_parse (head, strlen (head), &ph_http_default_limits, &req, &consumed,
                                 &status, &reason)
          != PH_HTTP_PARSE_DONE)
        {
          /* A name no CONNECT can carry: the address then. */
          g_clear_pointer (&req, ph_http_request_free);
          g_clear_pointer (&head, g_free);
        }
    }
  if (req == NULL)
    {
      kind = PH_SNIFF_NONE;
      head = g_strdup_printf ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", conn->original_text,
                              conn->original_text);
      if (ph_http_request_parse (head, strlen (head), &ph_http_default_limits, &req, &consumed,
                                 &status, &reason)
          != PH_HTTP_PARSE_DONE)
        {
          g_clear_pointer (&req, ph_http_request_free);
          conn_answer (conn, 400, "bad-request", NULL);
          return TRUE;
        }
    }
  conn->learned = kind;
  conn->req = req;
  conn->sniff_deadline_us = 0;
  conn_dispatch (conn);
  return TRUE;
}

static void
conn_read_head (PhProxyConn *conn)
{
  const PhHttpLimits *limits = &ph_http_default_limits;

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *reason = NULL;
      PhHttpRequest *req = NULL;
      gsize consumed = 0;
      guint status = 0;
      guint8 buf[8192];
      gsize n = 0;
      PhIoStatus st;

      if (conn->cin->len > 0 && !conn->sniffed)
        {
          conn->sniffed = TRUE;
          conn->socks = ph_socks_detect (conn->cin->data[0]);
        }
      if (conn->original != NULL)
        {
          if (conn->cin->len > 0 && conn_read_transparent (conn, FALSE))
            return;
        }
      else if (conn->cin->len > 0 && conn->socks != PH_SOCKS_NONE)
        {
          if (conn_read_socks (conn))
            return;
        }
      else if (conn->cin->len > 0)
        {
          PhHttpParseResult pr
              = ph_http_request_parse ((const char *) conn->cin->data, conn->cin->len, limits, &req,
                                       &consumed, &status, &reason);
          if (pr == PH_HTTP_PARSE_ERROR)
            {
              const char *kind = status == 414   ? "uri-too-long"
                                 : status == 431 ? "headers-too-large"
                                                 : "bad-request";
              conn_refuse (conn, status, kind, reason);
              return;
            }
          if (pr == PH_HTTP_PARSE_DONE)
            {
              g_byte_array_remove_range (conn->cin, 0, consumed);
              conn->req = req;
              conn_dispatch (conn);
              return;
            }
        }
      st = ph_stream_read (conn->client, buf, sizeof buf, &n, &error);
      if (st == PH_IO_OK)
        {
          if (conn->cin->len == 0)
            {
              /* The head timer starts with the head's first byte. */
              conn->started_us = g_get_monotonic_time ();
              conn->deadline_us
                  = conn->started_us + (gint64) ph_config_get_head_timeout_ms (conn->config) * 1000;
            }
          g_byte_array_append (conn->cin, buf, n);
          continue;
        }
      if (st == PH_IO_AGAIN)
        {
          conn->client_wait = ph_stream_wait (conn->client, FALSE, client_readable_cb, conn);
          return;
        }
      /* A transparent client that sent something and then shut its side: what it sent goes. */
      if (conn->original != NULL && conn->cin->len > 0 && conn_read_transparent (conn, TRUE))
        return;
      if (conn->cin->len > 0 || conn->socks != PH_SOCKS_NONE)
        {
          g_debug ("%s: closed in the middle of a request head", conn->peer);
          conn_log (conn, "client-closed");
        }
      ph_proxy_conn_close (conn);
      return;
    }
}

char *
ph_peer_to_string (GSocketAddress *address)
{
  GInetSocketAddress *isa;
  g_autofree char *ip = NULL;

  if (!G_IS_INET_SOCKET_ADDRESS (address))
    return g_strdup ("local");
  isa = G_INET_SOCKET_ADDRESS (address);
  ip = g_inet_address_to_string (g_inet_socket_address_get_address (isa));
  return g_strdup_printf (strchr (ip, ':') ? "[%s]:%u" : "%s:%u", ip,
                          g_inet_socket_address_get_port (isa));
}

gboolean
ph_peer_is_loopback (GSocketAddress *address)
{
  GInetAddress *ip;
  const guint8 *bytes;

  if (address == NULL)
    return FALSE;
  if (g_socket_address_get_family (address) == G_SOCKET_FAMILY_UNIX)
    return TRUE;
  if (!G_IS_INET_SOCKET_ADDRESS (address))
    return FALSE;
  ip = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address));
  if (g_inet_address_get_is_loopback (ip))
    return TRUE;
  /* ::ffff:127.0.0.1, a loopback IPv4 client of a dual-stack [::] listener. */
  if (g_inet_address_get_family (ip) != G_SOCKET_FAMILY_IPV6)
    return FALSE;
  bytes = g_inet_address_to_bytes (ip);
  for (guint i = 0; i < 10; i++)
    if (bytes[i] != 0)
      return FALSE;
  return bytes[10] == 0xff && bytes[11] == 0xff && bytes[12] == 127;
}

PhProxyConn *
ph_proxy_conn_new (GSocketConnection *connection, PhConfig *config, PhRouter *router,
                   PhUpstream *upstream, const PhProxyConnOwner *owner, gpointer owner_data)
{
  PhProxyConn *conn = g_atomic_rc_box_new0 (PhProxyConn);
  g_autoptr (GSocketAddress) remote = g_socket_connection_get_remote_address (connection, NULL);

  conn->owner = owner;
  conn->owner_data = owner_data;
  conn->config = ph_config_ref (config);
  conn->router = ph_router_ref (router);
  conn->upstream = ph_upstream_ref (upstream);
  conn->client = ph_stream_new (connection, NULL);
  conn->cancellable = g_cancellable_new ();
  conn->cin = g_byte_array_new ();
  conn->state = CONN_HEAD;
  conn->started_us = g_get_monotonic_time ();
  conn->opened_us = conn->started_us;
  /* Until a first byte, an open connection is idle, not a slow head. */
  conn->deadline_us
      = conn->started_us + (gint64) ph_config_get_head_timeout_ms (conn->config) * 1000;
  conn->c2u = ph_pipe_new ();
  conn->u2c = ph_pipe_new ();
  conn->peer = ph_peer_to_string (remote);
  conn->loopback = ph_peer_is_loopback (remote);
  {
    g_autoptr (GSocketAddress) local = g_socket_connection_get_local_address (connection, NULL);
    conn->local = local != NULL ? ph_peer_to_string (local) : g_strdup ("127.0.0.1:3128");
  }
  ph_socket_set_nodelay (ph_stream_get_socket (conn->client));
  return conn;
}

void
ph_proxy_conn_set_transparent (PhProxyConn *conn, GInetSocketAddress *original)
{
  g_set_object (&conn->original, original);
  g_free (conn->original_text);
  conn->original_text = ph_peer_to_string (G_SOCKET_ADDRESS (original));
  conn->sniffed = TRUE; /* not a SOCKS client: whatever its first byte */
  conn->sniff_deadline_us = g_get_monotonic_time () + SNIFF_WAIT_MS * 1000;
  /* No head timeout: the sniff wait decides, then the tunnel's idle timeout. */
  conn->deadline_us = 0;
}

void
ph_proxy_conn_start (PhProxyConn *conn)
{
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);

  conn_read_head (conn);
}

gint64
ph_proxy_conn_get_idle_upstream_since (PhProxyConn *conn)
{
  if (conn->state != CONN_HEAD || conn->up == NULL || !conn->holds_tunnel)
    return 0;
  return conn->up_idle_us;
}

void
ph_proxy_conn_drop_idle_upstream (PhProxyConn *conn)
{
  g_return_if_fail (conn->state == CONN_HEAD);
  g_debug ("%s: giving up its idle upstream connection for another client", conn->peer);
  g_clear_pointer (&conn->up, ph_stream_free);
  conn_release_tunnel (conn);
}

void
ph_proxy_conn_check_timeouts (PhProxyConn *conn, gint64 now)
{
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);
  guint64 bytes;

  switch (conn->state)
    {
      case CONN_HEAD:
        if (conn->original != NULL && conn->sniff_deadline_us != 0 && now > conn->sniff_deadline_us)
          {
            drop_source (&conn->client_wait);
            conn_read_transparent (conn, TRUE);
            return;
          }
        if (conn->deadline_us != 0 && now > conn->deadline_us)
          {
            if (conn->cin->len > 0 || conn->socks != PH_SOCKS_NONE)
              conn_refuse (conn, 408, "head-timeout", "the request head did not arrive in time");
            else
              ph_proxy_conn_close (conn);
          }
        return;
      case CONN_EXCHANGE:
        if (conn->deadline_us != 0 && now > conn->deadline_us && !ph_pipe_is_running (conn->u2c))
          {
            g_autoptr (GError) error
                = g_error_new (PH_ERROR, PH_ERROR_TIMEOUT, "%s did not answer within %.1fs",
                               conn->route == PH_ROUTE_DIRECT ? "the origin" : "the cloud proxy",
                               ph_config_get_response_timeout_ms (conn->config) / 1000.0);
            conn_refuse_error (conn, error);
            return;
          }
        G_GNUC_FALLTHROUGH;
      case CONN_TUNNEL:
        bytes = conn_bytes (conn);
        if (bytes != conn->seen_bytes || conn->seen_us == 0)
          {
            conn->seen_bytes = bytes;
            conn->seen_us = now;
          }
        else if (now - conn->seen_us > (gint64) ph_config_get_idle_timeout_ms (conn->config) * 1000)
          {
            g_debug ("%s: idle for %us, closing", conn->peer,
                     ph_config_get_idle_timeout_ms (conn->config) / 1000);
            conn_log (conn, "idle-timeout");
            ph_proxy_conn_close (conn);
          }
        return;
      case CONN_CLOSING:
        if (now > conn->deadline_us)
          ph_proxy_conn_close (conn);
        return;
      case CONN_UPSTREAM:
      case CONN_CLOSED:
        return;
    }
}

gboolean
ph_proxy_conn_close_if_idle (PhProxyConn *conn)
{
  g_autoptr (PhProxyConn) hold = ph_proxy_conn_ref (conn);

  if (conn->state != CONN_HEAD || conn->cin->len > 0)
    return FALSE;
  ph_proxy_conn_close (conn);
  return TRUE;
}
