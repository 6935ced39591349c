/* ph-tls.h: the TLS client to the cloud proxy: GnuTLS credentials and
 * priorities shared per upstream, the asynchronous handshake, and the
 * verification (pins, CA, or both) that runs before any byte is written. */
#pragma once

#include <gio/gio.h>

#include "ph-config.h"
#include "ph-stream.h"
#include "ph-tls-util.h"

G_BEGIN_DECLS

typedef struct _PhTlsContext PhTlsContext;

PhTlsContext *ph_tls_context_new (const PhConfig *config, GError **error);
PhTlsContext *ph_tls_context_ref (PhTlsContext *ctx);
void ph_tls_context_unref (PhTlsContext *ctx);
/* Remembers @stream's session so the next handshake can resume it. */
void ph_tls_context_save_session (PhTlsContext *ctx, PhStream *stream);

typedef void (*PhTlsHandshakeFunc) (PhStream *stream, GError *error, gpointer user_data);

/* Runs the handshake on @connection and calls @func with a verified TLS
 * stream or an error (PIN_MISMATCH naming the pin seen, UPSTREAM_TLS,
 * TIMEOUT). @cancellable aborts it; @func is still called once. */
void ph_tls_handshake_async (PhTlsContext *ctx, GSocketConnection *connection, guint timeout_ms,
                             GCancellable *cancellable, PhTlsHandshakeFunc func,
                             gpointer user_data);

/* The pin of the certificate the server presented on the last handshake
 * through @ctx, trusted or not. FALSE before any. */
gboolean ph_tls_context_get_seen_pin (PhTlsContext *ctx, PhPin *pin);

/* What a server presented, for a person deciding whether to trust it. */
typedef struct
{
  char *pin;
  char *subject;
  char *issuer;
  gint64 not_before, not_after; /* Unix time */
  char *sha256;                 /* hex of the DER */
} PhCertInfo;

typedef struct
{
  GPtrArray *chain; /* of PhCertInfo, the server's own first */
  gboolean ca_trusted;
  char *ca_problem;
  char *protocol;
} PhTlsInspection;

void ph_tls_inspection_free (PhTlsInspection *inspection);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTlsInspection, ph_tls_inspection_free)

/* A context that only inspects: its handshakes stop once the server's
 * certificates are in, so nothing is ever sent over them. */
PhTlsContext *ph_tls_context_new_inspector (const PhConfig *config, GError **error);

typedef void (*PhTlsInspectFunc) (PhTlsInspection *inspection, GError *error, gpointer user_data);
/* Runs an inspector's handshake on @connection; @func owns @inspection. */
void ph_tls_inspect_async (PhTlsContext *ctx, GSocketConnection *connection, guint timeout_ms,
                           GCancellable *cancellable, PhTlsInspectFunc func, gpointer user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTlsContext, ph_tls_context_unref)

G_END_DECLS
