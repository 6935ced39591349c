/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-test-tls-server.c: certificates made with gnutls_x509_crt_* and a loopback TLS server
 * with a thread per connection, on GSocket so that it also runs under Wine. */
#include "ph-test-tls-server.h"

#include <errno.h>
#include <string.h>
#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

/* ---- certificates ---- */

struct _PhTestCert
{
  gnutls_x509_crt_t crt;
  gnutls_x509_privkey_t key;
  char *pin;
};

static void
check (int ret, const char *what)
{
  if (ret < 0)
    g_error ("%s: %s", what, gnutls_strerror (ret));
}

static char *
pin_of (gnutls_x509_crt_t crt)
{
  gnutls_pubkey_t pub = NULL;
  gnutls_datum_t spki = { NULL, 0 };
  guint8 digest[32];
  gsize digest_len = sizeof digest;
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *b64 = NULL;

  check (gnutls_pubkey_init (&pub), "pubkey init");
  check (gnutls_pubkey_import_x509 (pub, crt, 0), "pubkey import");
  check (gnutls_pubkey_export2 (pub, GNUTLS_X509_FMT_DER, &spki), "pubkey export");
  g_checksum_update (sum, spki.data, spki.size);
  g_checksum_get_digest (sum, digest, &digest_len);
  gnutls_free (spki.data);
  gnutls_pubkey_deinit (pub);
  b64 = g_base64_encode (digest, digest_len);
  return g_strconcat ("sha256//", b64, NULL);
}

/* The parts every certificate here shares: a fresh P-256 key, a random serial, validity and
 * subject. */
static PhTestCert *
cert_begin (const char *common_name, gint64 not_before_s, gint64 not_after_s)
{
  PhTestCert *cert = g_new0 (PhTestCert, 1);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  guint8 serial[12];
  guint8 key_id[64];
  size_t key_id_len = sizeof key_id;

  check (gnutls_x509_privkey_init (&cert->key), "privkey init");
  check (gnutls_x509_privkey_generate (cert->key, GNUTLS_PK_ECDSA,
                                       GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0),
         "privkey generate");
  check (gnutls_x509_crt_init (&cert->crt), "crt init");
  check (gnutls_x509_crt_set_version (cert->crt, 3), "version");
  check (gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial), "serial");
  serial[0] &= 0x7f;
  check (gnutls_x509_crt_set_serial (cert->crt, serial, sizeof serial), "serial");
  check (gnutls_x509_crt_set_activation_time (cert->crt, (time_t) (now + not_before_s)),
         "activation");
  check (gnutls_x509_crt_set_expiration_time (cert->crt, (time_t) (now + not_after_s)),
         "expiration");
  check (gnutls_x509_crt_set_dn_by_oid (cert->crt, GNUTLS_OID_X520_COMMON_NAME, 0, common_name,
                                        strlen (common_name)),
         "subject");
  check (gnutls_x509_crt_set_key (cert->crt, cert->key), "key");
  check (gnutls_x509_crt_get_key_id (cert->crt, GNUTLS_KEYID_USE_SHA1, key_id, &key_id_len),
         "key id");
  check (gnutls_x509_crt_set_subject_key_id (cert->crt, key_id, key_id_len), "subject key id");
  return cert;
}

static void
cert_sign (PhTestCert *cert, PhTestCert *issuer)
{
  if (issuer != NULL)
    {
      guint8 key_id[64];
      size_t key_id_len = sizeof key_id;

      check (gnutls_x509_crt_get_subject_key_id (issuer->crt, key_id, &key_id_len, NULL),
             "issuer key id");
      check (gnutls_x509_crt_set_authority_key_id (cert->crt, key_id, key_id_len),
             "authority key id");
    }
  else
    issuer = cert;
  check (gnutls_x509_crt_sign2 (cert->crt, issuer->crt, issuer->key, GNUTLS_DIG_SHA256, 0), "sign");
  cert->pin = pin_of (cert->crt);
}

PhTestCert *
ph_test_cert_new_ca (const char *common_name)
{
  PhTestCert *cert = cert_begin (common_name, -3600, 30 * 86400);

  check (gnutls_x509_crt_set_basic_constraints (cert->crt, 1, -1), "basic constraints");
  check (gnutls_x509_crt_set_key_usage (cert->crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN),
         "key usage");
  cert_sign (cert, NULL);
  return cert;
}

