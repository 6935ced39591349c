/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tls.c: GnuTLS behind the core. Every GnuTLS code becomes a GError in
 * ph_tls_set_error() (ph-tls-util.c); verification runs inside the handshake, so a server
 * that fails it never receives a byte of application data. */
#define G_LOG_DOMAIN "pinhole-tls"

#include "ph-tls.h"
#include "ph-error.h"
#include "ph-ktls.h"

#include <errno.h>
#include <string.h>
#include <glib/gi18n.h>

/* TLS 1.2 or 1.3 only. AES-128-GCM first: it is what AES-NI makes
 * cheapest, and the relay's cost per GiB is mostly this cipher. */
#define PH_TLS_PRIORITY                                                                            \
  "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"              \
  "+CHACHA20-POLY1305:+AES-128-CCM:+AES-256-CCM:+AES-128-CBC:+AES-256-CBC"

struct _PhTlsContext
{
  gnutls_certificate_credentials_t creds;
  gnutls_priority_t priority;
  PhVerifyMode verify;
  GPtrArray *pins; /* of PhPin */
  char *server_name;
  gboolean send_sni;
  gnutls_datum_t session_data; /* for resumption; gnutls_free'd */
  gboolean inspector;
  PhKtlsMode ktls;
  PhPin *seen;               /* NULL before any handshake got so far */
  guint64 n_full, n_resumed; /* completed handshakes */
  GStrv alpn;                /* protocols offered by ALPN; NULL: no ALPN */
};

static PhTlsContext *
context_new (const PhConfig *config, const char *server_name, gboolean inspector, GError **error)
{
  g_autoptr (PhTlsContext) ctx = g_atomic_rc_box_new0 (PhTlsContext);
  const char *err_pos = NULL;
  int ret;

  ctx->inspector = inspector;
  ret = gnutls_certificate_allocate_credentials (&ctx->creds);
  if (ret < 0)
    /* TRANSLATORS: what failed; a colon and the reason follow */
    return ph_tls_set_error (error, ret, PH_ERROR_UPSTREAM_TLS, _ ("TLS credentials")), NULL;
  if (ph_config_get_verify (config) != PH_VERIFY_PIN || ctx->inspector)
    {
      ret = gnutls_certificate_set_x509_system_trust (ctx->creds);
      if (ret <= 0)
        g_warning ("no system CA certificates could be loaded (%s)",
                   ret < 0 ? gnutls_strerror (ret) : "none found");
      if (ph_config_get_ca_file (config) != NULL)
        {
          ret = gnutls_certificate_set_x509_trust_file (ctx->creds, ph_config_get_ca_file (config),
                                                        GNUTLS_X509_FMT_PEM);
          if (ret < 0)
            {
              /* TRANSLATORS: what failed, then a colon and the reason; ca-file is the
               * setting's name: keep it; %s is its path */
              g_autofree char *what
                  = g_strdup_printf (_ ("loading ca-file %s"), ph_config_get_ca_file (config));
              return ph_tls_set_error (error, ret, PH_ERROR_INVALID_CONFIG, what), NULL;
            }
        }
    }
  ret = gnutls_priority_init (&ctx->priority, PH_TLS_PRIORITY, &err_pos);
  if (ret < 0)
    /* TRANSLATORS: what failed (GnuTLS's list of TLS versions and ciphers); a colon
     * and the reason follow */
    return ph_tls_set_error (error, ret, PH_ERROR_UPSTREAM_TLS, _ ("TLS priorities")), NULL;

  ctx->verify = ph_config_get_verify (config);
  ctx->pins = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_pin_free);
  for (guint i = 0; i < ph_config_get_n_pins (config); i++)
    g_ptr_array_add (ctx->pins, ph_pin_copy (ph_config_get_pin (config, i)));
  ctx->server_name
      = g_strdup (server_name != NULL ? server_name : ph_config_get_server_name (config));
  /* SNI carries names only (RFC 6066 §3). */
  ctx->send_sni = !g_hostname_is_ip_address (ctx->server_name);
  ctx->ktls = ph_config_get_ktls (config);
  if (!ctx->inspector && ctx->ktls != PH_KTLS_OFF)
    {
      const char *why = ph_ktls_get_unavailable_reason ();

      if (why != NULL && ctx->ktls == PH_KTLS_ON)
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                       /* TRANSLATORS: ktls=on is the setting: keep it; %s says why,
                        * one or more reasons joined by semicolons */
                       _ ("ktls=on, but kernel TLS cannot be used: %s"), why);
          return NULL;
        }
      if (why != NULL)
        g_info ("kernel TLS not used: %s", why);
      else
        g_info ("kernel TLS available: GnuTLS hands the cipher of each connection to the kernel");
    }
  return g_steal_pointer (&ctx);
}

