/* SPDX-License-Identifier: GPL-2.0-or-later */
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

PhTlsContext *ph_tls_context_new (const PhConfig *config, const char *server_name, GError **error);
PhTlsContext *ph_tls_context_ref (PhTlsContext *ctx);
void ph_tls_context_unref (PhTlsContext *ctx);
/* The protocols offered by ALPN in this context's handshakes (e.g. "h2", "http/1.1"), in the
 * order of preference; NULL or empty: no ALPN (the default). */
void ph_tls_context_set_alpn (PhTlsContext *ctx, const char *const *protocols);
/* The protocol the server chose by ALPN on @stream; NULL when none. */
char *ph_tls_dup_alpn (PhStream *stream);
/* Remembers @stream's session so the next handshake can resume it. */
void ph_tls_context_save_session (PhTlsContext *ctx, PhStream *stream);

typedef void (*PhTlsHandshakeFunc) (PhStream *stream, GError *error, gpointer user_data);

/* Runs the handshake on @connection and calls @func with a verified TLS
 * stream or an error (PIN_MISMATCH naming the pin seen, UPSTREAM_TLS,
 * TIMEOUT). @cancellable aborts it; @func is still called once. */
void ph_tls_handshake_async (PhTlsContext *ctx, GSocketConnection *connection, guint timeout_ms,
                             GCancellable *cancellable, PhTlsHandshakeFunc func,
                             gpointer user_data);
/* The same; without @offer_alpn the context's ALPN list is not offered (ph-upstream: only
 * while a proxy's choice of h2 is unknown, and on the connections meant for tunnels). */
void ph_tls_handshake_async_alpn (PhTlsContext *ctx, GSocketConnection *connection,
                                  guint timeout_ms, gboolean offer_alpn, GCancellable *cancellable,
                                  PhTlsHandshakeFunc func, gpointer user_data);

/* The pin of the certificate the server presented on the last handshake
 * through @ctx, trusted or not. NULL before any. */
PhPin *ph_tls_context_dup_seen_pin (PhTlsContext *ctx);
/* Handshakes completed with this context, full and resumed. */
void ph_tls_context_get_handshakes (PhTlsContext *ctx, guint64 *full, guint64 *resumed);

/* What a server presented, for a person deciding whether to trust it: its
 * certificates, the server's own first, and what the CA check made of
 * them. One owner: ph_tls_inspection_free(). */
typedef struct _PhTlsInspection PhTlsInspection;
/* One certificate of an inspection; it belongs to the inspection. */
typedef struct _PhCertInfo PhCertInfo;

guint ph_tls_inspection_get_n_certs (const PhTlsInspection *inspection);
const PhCertInfo *ph_tls_inspection_get_cert (const PhTlsInspection *inspection, guint i);
gboolean ph_tls_inspection_get_ca_trusted (const PhTlsInspection *inspection);
/* Why the CA check failed; "" when it passed. */
const char *ph_tls_inspection_get_ca_problem (const PhTlsInspection *inspection);
const char *ph_tls_inspection_get_protocol (const PhTlsInspection *inspection);
/* The cipher the server chose (GnuTLS's name, e.g. "AES-256-GCM"). */
const char *ph_tls_inspection_get_cipher (const PhTlsInspection *inspection);

/* Its pin, "sha256//…". */
const char *ph_cert_info_get_pin (const PhCertInfo *info);
const char *ph_cert_info_get_subject (const PhCertInfo *info);
const char *ph_cert_info_get_issuer (const PhCertInfo *info);
gint64 ph_cert_info_get_not_before (const PhCertInfo *info); /* Unix time */
gint64 ph_cert_info_get_not_after (const PhCertInfo *info);  /* Unix time */
/* Hex of the SHA-256 of the DER. */
const char *ph_cert_info_get_sha256 (const PhCertInfo *info);

void ph_tls_inspection_free (PhTlsInspection *inspection);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTlsInspection, ph_tls_inspection_free)

/* A context that only inspects: its handshakes stop once the server's
 * certificates are in, so nothing is ever sent over them. */
PhTlsContext *ph_tls_context_new_inspector (const PhConfig *config, const char *server_name,
                                            GError **error);

typedef void (*PhTlsInspectFunc) (PhTlsInspection *inspection, GError *error, gpointer user_data);
/* Runs an inspector's handshake on @connection; @func owns @inspection. */
void ph_tls_inspect_async (PhTlsContext *ctx, GSocketConnection *connection, guint timeout_ms,
                           GCancellable *cancellable, PhTlsInspectFunc func, gpointer user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTlsContext, ph_tls_context_unref)

G_END_DECLS
