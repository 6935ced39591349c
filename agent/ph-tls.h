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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTlsContext, ph_tls_context_unref)

G_END_DECLS