PhTlsContext *
ph_tls_context_new (const PhConfig *config, const char *server_name, GError **error)
{
  return context_new (config, server_name, FALSE, error);
}

PhTlsContext *
ph_tls_context_new_inspector (const PhConfig *config, const char *server_name, GError **error)
{
  return context_new (config, server_name, TRUE, error);
}

void
ph_tls_context_get_handshakes (PhTlsContext *ctx, guint64 *full, guint64 *resumed)
{
  *full = ctx->n_full;
  *resumed = ctx->n_resumed;
}

PhPin *
ph_tls_context_dup_seen_pin (PhTlsContext *ctx)
{
  return ctx->seen != NULL ? ph_pin_copy (ctx->seen) : NULL;
}

struct _PhCertInfo
{
  char *pin;
  char *subject;
  char *issuer;
  gint64 not_before, not_after; /* Unix time */
  char *sha256;                 /* hex of the DER */
};

struct _PhTlsInspection
{
  GPtrArray *chain; /* of PhCertInfo, the server's own first */
  gboolean ca_trusted;
  char *ca_problem;
  char *protocol;
  char *cipher;
};

static void
cert_info_free (PhCertInfo *info)
{
  g_free (info->pin);
  g_free (info->subject);
  g_free (info->issuer);
  g_free (info->sha256);
  g_free (info);
}

void
ph_tls_inspection_free (PhTlsInspection *inspection)
{
  g_clear_pointer (&inspection->chain, g_ptr_array_unref);
  g_free (inspection->ca_problem);
  g_free (inspection->protocol);
  g_free (inspection->cipher);
  g_free (inspection);
}

guint
ph_tls_inspection_get_n_certs (const PhTlsInspection *inspection)
{
  return inspection->chain->len;
}

const PhCertInfo *
ph_tls_inspection_get_cert (const PhTlsInspection *inspection, guint i)
{
  g_return_val_if_fail (i < inspection->chain->len, NULL);
  return g_ptr_array_index (inspection->chain, i);
}

gboolean
ph_tls_inspection_get_ca_trusted (const PhTlsInspection *inspection)
{
  return inspection->ca_trusted;
}

const char *
ph_tls_inspection_get_ca_problem (const PhTlsInspection *inspection)
{
  return inspection->ca_problem;
}

const char *
ph_tls_inspection_get_protocol (const PhTlsInspection *inspection)
{
  return inspection->protocol;
}

const char *
ph_tls_inspection_get_cipher (const PhTlsInspection *inspection)
{
  return inspection->cipher;
}

const char *
ph_cert_info_get_pin (const PhCertInfo *info)
{
  return info->pin;
}

const char *
ph_cert_info_get_subject (const PhCertInfo *info)
{
  return info->subject;
}

const char *
ph_cert_info_get_issuer (const PhCertInfo *info)
{
  return info->issuer;
}

gint64
ph_cert_info_get_not_before (const PhCertInfo *info)
{
  return info->not_before;
}

gint64
ph_cert_info_get_not_after (const PhCertInfo *info)
{
  return info->not_after;
}

const char *
ph_cert_info_get_sha256 (const PhCertInfo *info)
{
  return info->sha256;
}