PhTestCert *
ph_test_cert_new (PhTestCert *issuer, const char *common_name, const char *const *names,
                  gint64 not_before_s, gint64 not_after_s)
{
  PhTestCert *cert = cert_begin (common_name, not_before_s, not_after_s);

  check (gnutls_x509_crt_set_basic_constraints (cert->crt, 0, -1), "basic constraints");
  check (gnutls_x509_crt_set_key_usage (cert->crt, GNUTLS_KEY_DIGITAL_SIGNATURE), "key usage");
  check (gnutls_x509_crt_set_key_purpose_oid (cert->crt, GNUTLS_KP_TLS_WWW_SERVER, 0),
         "key purpose");
  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    {
      unsigned int flags = i == 0 ? GNUTLS_FSAN_SET : GNUTLS_FSAN_APPEND;
      g_autoptr (GInetAddress) ip = g_inet_address_new_from_string (names[i]);

      if (ip != NULL)
        check (gnutls_x509_crt_set_subject_alt_name (cert->crt, GNUTLS_SAN_IPADDRESS,
                                                     g_inet_address_to_bytes (ip),
                                                     g_inet_address_get_native_size (ip), flags),
               "IP SAN");
      else
        check (gnutls_x509_crt_set_subject_alt_name (cert->crt, GNUTLS_SAN_DNSNAME, names[i],
                                                     strlen (names[i]), flags),
               "DNS SAN");
    }
  cert_sign (cert, issuer);
  return cert;
}

const char *
ph_test_cert_get_pin (PhTestCert *cert)
{
  return cert->pin;
}

void
ph_test_cert_write_pem (PhTestCert *cert, const char *path)
{
  gnutls_datum_t pem = { NULL, 0 };
  g_autoptr (GError) error = NULL;

  check (gnutls_x509_crt_export2 (cert->crt, GNUTLS_X509_FMT_PEM, &pem), "export");
  if (!g_file_set_contents (path, (const char *) pem.data, pem.size, &error))
    g_error ("%s", error->message);
  gnutls_free (pem.data);
}

void
ph_test_cert_free (PhTestCert *cert)
{
  if (cert == NULL)
    return;
  gnutls_x509_crt_deinit (cert->crt);
  gnutls_x509_privkey_deinit (cert->key);
  g_free (cert->pin);
  g_free (cert);
}

/* ---- the server ---- */

struct _PhTestTlsServer
{
  GMutex lock;
  guint16 port;
  GSocket *listener; /* NULL while stopped */
  GThread *accept_thread;
  GCancellable *accept_cancel;
  gnutls_datum_t ticket_key;

  /* Under the lock. */
  PhTestTlsMode mode;
  gnutls_certificate_credentials_t creds;
  GPtrArray *all_creds; /* every one made; connections may still use an old one */
  guint connect_status;
  PhTestTlsCounts counts;
  char *last_sni;
  GPtrArray *snis;
  char *last_request;
  GPtrArray *conns; /* of PhTestTlsConn* */
  guint next_id;
};

typedef struct
{
  PhTestTlsServer *server;
  GSocket *socket;
  GCancellable *cancel; /* ends the connection: close_notify, then close */
  GThread *thread;
  guint id;
  PhTestTlsMode mode;
  gnutls_certificate_credentials_t creds;
  gnutls_session_t session;
  gboolean ticket_on_close; /* set before @cancel is cancelled */
} PhTestTlsConn;

static void
free_creds (gpointer creds)
{
  gnutls_certificate_free_credentials (creds);
}

static gnutls_certificate_credentials_t
creds_new (PhTestCert *cert)
{
  gnutls_certificate_credentials_t creds = NULL;

  check (gnutls_certificate_allocate_credentials (&creds), "credentials");
  check (gnutls_certificate_set_x509_key (creds, &cert->crt, 1, cert->key), "server key");
  return creds;
}

static ssize_t
conn_pull (gnutls_transport_ptr_t ptr, void *buf, size_t len)
{
  PhTestTlsConn *conn = ptr;
  g_autoptr (GError) error = NULL;
  gssize n = g_socket_receive (conn->socket, buf, len, conn->cancel, &error);

  if (n < 0)
    gnutls_transport_set_errno (conn->session, ECONNRESET);
  return n;
}

static int
conn_pull_timeout (gnutls_transport_ptr_t ptr, unsigned int ms)
{
  PhTestTlsConn *conn = ptr;
  g_autoptr (GError) error = NULL;
  gint64 us = ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (gint64) ms * 1000;

  if (g_socket_condition_timed_wait (conn->socket, G_IO_IN, us, conn->cancel, &error))
    return 1;
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ? 0 : -1;
}

