/* ph-upstream.h: the one cloud proxy: verified TLS connections to it (a
 * few kept warm so a handshake is rarely on a request's path), the
 * Proxy-Authorization it is sent, and what it last said of it. */
#pragma once

#include <gio/gio.h>

#include "ph-config.h"
#include "ph-stream.h"
#include "ph-tls.h"

G_BEGIN_DECLS

typedef struct _PhUpstream PhUpstream;

PhUpstream *ph_upstream_new (PhConfig *config, GError **error);
PhUpstream *ph_upstream_ref (PhUpstream *up);
void ph_upstream_unref (PhUpstream *up);
/* Stops keeping connections warm and closes the idle ones. */
void ph_upstream_shutdown (PhUpstream *up);

/* A verified connection from the warm pool, or NULL. */
PhStream *ph_upstream_take_warm (PhUpstream *up);

typedef void (*PhUpstreamFunc) (PhStream *stream, GError *error, gpointer user_data);
/* Connects (happy eyeballs), handshakes and verifies a new connection. */
void ph_upstream_connect_async (PhUpstream *up, GCancellable *cancellable, PhUpstreamFunc func,
                                gpointer user_data);

/* "Basic …" or NULL when no username is configured. NULL also once the
 * proxy has rejected these credentials: they are not sent again. */
const char *ph_upstream_get_proxy_auth (PhUpstream *up);
gboolean ph_upstream_get_auth_rejected (PhUpstream *up);
void ph_upstream_set_auth_rejected (PhUpstream *up);
void ph_upstream_clear_auth_rejected (PhUpstream *up);
typedef void (*PhUpstreamCheckFunc) (gboolean rejected, gpointer user_data);
/* Asks the proxy itself whether it takes the credentials, with a CONNECT
 * to @authority: a 407 to an http:// request may be the origin's, while
 * only the proxy answers a CONNECT. One check runs at a time and its
 * waiters share the answer; a check that found them taken holds 30 s.
 * A rejection is recorded as by ph_upstream_set_auth_rejected(). */
void ph_upstream_check_auth_async (PhUpstream *up, const char *authority, PhUpstreamCheckFunc func,
                                   gpointer user_data);
/* Call after reading from a used connection, so its TLS session resumes. */
void ph_upstream_save_session (PhUpstream *up, PhStream *stream);
const char *ph_upstream_get_name (PhUpstream *up);

typedef enum
{
  PH_UPSTREAM_CONNECTED,    /* a connection was made and verified */
  PH_UPSTREAM_FAILED,       /* a connection attempt failed: see get_last_error */
  PH_UPSTREAM_AUTH_CHANGED, /* the proxy rejected the credentials, or they may be tried again */
} PhUpstreamEvent;

typedef void (*PhUpstreamNotify) (PhUpstream *up, PhUpstreamEvent event, gpointer user_data);
/* Tells whoever watches the agent's health (the control adapter) how the
 * cloud proxy is doing, from real connection attempts. */
void ph_upstream_set_notify (PhUpstream *up, PhUpstreamNotify notify, gpointer user_data);
/* Whether any connection was ever made and verified. */
gboolean ph_upstream_has_connected (PhUpstream *up);
/* The error of the last connection attempt, or NULL if it succeeded. */
const GError *ph_upstream_get_last_error (PhUpstream *up);
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