static void
context_clear (PhTlsContext *ctx)
{
  if (ctx->creds != NULL)
    gnutls_certificate_free_credentials (ctx->creds);
  if (ctx->priority != NULL)
    gnutls_priority_deinit (ctx->priority);
  g_clear_pointer (&ctx->pins, g_ptr_array_unref);
  g_clear_pointer (&ctx->seen, ph_pin_free);
  g_free (ctx->server_name);
  g_strfreev (ctx->alpn);
  gnutls_free (ctx->session_data.data);
}

void
ph_tls_context_set_alpn (PhTlsContext *ctx, const char *const *protocols)
{
  g_strfreev (ctx->alpn);
  ctx->alpn = protocols != NULL && protocols[0] != NULL ? g_strdupv ((char **) protocols) : NULL;
}

char *
ph_tls_dup_alpn (PhStream *stream)
{
  gnutls_session_t session = ph_stream_get_session (stream);
  gnutls_datum_t proto = { NULL, 0 };

  if (session == NULL || gnutls_alpn_get_selected_protocol (session, &proto) < 0)
    return NULL;
  return g_strndup ((const char *) proto.data, proto.size);
}

PhTlsContext *
ph_tls_context_ref (PhTlsContext *ctx)
{
  return g_atomic_rc_box_acquire (ctx);
}

void
ph_tls_context_unref (PhTlsContext *ctx)
{
  g_atomic_rc_box_release_full (ctx, (GDestroyNotify) context_clear);
}

void
ph_tls_context_save_session (PhTlsContext *ctx, PhStream *stream)
{
  gnutls_session_t s = ph_stream_get_session (stream);
  gnutls_datum_t data = { NULL, 0 };

  /* In TLS 1.3 a session is resumable only once a ticket has arrived. */
  if (gnutls_protocol_get_version (s) == GNUTLS_TLS1_3
      && !(gnutls_session_get_flags (s) & GNUTLS_SFLAGS_SESSION_TICKET))
    return;
  if (gnutls_session_get_data2 (s, &data) < 0)
    return;
  gnutls_free (ctx->session_data.data);
  ctx->session_data = data;
}

typedef struct
{
  PhTlsContext *ctx;
  GSocketConnection *connection;
  gnutls_session_t session;
  GSource *io_source;
  GSource *timeout_source;
  GSource *cancel_source;
  guint timeout_ms;
  PhTlsHandshakeFunc func;
  PhTlsInspectFunc inspect_func;
  gpointer user_data;
  PhTlsInspection *inspection;

  PhPin *seen;
  gboolean pin_failed;
  char *ca_problem;
  gboolean no_alpn; /* this handshake offers no ALPN, whatever the context's list */
} PhHandshake;

static void
handshake_free (PhHandshake *hs)
{
  if (hs->io_source != NULL)
    {
      g_source_destroy (hs->io_source);
      g_source_unref (hs->io_source);
    }
  if (hs->timeout_source != NULL)
    {
      g_source_destroy (hs->timeout_source);
      g_source_unref (hs->timeout_source);
    }
  if (hs->cancel_source != NULL)
    {
      g_source_destroy (hs->cancel_source);
      g_source_unref (hs->cancel_source);
    }
  if (hs->session != NULL)
    gnutls_deinit (hs->session);
  g_clear_object (&hs->connection);
  g_clear_pointer (&hs->inspection, ph_tls_inspection_free);
  ph_tls_context_unref (hs->ctx);
  g_clear_pointer (&hs->seen, ph_pin_free);
  g_free (hs->ca_problem);
  g_free (hs);
}

