/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-upstream.h: the cloud proxies of upstream.host: verified TLS connections to them (a few
 * kept warm so a handshake is rarely on a request's path), which one a connection goes to
 * (failover=priority|round-robin, each proxy's health, a background probe of the ones that are
 * down), the exchange with a proxy (the CONNECT or absolute-form request with its
 * Proxy-Authorization, and the answer), and what they last said. */
#pragma once

#include <gio/gio.h>

#include "ph-config.h"
#include "ph-ask.h"
#include "ph-http.h"
#include "ph-proxy.h"
#include "ph-stream.h"
#include "ph-tls.h"

G_BEGIN_DECLS

typedef struct _PhUpstream PhUpstream;

PhUpstream *ph_upstream_new (PhConfig *config, GError **error);
PhUpstream *ph_upstream_ref (PhUpstream *up);
void ph_upstream_unref (PhUpstream *up);
/* Stops keeping connections warm and closes the idle ones. */
void ph_upstream_shutdown (PhUpstream *up);

/* A verified connection from the warm pool, or NULL. The pool's size
 * follows the demand for new connections, with `warm` as its ceiling. */
PhStream *ph_upstream_take_warm (PhUpstream *up);
/* How many warm connections it keeps now (@now_us: g_get_monotonic_time()). */
guint ph_upstream_get_warm_target (PhUpstream *up, gint64 now_us);

/* The idle pool, shared by every client: a connection whose plain
 * exchange left it open is given back (TRUE if kept: idle-connections,
 * still open; else it is closed), and taken again by any request before
 * a warm one. Entries live idle-lifetime at most and leave the moment the
 * proxy closes them. Each counts against max-tunnels (the listener drops
 * the oldest when a tunnel needs its slot). */
gboolean ph_upstream_put_idle (PhUpstream *up, PhStream *stream);
PhStream *ph_upstream_take_idle (PhUpstream *up);
guint ph_upstream_get_n_idle (PhUpstream *up);
gboolean ph_upstream_drop_oldest_idle (PhUpstream *up);
/* Closes every idle connection (a reload; the network changed). */
void ph_upstream_drop_idle (PhUpstream *up);
/* The network changed, or the machine resumed (@why says which, for the log): the idle and
 * warm connections and what is known of the proxies' health were made over a network that may
 * be gone, so they are dropped, the names are resolved again and the pool refills. Open tunnels
 * are left alone: one whose socket still works goes on. */
void ph_upstream_network_changed (PhUpstream *up, const char *why);
/* About once a second: expires idle entries, trims warm ones past a burst. */
void ph_upstream_sweep (PhUpstream *up, gint64 now_us);

/* Counters since the upstream was made (a table without behaviour). */
typedef struct
{
  guint64 connects;     /* verified connections made (warm pool and requests) */
  guint64 warm_taken;   /* requests that found a warm connection */
  guint64 warm_missed;  /* requests that found none and waited for a connect */
  guint64 idle_reused;  /* requests that took an idle connection */
  guint64 idle_closed;  /* idle connections the proxy closed */
  guint64 idle_expired; /* idle connections past idle-lifetime */
  guint64 retries;      /* requests sent again after a reused connection closed */
  guint64 handshakes_full, handshakes_resumed;
  guint64 h2_connections; /* HTTP/2 connections made */
  guint64 h2_streams;     /* tunnels and plain requests opened as HTTP/2 streams */
  guint64 h2_retried;     /* streams sent again (refused, or their connection lost unanswered) */
  guint n_idle, n_warm;   /* now */
  guint n_h2_sessions, n_h2_streams; /* now: HTTP/2 connections open, streams open on them */
} PhUpstreamStats;
void ph_upstream_get_stats (PhUpstream *up, PhUpstreamStats *stats);
void ph_upstream_count_retry (PhUpstream *up);

typedef void (*PhUpstreamFunc) (PhStream *stream, GError *error, gpointer user_data);
/* Connects (happy eyeballs), handshakes and verifies a new connection. */
void ph_upstream_connect_async (PhUpstream *up, GCancellable *cancellable, PhUpstreamFunc func,
                                gpointer user_data);

/* ---- tunnels and plain requests over HTTP/2 ([upstream] http2) ---- */

/* Whether tunnels and plain requests go through ph_upstream_open_tunnel_async: http2=auto or
 * require with libnghttp2, require without (which then fails each tunnel). */
gboolean ph_upstream_wants_h2 (PhUpstream *up);
/* Whether @stream is a stream of a proxy's HTTP/2 connection (a tunnel's or an exchange's). */
gboolean ph_upstream_stream_is_h2 (PhStream *stream);
/* @stream and @resp: a CONNECT stream of the proxy's HTTP/2 connection (ph_h2_stream_to_stream) and
 * the proxy's final answer to it (a head only: any body is the stream's bytes, its end the
 * stream's); 2xx is the tunnel. @stream without @resp: a verified HTTP/1.1 connection, as
 * ph_upstream_connect_async gives (the proxy did not choose h2): the CONNECT head goes on it as
 * today. NULL with @error: as ph_upstream_connect_async's. */
typedef void (*PhUpstreamTunnelFunc) (PhStream *stream, PhHttpResponse *resp, GError *error,
                                      gpointer user_data);
/* The CONNECT of @req (its authority) as a stream of the chosen proxy's HTTP/2 connection
 * while it takes more streams, else on a new connection that offers "h2","http/1.1" by ALPN
 * (verified as every connection is before any byte is sent; h2 makes it the proxy's one
 * HTTP/2 connection; tunnels asked for meanwhile wait for it). Proxy-Authorization is the same
 * credential ph_upstream_build_request writes. A stream the proxy did not take (GOAWAY,
 * REFUSED_STREAM) or that lost its connection before the answer is tried again, three times at
 * most; an answer later than [upstream] response-timeout fails with PH_ERROR_TIMEOUT and PINGs
 * the connection (no answer in 5 s: taken as lost). http2=require fails when the proxy picks
 * HTTP/1.1. For a plain (absolute-form) @req, @stream is, on h2, an exchange
 * (ph-h2-exchange.h) that takes the HTTP/1.1 request as ph_upstream_build_request writes it and
 * gives back the answer in HTTP/1.1, @resp NULL, as for an HTTP/1.1 connection. */
void ph_upstream_open_tunnel_async (PhUpstream *up, const PhHttpRequest *req,
                                    GCancellable *cancellable, PhUpstreamTunnelFunc func,
                                    gpointer user_data);

/* ---- the exchange: the one place the proxy's request heads are written
 * (and so the one writer of Proxy-Authorization) and its answers read ---- */

/* The head that asks the proxy for @req: "CONNECT host:port" for a tunnel,
 * the request in absolute form (hop-by-hop fields dropped) for http://.
 * Proxy-Authorization ("Basic …") goes with it when a username is
 * configured and the proxy has not rejected these credentials (they are
 * not sent again). The head holds the credential: ph_wipe() it once sent. */
GString *ph_upstream_build_request (PhUpstream *up, const PhHttpRequest *req);

/* Whether @resp, the final answer to @req, is the proxy refusing our
 * credentials outright (only for a CONNECT; see the .c for why). */
gboolean ph_upstream_answer_rejects_credentials (const PhHttpRequest *req,
                                                 const PhHttpResponse *resp);
/* Whether it may be, which only the proxy can tell: a 407 to an http://
 * request (ph_upstream_check_auth_async). */
gboolean ph_upstream_answer_needs_auth_check (const PhHttpRequest *req, const PhHttpResponse *resp);

gboolean ph_upstream_get_auth_rejected (PhUpstream *up);
void ph_upstream_set_auth_rejected (PhUpstream *up);
void ph_upstream_clear_auth_rejected (PhUpstream *up);
typedef void (*PhUpstreamCheckFunc) (gboolean rejected, gpointer user_data);
/* Asks the proxy itself whether it takes the credentials, with a CONNECT
 * to port 443 of @host (the origin whose 407 is in question; without
 * brackets): a 407 to an http:// request may be the origin's, while only
 * the proxy answers a CONNECT. One check runs at a time and its waiters
 * share the answer; a check that found them taken holds 30 s. A rejection
 * is recorded as by ph_upstream_set_auth_rejected(). */
void ph_upstream_check_auth_async (PhUpstream *up, const char *host, PhUpstreamCheckFunc func,
                                   gpointer user_data);
/* Call after reading from a used connection, so its TLS session resumes. */
void ph_upstream_save_session (PhUpstream *up, PhStream *stream);
/* The proxy in use ("host:port"): the one the next new connection goes to. */
const char *ph_upstream_get_name (PhUpstream *up);

typedef enum
{
  PH_UPSTREAM_CONNECTED,      /* a connection was made and verified */
  PH_UPSTREAM_FAILED,         /* a connection attempt failed: see get_last_error */
  PH_UPSTREAM_AUTH_CHANGED,   /* the proxy rejected the credentials, or they may be tried again */
  PH_UPSTREAM_HEALTH_CHANGED, /* a proxy went up, down or was refused; its addresses changed */
} PhUpstreamEvent;

/* ---- several proxies: each one's health ---- */

guint ph_upstream_get_n_proxies (PhUpstream *up);
const char *ph_upstream_get_proxy_name (PhUpstream *up, guint i);
PhProxyHealth ph_upstream_get_proxy_health (PhUpstream *up, guint i);
/* Whether new tunnels go to it now (priority: the first usable; round-robin: every usable). */
gboolean ph_upstream_get_proxy_in_use (PhUpstream *up, guint i);
/* While down or refused: when the background probe tries it (g_get_real_time); else 0. */
gint64 ph_upstream_get_proxy_retry_at (PhUpstream *up, guint i);
/* Its last failure, NULL while up or untried. */
const GError *ph_upstream_get_proxy_error (PhUpstream *up, guint i);
/* The addresses its name last resolved to (NULL before the lookup). */
const char *const *ph_upstream_get_proxy_addresses (PhUpstream *up, guint i);
/* A connection from this upstream closed before it answered its first request: its proxy is
 * down (the TLS end took it, but what is behind it did not answer). */
void ph_upstream_report_lost (PhUpstream *up, PhStream *stream);
/* The name of the proxy @stream goes to. */
const char *ph_upstream_get_stream_proxy_name (PhUpstream *up, PhStream *stream);

typedef void (*PhUpstreamNotify) (PhUpstream *up, PhUpstreamEvent event, gpointer user_data);
/* Tells whoever watches the agent's health (the control adapter) how the
 * cloud proxy is doing, from real connection attempts. */
void ph_upstream_set_notify (PhUpstream *up, PhUpstreamNotify notify, gpointer user_data);
/* Whether any connection was ever made and verified. */
gboolean ph_upstream_has_connected (PhUpstream *up);
/* The problem to report: a proxy that refused us (a configuration problem: a pin mismatch, a
 * certificate no CA vouches for), even while others carry the traffic; else, while no proxy is
 * up, the error of the last connection attempt; else NULL. */
const GError *ph_upstream_get_last_error (PhUpstream *up);
/* Whether @error says the cloud proxy could not be reached (TCP, a timeout, or TLS that failed
 * before a certificate was judged), as opposed to a proxy that answered and was refused: a pin
 * mismatch, a certificate no CA vouches for, rejected credentials. Only the first may send
 * requests around the tunnel ([route] when-unreachable=direct) or start a captive-portal check:
 * the others may be an attacker in the way. */
gboolean ph_upstream_error_is_unreachable (const GError *error);
/* The pin the proxy presented last ("sha256//…"), or NULL before any. */
char *ph_upstream_dup_seen_pin (PhUpstream *up);

typedef void (*PhUpstreamInspectFunc) (PhTlsInspection *inspection, GError *error,
                                       gpointer user_data);
/* Connects and reads the proxy's certificates without sending anything;
 * the connection is then dropped. @func owns @inspection. */
void ph_upstream_inspect_async (PhUpstream *up, GCancellable *cancellable,
                                PhUpstreamInspectFunc func, gpointer user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhUpstream, ph_upstream_unref)

G_END_DECLS
