/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-test-tls-server.h: certificates made in-process with GnuTLS and a small loopback TLS
 * server (a thread per connection) for the unit tests of the TLS client and the upstream pool. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* ---- certificates ---- */

typedef struct _PhTestCert PhTestCert;

/* A CA that may sign the others. */
PhTestCert *ph_test_cert_new_ca (const char *common_name);
/* A server certificate signed by @issuer (self-signed when NULL), with @names as its
 * subjectAltName (IP literals become IP addresses), valid from now + @not_before_s to now +
 * @not_after_s (seconds, negative for the past). */
PhTestCert *ph_test_cert_new (PhTestCert *issuer, const char *common_name, const char *const *names,
                              gint64 not_before_s, gint64 not_after_s);
/* "sha256//BASE64" of its SubjectPublicKeyInfo, computed here (not by the engine). */
const char *ph_test_cert_get_pin (PhTestCert *cert);
/* Writes it as PEM (for ca-file=). */
void ph_test_cert_write_pem (PhTestCert *cert, const char *path);
void ph_test_cert_free (PhTestCert *cert);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTestCert, ph_test_cert_free)

/* ---- the server ---- */

typedef enum
{
  /* TLS, then each request head is answered with connect-status (200 or 407); a 200 carries
   * "X-Test-Connection: N", the connection's number from 1. */
  PH_TEST_TLS_SERVE,
  /* Its TLS handshake fails on no common cipher and it sends the alert GnuTLS finds
   * appropriate (handshake_failure), as a misconfigured server would. */
  PH_TEST_TLS_ALERT,
  /* Accepts TCP and never says a word. */
  PH_TEST_TLS_SILENT,
  /* Answers in plain HTTP, as a server without TLS on the port. */
  PH_TEST_TLS_PLAIN,
} PhTestTlsMode;

typedef struct
{
  guint accepted;   /* TCP connections */
  guint handshakes; /* completed TLS handshakes */
  guint resumed;    /* of which resumed a session */
  guint failed;     /* TLS handshakes that failed */
  guint requests;   /* request heads answered */
  guint open;       /* connections not yet ended */
} PhTestTlsCounts;

typedef struct _PhTestTlsServer PhTestTlsServer;

/* Listens on 127.0.0.1 (a free port) presenting @cert, in PH_TEST_TLS_SERVE mode. */
PhTestTlsServer *ph_test_tls_server_new (PhTestCert *cert);
guint16 ph_test_tls_server_get_port (PhTestTlsServer *server);
/* For the connections accepted from now on. */
void ph_test_tls_server_set_mode (PhTestTlsServer *server, PhTestTlsMode mode);
void ph_test_tls_server_set_cert (PhTestTlsServer *server, PhTestCert *cert);
void ph_test_tls_server_set_connect_status (PhTestTlsServer *server, guint status);
/* Sends close_notify on every open connection and closes it; returns once they are closed.
 * With @ticket_first, a TLS 1.3 session ticket goes just before the close_notify (servers
 * send tickets whenever they like). */
void ph_test_tls_server_close_connections (PhTestTlsServer *server, gboolean ticket_first);
/* Stops listening and closes every connection: the port refuses connections. */
void ph_test_tls_server_stop (PhTestTlsServer *server);
/* Listens again on the same port. */
void ph_test_tls_server_start (PhTestTlsServer *server);
void ph_test_tls_server_get_counts (PhTestTlsServer *server, PhTestTlsCounts *counts);
/* The server name (SNI) of the last ClientHello: "" if it had none, NULL before any. */
char *ph_test_tls_server_dup_last_sni (PhTestTlsServer *server);
/* Every SNI seen, in order ("" for none). */
GStrv ph_test_tls_server_dup_snis (PhTestTlsServer *server);
/* The last request head received, or NULL. */
char *ph_test_tls_server_dup_last_request (PhTestTlsServer *server);
void ph_test_tls_server_free (PhTestTlsServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhTestTlsServer, ph_test_tls_server_free)

/* ---- driving the engine's main loop ---- */

typedef gboolean (*PhTestCondition) (gpointer data);
/* Iterates the default main context until @cond holds or @timeout_ms passes; returns
 * whether it holds. */
gboolean ph_test_iterate_until (PhTestCondition cond, gpointer data, guint timeout_ms);
/* Iterates the default main context for @ms. */
void ph_test_iterate_for (guint ms);

G_END_DECLS