static void
handshake_finish (PhHandshake *hs, GError *error)
{
  PhStream *stream = NULL;

  if (hs->inspect_func != NULL)
    {
      /* The inspector's verify callback ends every handshake it completes. */
      if (hs->inspection != NULL)
        g_clear_error (&error);
      hs->inspect_func (error ? NULL : g_steal_pointer (&hs->inspection), error, hs->user_data);
      handshake_free (hs);
      return;
    }
  if (error == NULL && hs->ctx->ktls == PH_KTLS_ON
      && ph_ktls_get_directions (hs->session) != (PH_KTLS_RX | PH_KTLS_TX))
    error = g_error_new (PH_ERROR, PH_ERROR_UPSTREAM_TLS,
                         /* TRANSLATORS: ktls=on is the setting: keep it; then the TLS
                          * version and the cipher (GnuTLS's names) */
                         _ ("ktls=on, but GnuTLS left this connection (%s, %s) out of the kernel"),
                         gnutls_protocol_get_name (gnutls_protocol_get_version (hs->session)),
                         gnutls_cipher_get_name (gnutls_cipher_get (hs->session)));
  if (error == NULL)
    {
      gnutls_session_t session = hs->session;

      gnutls_session_set_ptr (hs->session, NULL);
      stream = ph_stream_new (hs->connection, g_steal_pointer (&hs->session));
      if (gnutls_session_is_resumed (session))
        hs->ctx->n_resumed++;
      else
        hs->ctx->n_full++;
      g_debug ("TLS with %s ready (%s, %s, %s%s)", hs->ctx->server_name,
               gnutls_protocol_get_name (gnutls_protocol_get_version (session)),
               gnutls_cipher_get_name (gnutls_cipher_get (session)),
               gnutls_session_is_resumed (session) ? "resumed" : "full handshake",
               ph_ktls_get_directions (session) != PH_KTLS_NONE ? ", kernel TLS" : "");
    }
  hs->func (stream, error, hs->user_data);
  handshake_free (hs);
}

static char *
dn_of (gnutls_x509_crt_t crt, gboolean issuer)
{
  gnutls_datum_t dn = { NULL, 0 };
  char *text;

  if ((issuer ? gnutls_x509_crt_get_issuer_dn3 (crt, &dn, 0)
              : gnutls_x509_crt_get_dn3 (crt, &dn, 0))
      < 0)
    return g_strdup ("");
  text = g_strndup ((const char *) dn.data, dn.size);
  gnutls_free (dn.data);
  return text;
}

static PhCertInfo *
cert_info_new (const gnutls_datum_t *der)
{
  PhCertInfo *info = g_new0 (PhCertInfo, 1);
  gnutls_x509_crt_t crt = NULL;
  g_autoptr (PhPin) pin = ph_pin_new_from_der_certificate (der->data, der->size, NULL);

  info->pin = pin != NULL ? ph_pin_to_string (pin) : g_strdup ("");
  info->sha256 = g_compute_checksum_for_data (G_CHECKSUM_SHA256, der->data, der->size);
  if (gnutls_x509_crt_init (&crt) >= 0
      && gnutls_x509_crt_import (crt, der, GNUTLS_X509_FMT_DER) >= 0)
    {
      info->subject = dn_of (crt, FALSE);
      info->issuer = dn_of (crt, TRUE);
      info->not_before = gnutls_x509_crt_get_activation_time (crt);
      info->not_after = gnutls_x509_crt_get_expiration_time (crt);
    }
  else
    {
      info->subject = g_strdup ("");
      info->issuer = g_strdup ("");
    }
  if (crt != NULL)
    gnutls_x509_crt_deinit (crt);
  return info;
}

/* Everything a person needs to decide on the key, and what the CA store
 * (system, plus ca-file) thinks of it for the configured name. */