static ssize_t
conn_push (gnutls_transport_ptr_t ptr, const void *buf, size_t len)
{
  PhTestTlsConn *conn = ptr;
  g_autoptr (GError) error = NULL;
  gssize n = g_socket_send (conn->socket, buf, len, NULL, &error);

  if (n < 0)
    gnutls_transport_set_errno (conn->session, ECONNRESET);
  return n;
}

/* Reads and drops everything until the peer closes or the connection is ended. */
static void
conn_drain (PhTestTlsConn *conn)
{
  char buf[4096];

  while (g_socket_condition_wait (conn->socket, G_IO_IN, conn->cancel, NULL)
         && g_socket_receive (conn->socket, buf, sizeof buf, conn->cancel, NULL) > 0)
    ;
}

static int
conn_client_hello (gnutls_session_t session)
{
  PhTestTlsConn *conn = gnutls_session_get_ptr (session);
  PhTestTlsServer *server = conn->server;
  char name[256];
  size_t len = sizeof name;
  unsigned int type = 0;
  char *sni;

  if (gnutls_server_name_get (session, name, &len, &type, 0) == 0 && type == GNUTLS_NAME_DNS)
    sni = g_strndup (name, len);
  else
    sni = g_strdup ("");
  g_mutex_lock (&server->lock);
  g_free (server->last_sni);
  server->last_sni = g_strdup (sni);
  g_ptr_array_add (server->snis, sni);
  g_mutex_unlock (&server->lock);
  return 0;
}