static PhTlsInspection *
inspect_peer (gnutls_session_t session, PhTlsContext *ctx, const gnutls_datum_t *certs,
              unsigned int n_certs)
{
  PhTlsInspection *inspection = g_new0 (PhTlsInspection, 1);
  unsigned int status = 0;
  int ret;

  inspection->chain = g_ptr_array_new_with_free_func ((GDestroyNotify) cert_info_free);
  for (unsigned int i = 0; i < n_certs; i++)
    g_ptr_array_add (inspection->chain, cert_info_new (&certs[i]));
  inspection->protocol
      = g_strdup (gnutls_protocol_get_name (gnutls_protocol_get_version (session)));
  /* The server chose it in its hello, before its certificate. */
  inspection->cipher = g_strdup (gnutls_cipher_get_name (gnutls_cipher_get (session)));
  ret = gnutls_certificate_verify_peers3 (session, ctx->server_name, &status);
  inspection->ca_trusted = ret >= 0 && status == 0;
  if (!inspection->ca_trusted)
    {
      gnutls_datum_t out = { NULL, 0 };
      if (ret >= 0
          && gnutls_certificate_verification_status_print (status, GNUTLS_CRT_X509, &out, 0) >= 0)
        {
          /* GnuTLS ends its sentences with a space. */
          inspection->ca_problem = g_strchomp (g_strndup ((const char *) out.data, out.size));
          gnutls_free (out.data);
        }
      else
        inspection->ca_problem = g_strdup (gnutls_strerror (ret));
    }
  else
    inspection->ca_problem = g_strdup ("");
  return inspection;
}

/* Runs inside gnutls_handshake() once the server's certificate is in. */
static int
verify_cb (gnutls_session_t session)
{
  PhHandshake *hs = gnutls_session_get_ptr (session);
  const gnutls_datum_t *certs;
  unsigned int n_certs = 0;
  g_autoptr (GError) error = NULL;

  certs = gnutls_certificate_get_peers (session, &n_certs);
  if (certs == NULL || n_certs == 0)
    {
      hs->ca_problem = g_strdup (_ ("the server sent no certificate"));
      return GNUTLS_E_CERTIFICATE_ERROR;
    }
  g_clear_pointer (&hs->seen, ph_pin_free);
  hs->seen = ph_pin_new_from_der_certificate (certs[0].data, certs[0].size, &error);
  if (hs->seen == NULL)
    {
      hs->ca_problem = g_strdup (error->message);
      return GNUTLS_E_CERTIFICATE_ERROR;
    }
  g_clear_pointer (&hs->ctx->seen, ph_pin_free);
  hs->ctx->seen = ph_pin_copy (hs->seen);

  if (hs->ctx->inspector)
    {
      hs->inspection = inspect_peer (session, hs->ctx, certs, n_certs);
      return GNUTLS_E_CERTIFICATE_ERROR;
    }
  if (hs->ctx->verify != PH_VERIFY_CA
      && !ph_pin_matches_any (hs->seen, (PhPin *const *) hs->ctx->pins->pdata, hs->ctx->pins->len))
    {
      hs->pin_failed = TRUE;
      return GNUTLS_E_CERTIFICATE_ERROR;
    }
  if (hs->ctx->verify != PH_VERIFY_PIN)
    {
      unsigned int status = 0;
      int ret = gnutls_certificate_verify_peers3 (session, hs->ctx->server_name, &status);
      if (ret < 0 || status != 0)
        {
          gnutls_datum_t out = { NULL, 0 };
          if (ret >= 0
              && gnutls_certificate_verification_status_print (status, GNUTLS_CRT_X509, &out, 0)
                     >= 0)
            {
              hs->ca_problem = g_strchomp (g_strdup ((const char *) out.data));
              gnutls_free (out.data);
            }
          else
            hs->ca_problem = g_strdup (gnutls_strerror (ret));
          return GNUTLS_E_CERTIFICATE_ERROR;
        }
    }
  return 0;
}

static GError *
handshake_error (PhHandshake *hs, int ret)
{
  GError *error = NULL;

  if (hs->pin_failed)
    {
      g_autofree char *seen = ph_pin_to_string (hs->seen);
      g_set_error (&error, PH_ERROR, PH_ERROR_PIN_MISMATCH,
                   /* TRANSLATORS: the cloud proxy's name, then the pin of the key it
                    * presented (sha256//…); pins= is the setting's name: keep it */
                   _ ("certificate pin mismatch: %s presented %s, which is not in pins="),
                   hs->ctx->server_name, seen);
    }
  else if (hs->ca_problem != NULL)
    g_set_error (&error, PH_ERROR, PH_ERROR_CERT_UNTRUSTED,
                 /* TRANSLATORS: the cloud proxy's name, then why (often GnuTLS's words) */
                 _ ("the certificate of %s is not trusted: %s"), hs->ctx->server_name,
                 hs->ca_problem);
  else
    ph_tls_set_error (&error, ret, PH_ERROR_UPSTREAM_TLS,
                      /* TRANSLATORS: what failed; a colon and the reason follow */
                      _ ("TLS handshake with the cloud proxy"));
  return error;
}

static gboolean handshake_io_cb (GSocket *socket, GIOCondition cond, gpointer data);

/* With ktls=off the handshake reads through this instead of GnuTLS's own
 * recv(): GnuTLS never hands a session with its own pull function to the
 * kernel, and there is no other way to say no for one session. */
static ssize_t
handshake_pull (gnutls_transport_ptr_t ptr, void *data, size_t len)
{
  PhHandshake *hs = ptr;
  g_autoptr (GError) error = NULL;
  gssize r = g_socket_receive_with_blocking (g_socket_connection_get_socket (hs->connection), data,
                                             len, FALSE, NULL, &error);

  if (r >= 0)
    return r;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    gnutls_transport_set_errno (hs->session, EAGAIN);
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)
           || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
    gnutls_transport_set_errno (hs->session, ECONNRESET);
  else
    gnutls_transport_set_errno (hs->session, EIO);
  return -1;
}

static void
handshake_step (PhHandshake *hs)
{
  int ret = gnutls_handshake (hs->session);

  if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED
      || (ret < 0 && !gnutls_error_is_fatal (ret)))
    {
      GIOCondition cond = gnutls_record_get_direction (hs->session) ? G_IO_OUT : G_IO_IN;
      GSocket *socket = g_socket_connection_get_socket (hs->connection);

      if (hs->io_source != NULL)
        {
          g_source_destroy (hs->io_source);
          g_source_unref (hs->io_source);
        }
      hs->io_source = g_socket_create_source (socket, cond | G_IO_ERR | G_IO_HUP, NULL);
      g_source_set_callback (hs->io_source, G_SOURCE_FUNC (handshake_io_cb), hs, NULL);
      g_source_attach (hs->io_source, NULL);
      return;
    }
  handshake_finish (hs, ret < 0 ? handshake_error (hs, ret) : NULL);
}

static gboolean
handshake_io_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhHandshake *hs = data;

  g_source_unref (g_steal_pointer (&hs->io_source));
  handshake_step (hs);
  return G_SOURCE_REMOVE;
}

static gboolean
handshake_timeout_cb (gpointer data)
{
  PhHandshake *hs = data;
  GError *error = g_error_new (PH_ERROR, PH_ERROR_TIMEOUT,
                               /* TRANSLATORS: the cloud proxy's name, then the time
                                * allowed in seconds ("s") */
                               _ ("TLS handshake with %s did not finish within %.1fs"),
                               hs->ctx->server_name, hs->timeout_ms / 1000.0);

  g_source_unref (g_steal_pointer (&hs->timeout_source));
  handshake_finish (hs, error);
  return G_SOURCE_REMOVE;
}