static gboolean
conn_send (PhTestTlsConn *conn, const char *data)
{
  gsize len = strlen (data);

  while (len > 0)
    {
      ssize_t n = gnutls_record_send (conn->session, data, len);

      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n < 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* Answers every complete request head in @in. */
static gboolean
conn_answer (PhTestTlsConn *conn, GByteArray *in)
{
  PhTestTlsServer *server = conn->server;

  for (;;)
    {
      gsize head_len = 0;
      g_autofree char *head = NULL;
      g_autofree char *reply = NULL;
      guint status;

      for (gsize i = 0; i + 4 <= in->len && head_len == 0; i++)
        if (memcmp (in->data + i, "\r\n\r\n", 4) == 0)
          head_len = i + 4;
      if (head_len == 0)
        return TRUE;
      head = g_strndup ((const char *) in->data, head_len);
      g_byte_array_remove_range (in, 0, (guint) head_len);

      g_mutex_lock (&server->lock);
      server->counts.requests++;
      g_free (server->last_request);
      server->last_request = g_strdup (head);
      status = server->connect_status;
      g_mutex_unlock (&server->lock);

      if (status == 200)
        reply = g_strdup_printf ("HTTP/1.1 200 Connection established\r\n"
                                 "X-Test-Connection: %u\r\n\r\n",
                                 conn->id);
      else if (status == 407)
        reply = g_strdup ("HTTP/1.1 407 Proxy Authentication Required\r\n"
                          "Proxy-Authenticate: Basic realm=\"pinhole-test\"\r\n"
                          "Content-Length: 0\r\n\r\n");
      else
        reply = g_strdup_printf ("HTTP/1.1 %u Test\r\nContent-Length: 0\r\n\r\n", status);
      if (!conn_send (conn, reply))
        return FALSE;
    }
}

static void
conn_tls (PhTestTlsConn *conn)
{
  PhTestTlsServer *server = conn->server;
  g_autoptr (GByteArray) in = g_byte_array_new ();
  int ret;

  check (gnutls_init (&conn->session, GNUTLS_SERVER), "server session");
  if (conn->mode == PH_TEST_TLS_ALERT)
    /* No cipher the client offers (it offers AES-GCM, ChaCha20, AES-CCM and AES-CBC). */
    check (gnutls_priority_set_direct (
               conn->session, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+CAMELLIA-256-GCM", NULL),
           "priority");
  else
    check (gnutls_set_default_priority (conn->session), "priority");
  check (gnutls_credentials_set (conn->session, GNUTLS_CRD_CERTIFICATE, conn->creds), "creds");
  check (gnutls_session_ticket_enable_server (conn->session, &server->ticket_key), "tickets");
  gnutls_session_set_ptr (conn->session, conn);
  gnutls_handshake_set_post_client_hello_function (conn->session, conn_client_hello);
  gnutls_transport_set_ptr (conn->session, conn);
  gnutls_transport_set_pull_function (conn->session, conn_pull);
  gnutls_transport_set_pull_timeout_function (conn->session, conn_pull_timeout);
  gnutls_transport_set_push_function (conn->session, conn_push);
  gnutls_handshake_set_timeout (conn->session, 10 * 1000);

  do
    ret = gnutls_handshake (conn->session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));
  if (ret < 0)
    {
      gnutls_alert_send_appropriate (conn->session, ret);
      g_mutex_lock (&server->lock);
      server->counts.failed++;
      g_mutex_unlock (&server->lock);
      conn_drain (conn);
      return;
    }
  g_mutex_lock (&server->lock);
  server->counts.handshakes++;
  if (gnutls_session_is_resumed (conn->session))
    server->counts.resumed++;
  g_mutex_unlock (&server->lock);

  for (;;)
    {
      char buf[4096];
      ssize_t n;

      if (gnutls_record_check_pending (conn->session) == 0
          && !g_socket_condition_wait (conn->socket, G_IO_IN, conn->cancel, NULL))
        {
          /* Ended by the test: the way a server closes an idle connection. */
          if (conn->ticket_on_close && gnutls_protocol_get_version (conn->session) == GNUTLS_TLS1_3)
            gnutls_session_ticket_send (conn->session, 1, 0);
          gnutls_bye (conn->session, GNUTLS_SHUT_WR);
          return;
        }
      n = gnutls_record_recv (conn->session, buf, sizeof buf);
      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n <= 0)
        return;
      g_byte_array_append (in, (const guint8 *) buf, (guint) n);
      if (!conn_answer (conn, in))
        return;
    }
}

static gpointer
conn_thread (gpointer data)
{
  PhTestTlsConn *conn = data;
  PhTestTlsServer *server = conn->server;

  switch (conn->mode)
    {
      case PH_TEST_TLS_SERVE:
      case PH_TEST_TLS_ALERT:
        conn_tls (conn);
        break;
      case PH_TEST_TLS_SILENT:
        conn_drain (conn);
        break;
      case PH_TEST_TLS_PLAIN:
        {
          static const char reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                      "Connection: close\r\n\r\n";
          g_socket_send (conn->socket, reply, sizeof reply - 1, NULL, NULL);
          conn_drain (conn);
          break;
        }
    }
  g_socket_close (conn->socket, NULL);
  g_mutex_lock (&server->lock);
  server->counts.open--;
  g_mutex_unlock (&server->lock);
  return NULL;
}

static void
conn_free (PhTestTlsConn *conn)
{
  if (conn->session != NULL)
    gnutls_deinit (conn->session);
  g_object_unref (conn->socket);
  g_object_unref (conn->cancel);
  g_free (conn);
}

static gpointer
accept_thread (gpointer data)
{
  PhTestTlsServer *server = data;

  for (;;)
    {
      g_autoptr (GError) error = NULL;
      GSocket *socket = g_socket_accept (server->listener, server->accept_cancel, &error);
      PhTestTlsConn *conn;

      if (socket == NULL)
        {
          if (g_cancellable_is_cancelled (server->accept_cancel))
            return NULL;
          continue;
        }
      g_socket_set_blocking (socket, TRUE);
      conn = g_new0 (PhTestTlsConn, 1);
      conn->server = server;
      conn->socket = socket;
      conn->cancel = g_cancellable_new ();
      g_mutex_lock (&server->lock);
      conn->id = ++server->next_id;
      conn->mode = server->mode;
      conn->creds = server->creds;
      server->counts.accepted++;
      server->counts.open++;
      g_ptr_array_add (server->conns, conn);
      conn->thread = g_thread_new ("ph-test-tls-conn", conn_thread, conn);
      g_mutex_unlock (&server->lock);
    }
}

PhTestTlsServer *
ph_test_tls_server_new (PhTestCert *cert)
{
  PhTestTlsServer *server = g_new0 (PhTestTlsServer, 1);

  g_mutex_init (&server->lock);
  server->mode = PH_TEST_TLS_SERVE;
  server->connect_status = 200;
  server->all_creds = g_ptr_array_new_with_free_func (free_creds);
  server->snis = g_ptr_array_new_with_free_func (g_free);
  server->conns = g_ptr_array_new ();
  check (gnutls_session_ticket_key_generate (&server->ticket_key), "ticket key");
  ph_test_tls_server_set_cert (server, cert);
  ph_test_tls_server_start (server);
  return server;
}

void
ph_test_tls_server_start (PhTestTlsServer *server)
{
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, server->port);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;

  g_assert (server->listener == NULL);
  server->listener
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (server->listener, addr, TRUE, &error);
  g_assert_no_error (error);
  g_socket_listen (server->listener, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (server->listener, &error);
  g_assert_no_error (error);
  server->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  server->accept_cancel = g_cancellable_new ();
  server->accept_thread = g_thread_new ("ph-test-tls-accept", accept_thread, server);
}

void
ph_test_tls_server_close_connections (PhTestTlsServer *server, gboolean ticket_first)
{
  g_autoptr (GPtrArray) conns = NULL;

  g_mutex_lock (&server->lock);
  conns = g_steal_pointer (&server->conns);
  server->conns = g_ptr_array_new ();
  g_mutex_unlock (&server->lock);
  for (guint i = 0; i < conns->len; i++)
    {
      PhTestTlsConn *conn = g_ptr_array_index (conns, i);
      conn->ticket_on_close = ticket_first;
      g_cancellable_cancel (conn->cancel);
    }
  for (guint i = 0; i < conns->len; i++)
    {
      PhTestTlsConn *conn = g_ptr_array_index (conns, i);
      g_thread_join (conn->thread);
      conn_free (conn);
    }
}

void
ph_test_tls_server_stop (PhTestTlsServer *server)
{
  if (server->listener == NULL)
    return;
  g_cancellable_cancel (server->accept_cancel);
  g_thread_join (g_steal_pointer (&server->accept_thread));
  g_clear_object (&server->accept_cancel);
  g_socket_close (server->listener, NULL);
  g_clear_object (&server->listener);
  ph_test_tls_server_close_connections (server, FALSE);
}

guint16
ph_test_tls_server_get_port (PhTestTlsServer *server)
{
  return server->port;
}

void
ph_test_tls_server_set_mode (PhTestTlsServer *server, PhTestTlsMode mode)
{
  g_mutex_lock (&server->lock);
  server->mode = mode;
  g_mutex_unlock (&server->lock);
}

void
ph_test_tls_server_set_cert (PhTestTlsServer *server, PhTestCert *cert)
{
  gnutls_certificate_credentials_t creds = creds_new (cert);

  g_mutex_lock (&server->lock);
  g_ptr_array_add (server->all_creds, creds);
  server->creds = creds;
  g_mutex_unlock (&server->lock);
}

void
ph_test_tls_server_set_connect_status (PhTestTlsServer *server, guint status)
{
  g_mutex_lock (&server->lock);
  server->connect_status = status;
  g_mutex_unlock (&server->lock);
}

void
ph_test_tls_server_get_counts (PhTestTlsServer *server, PhTestTlsCounts *counts)
{
  g_mutex_lock (&server->lock);
  *counts = server->counts;
  g_mutex_unlock (&server->lock);
}

char *
ph_test_tls_server_dup_last_sni (PhTestTlsServer *server)
{
  char *sni;

  g_mutex_lock (&server->lock);
  sni = g_strdup (server->last_sni);
  g_mutex_unlock (&server->lock);
  return sni;
}

GStrv
ph_test_tls_server_dup_snis (PhTestTlsServer *server)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  g_mutex_lock (&server->lock);
  for (guint i = 0; i < server->snis->len; i++)
    g_strv_builder_add (builder, g_ptr_array_index (server->snis, i));
  g_mutex_unlock (&server->lock);
  return g_strv_builder_end (builder);
}

char *
ph_test_tls_server_dup_last_request (PhTestTlsServer *server)
{
  char *request;

  g_mutex_lock (&server->lock);
  request = g_strdup (server->last_request);
  g_mutex_unlock (&server->lock);
  return request;
}

void
ph_test_tls_server_free (PhTestTlsServer *server)
{
  if (server == NULL)
    return;
  ph_test_tls_server_stop (server);
  g_ptr_array_unref (server->conns);
  g_ptr_array_unref (server->all_creds);
  g_ptr_array_unref (server->snis);
  g_free (server->last_sni);
  g_free (server->last_request);
  gnutls_free (server->ticket_key.data);
  g_mutex_clear (&server->lock);
  g_free (server);
}

/* ---- driving the engine's main loop ---- */

static gboolean
wake_cb (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

gboolean
ph_test_iterate_until (PhTestCondition cond, gpointer data, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  /* The server's threads change what @cond reads without waking this context. */
  guint wake = g_timeout_add (5, wake_cb, NULL);
  gboolean ok;

  while (!(ok = cond (data)) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (wake);
  return ok;
}

static gboolean
never (gpointer data)
{
  return FALSE;
}

void
ph_test_iterate_for (guint ms)
{
  ph_test_iterate_until (never, NULL, ms);
}