static gboolean
handshake_cancel_cb (GCancellable *cancellable, gpointer data)
{
  PhHandshake *hs = data;

  g_source_unref (g_steal_pointer (&hs->cancel_source));
  handshake_finish (hs, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
  return G_SOURCE_REMOVE;
}

static void handshake_start (PhHandshake *hs, PhTlsContext *ctx, GSocketConnection *connection,
                             guint timeout_ms, GCancellable *cancellable);

void
ph_tls_handshake_async (PhTlsContext *ctx, GSocketConnection *connection, guint timeout_ms,
                        GCancellable *cancellable, PhTlsHandshakeFunc func, gpointer user_data)
{
  PhHandshake *hs = g_new0 (PhHandshake, 1);

  g_return_if_fail (!ctx->inspector);
  hs->func = func;
  hs->user_data = user_data;
  handshake_start (hs, ctx, connection, timeout_ms, cancellable);
}

void
ph_tls_handshake_async_alpn (PhTlsContext *ctx, GSocketConnection *connection, guint timeout_ms,
                             gboolean offer_alpn, GCancellable *cancellable,
                             PhTlsHandshakeFunc func, gpointer user_data)
{
  PhHandshake *hs = g_new0 (PhHandshake, 1);

  g_return_if_fail (!ctx->inspector);
  hs->func = func;
  hs->user_data = user_data;
  hs->no_alpn = !offer_alpn;
  handshake_start (hs, ctx, connection, timeout_ms, cancellable);
}

void
ph_tls_inspect_async (PhTlsContext *ctx, GSocketConnection *connection, guint timeout_ms,
                      GCancellable *cancellable, PhTlsInspectFunc func, gpointer user_data)
{
  PhHandshake *hs = g_new0 (PhHandshake, 1);

  g_return_if_fail (ctx->inspector);
  hs->inspect_func = func;
  hs->user_data = user_data;
  handshake_start (hs, ctx, connection, timeout_ms, cancellable);
}

static void
handshake_start (PhHandshake *hs, PhTlsContext *ctx, GSocketConnection *connection,
                 guint timeout_ms, GCancellable *cancellable)
{
  GSocket *socket = g_socket_connection_get_socket (connection);
  int ret;

  hs->ctx = ph_tls_context_ref (ctx);
  hs->connection = g_object_ref (connection);
  hs->timeout_ms = timeout_ms;

  if ((ret = gnutls_init (&hs->session, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL)) < 0
      || (ret = gnutls_priority_set (hs->session, ctx->priority)) < 0
      || (ret = gnutls_credentials_set (hs->session, GNUTLS_CRD_CERTIFICATE, ctx->creds)) < 0
      || (ctx->send_sni
          && (ret = gnutls_server_name_set (hs->session, GNUTLS_NAME_DNS, ctx->server_name,
                                            strlen (ctx->server_name)))
                 < 0))
    {
      GError *error = NULL;
      /* TRANSLATORS: what failed; a colon and the reason follow */
      ph_tls_set_error (&error, ret, PH_ERROR_UPSTREAM_TLS, _ ("setting up TLS"));
      handshake_finish (hs, error);
      return;
    }
  if (ctx->alpn != NULL && !hs->no_alpn)
    {
      guint n = g_strv_length (ctx->alpn);
      g_autofree gnutls_datum_t *protos = g_new0 (gnutls_datum_t, n);

      for (guint i = 0; i < n; i++)
        protos[i] = (gnutls_datum_t){ (unsigned char *) ctx->alpn[i], strlen (ctx->alpn[i]) };
      if ((ret = gnutls_alpn_set_protocols (hs->session, protos, n, 0)) < 0)
        {
          GError *error = NULL;
          ph_tls_set_error (&error, ret, PH_ERROR_UPSTREAM_TLS, _ ("setting up TLS"));
          handshake_finish (hs, error);
          return;
        }
    }
  gnutls_session_set_ptr (hs->session, hs);
  gnutls_session_set_verify_function (hs->session, verify_cb);
  gnutls_transport_set_int (hs->session, g_socket_get_fd (socket));
  if (ctx->ktls == PH_KTLS_OFF)
    {
      gnutls_transport_set_ptr2 (hs->session, hs, GINT_TO_POINTER (g_socket_get_fd (socket)));
      gnutls_transport_set_pull_function (hs->session, handshake_pull);
    }
  gnutls_handshake_set_timeout (hs->session, 0);
  if (ctx->session_data.data != NULL && !ctx->inspector)
    gnutls_session_set_data (hs->session, ctx->session_data.data, ctx->session_data.size);

  hs->timeout_source = g_timeout_source_new (timeout_ms);
  g_source_set_callback (hs->timeout_source, handshake_timeout_cb, hs, NULL);
  g_source_attach (hs->timeout_source, NULL);
  if (cancellable != NULL)
    {
      hs->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (hs->cancel_source, G_SOURCE_FUNC (handshake_cancel_cb), hs, NULL);
      g_source_attach (hs->cancel_source, NULL);
    }
  handshake_step (hs);
}
