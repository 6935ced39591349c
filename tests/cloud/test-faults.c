/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-faults.c: the fault matrix: the real pinhole-agent against a real cloud end (stunnel +
 * Squid, the test origin) and, for faults those cannot make, a small TLS server of the test's
 * own with the cloud's key, all on loopback. Each case checks what the client sees, how fast,
 * the agent's access line, and that the agent serves a normal request afterwards. */

#define _GNU_SOURCE /* accept4, memmem */

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "ph-test-cloud.h"

#define PH_CASE_TIMEOUT_S 150
#define PH_BIG_BODY ((guint64) 100 * 1000 * 1000)
/* Interim responses the agent passes on before it gives up on an exchange. */
#define PH_INTERIM_CAP 32
/* A bound for answers that need no waiting on a timer: loopback, a loaded 2-core machine. */
#define PH_FAST_MS 1000

typedef struct
{
  const char *path;
  void (*func) (PhTestCloud *cloud);
} PhFaultCase;

/* ------------------------------------------------------------------------------------------ */
/* A fault server: a TCP relay to the real stunnel that can, per new connection, misbehave.   */

typedef enum
{
  PH_FAULT_FORWARD,    /* relay to the target port (the real stunnel) */
  PH_FAULT_RESET,      /* relay, then reset the agent's side after reset_after bytes to it */
  PH_FAULT_NO_TLS,     /* accept and read, never answer: TCP works, TLS never starts */
  PH_FAULT_TLS_ALERT,  /* a fatal handshake_failure alert instead of a ServerHello */
  PH_FAULT_TLS_SILENT, /* TLS with the cloud's key, then silence */
  PH_FAULT_LATE_ALERT, /* TLS, then a fatal alert instead of an answer */
  PH_FAULT_GARBAGE,    /* TLS, then bytes that are not HTTP */
  PH_FAULT_ANSWER,     /* TLS, then each request head answered (after answer_delay_ms) */
  PH_FAULT_ONE_ANSWER, /* TLS, the first request head answered (kept alive), then the next
                        * read and the connection closed without a word: a proxy closing a
                        * kept-alive connection just as it is reused */
} PhFaultMode;

typedef struct
{
  GMutex lock;
  PhFaultMode mode;
  guint16 target;
  guint64 reset_after;
  guint answer_delay_ms;
  char *answer; /* NULL: CONNECT gets 200, anything else a 200 "hello\n" */
  gnutls_certificate_credentials_t creds;
  int listen_fd;
  guint16 port;
  gboolean stopping;
  GThread *accept_thread;
  GPtrArray *threads; /* of GThread */
  GArray *fds;        /* of int: sockets of open connections */
  guint connections;
  guint resets;
} PhFault;

typedef struct
{
  PhFault *fault;
  int fd;
  PhFaultMode mode;
  guint16 target;
  guint64 reset_after;
  guint delay_ms;
  char *answer;
} PhFaultConn;

static void
ph_fault_track (PhFault *f, int fd)
{
  g_mutex_lock (&f->lock);
  g_array_append_val (f->fds, fd);
  g_mutex_unlock (&f->lock);
}

static void
ph_fault_close (PhFault *f, int fd)
{
  g_mutex_lock (&f->lock);
  for (guint i = 0; i < f->fds->len; i++)
    {
      if (g_array_index (f->fds, int, i) == fd)
        {
          g_array_remove_index_fast (f->fds, i);
          break;
        }
    }
  close (fd);
  g_mutex_unlock (&f->lock);
}

/* Wakes every open connection's thread; they end and close their sockets. */
static void
ph_fault_shutdown_all_locked (PhFault *f)
{
  for (guint i = 0; i < f->fds->len; i++)
    shutdown (g_array_index (f->fds, int, i), SHUT_RDWR);
}

static gboolean
ph_fault_send_all (int fd, const void *data, gsize len)
{
  const guint8 *p = data;

  while (len > 0)
    {
      gssize n = send (fd, p, len, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      len -= (gsize) n;
    }
  return TRUE;
}

static void
ph_fault_drain (int fd)
{
  char buf[16 * 1024];

  while (recv (fd, buf, sizeof buf, 0) > 0)
    ;
}

static int
ph_fault_dial (guint16 port)
{
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons (port) };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  if (fd >= 0 && connect (fd, (struct sockaddr *) &sin, sizeof sin) == 0)
    return fd;
  if (fd >= 0)
    close (fd);
  return -1;
}

/* Waits @ms, or less if the connection is shut down meanwhile. */
static void
ph_fault_pause (int fd, guint ms)
{
  struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };

  poll (&pfd, 1, (int) ms);
}

/* Moves what is readable on @from to @to; FALSE when this direction is over. */
static gboolean
ph_fault_pump (PhFaultConn *fc, int from, int to, gboolean down, guint64 *down_bytes,
               gboolean *broken)
{
  char buf[64 * 1024];
  gssize n = recv (from, buf, sizeof buf, 0);

  if (n <= 0)
    {
      /* A clean end goes on as a half-close; an error ends both directions. */
      *broken = n < 0;
      shutdown (to, SHUT_WR);
      return FALSE;
    }
  if (!ph_fault_send_all (to, buf, (gsize) n))
    {
      *broken = TRUE;
      return FALSE;
    }
  if (down && fc->mode == PH_FAULT_RESET && (*down_bytes += (guint64) n) >= fc->reset_after)
    {
      struct linger lg = { 1, 0 };

      /* A reset throws away what the agent has received and not read yet: a moment first, so
       * the download is seen to start before it is cut. */
      ph_fault_pause (fc->fd, 300);
      /* SO_LINGER 0: the close sends a reset, as a crashed middlebox would. */
      setsockopt (fc->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      g_mutex_lock (&fc->fault->lock);
      fc->fault->resets++;
      g_mutex_unlock (&fc->fault->lock);
      *broken = TRUE;
      return FALSE;
    }
  return TRUE;
}

static void
ph_fault_relay (PhFaultConn *fc)
{
  int up = ph_fault_dial (fc->target);
  struct pollfd pfd[2];
  gboolean open_in[2] = { TRUE, TRUE }; /* 0: agent -> target, 1: target -> agent */
  gboolean broken = FALSE;
  guint64 down = 0;

  if (up < 0)
    return;
  ph_fault_track (fc->fault, up);
  pfd[0] = (struct pollfd){ .fd = fc->fd, .events = POLLIN };
  pfd[1] = (struct pollfd){ .fd = up, .events = POLLIN };
  while ((open_in[0] || open_in[1]) && !broken)
    {
      if (poll (pfd, 2, -1) < 0)
        {
          broken = errno != EINTR;
          continue;
        }
      for (guint i = 0; i < 2 && !broken; i++)
        {
          if (!open_in[i] || pfd[i].revents == 0)
            continue;
          open_in[i] = ph_fault_pump (fc, pfd[i].fd, pfd[1 - i].fd, i == 1, &down, &broken);
          if (!open_in[i])
            pfd[i].fd = -1;
        }
    }
  ph_fault_close (fc->fault, up);
}

static gboolean
ph_fault_tls_send (gnutls_session_t session, const char *data, gsize len)
{
  while (len > 0)
    {
      ssize_t n = gnutls_record_send (session, data, len);

      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n < 0)
        return FALSE;
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

static void
ph_fault_tls (PhFaultConn *fc)
{
  static const char garbage[]
      = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n\x01\x02\xfe\xff\r\n\r\n";
  static const char hello[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";
  static const char established[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  gnutls_session_t session = NULL;
  g_autoptr (GByteArray) in = g_byte_array_new ();
  gboolean tunnel = FALSE;
  guint answered = 0;
  int ret;

  gnutls_init (&session, GNUTLS_SERVER);
  gnutls_set_default_priority (session);
  gnutls_credentials_set (session, GNUTLS_CRD_CERTIFICATE, fc->fault->creds);
  gnutls_transport_set_int (session, fc->fd);
  gnutls_handshake_set_timeout (session, 10 * 1000);
  do
    ret = gnutls_handshake (session);
  while (ret < 0 && !gnutls_error_is_fatal (ret));
  while (ret >= 0)
    {
      char buf[16 * 1024];
      ssize_t n = gnutls_record_recv (session, buf, sizeof buf);
      const guint8 *end;

      if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n <= 0)
        break;
      if (fc->mode == PH_FAULT_TLS_SILENT || tunnel)
        continue;
      g_byte_array_append (in, (const guint8 *) buf, (guint) n);
      while ((end = memmem (in->data, in->len, "\r\n\r\n", 4)) != NULL)
        {
          gboolean connect = in->len >= 8 && memcmp (in->data, "CONNECT ", 8) == 0;

          g_byte_array_remove_range (in, 0, (guint) (end - in->data) + 4);
          if (fc->mode == PH_FAULT_ONE_ANSWER && answered > 0)
            {
              ret = -1;
              break;
            }
          answered++;
          if (fc->mode == PH_FAULT_LATE_ALERT)
            {
              gnutls_alert_send (session, GNUTLS_AL_FATAL, GNUTLS_A_INTERNAL_ERROR);
              ret = -1;
              break;
            }
          if (fc->mode == PH_FAULT_GARBAGE)
            {
              ph_fault_tls_send (session, garbage, sizeof garbage - 1);
              continue;
            }
          ph_fault_pause (fc->fd, fc->delay_ms);
          if (fc->answer != NULL)
            ph_fault_tls_send (session, fc->answer, strlen (fc->answer));
          else if (connect)
            tunnel = ph_fault_tls_send (session, established, sizeof established - 1);
          else
            ph_fault_tls_send (session, hello, sizeof hello - 1);
          if (tunnel)
            break;
        }
    }
  if (fc->mode != PH_FAULT_ONE_ANSWER)
    ph_fault_drain (fc->fd);
  gnutls_deinit (session);
}

static gpointer
ph_fault_conn_thread (gpointer data)
{
  PhFaultConn *fc = data;
  /* A TLS record header, then a fatal (2) handshake_failure (40) alert. */
  static const guint8 alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28 };

  switch (fc->mode)
    {
      case PH_FAULT_FORWARD:
      case PH_FAULT_RESET:
        ph_fault_relay (fc);
        break;
      case PH_FAULT_NO_TLS:
        ph_fault_drain (fc->fd);
        break;
      case PH_FAULT_TLS_ALERT:
        {
          char hello[4096];

          /* After the ClientHello, so the alert answers it. */
          if (recv (fc->fd, hello, sizeof hello, 0) > 0)
            ph_fault_send_all (fc->fd, alert, sizeof alert);
          shutdown (fc->fd, SHUT_WR);
          ph_fault_drain (fc->fd);
          break;
        }
      case PH_FAULT_TLS_SILENT:
      case PH_FAULT_LATE_ALERT:
      case PH_FAULT_GARBAGE:
      case PH_FAULT_ANSWER:
      case PH_FAULT_ONE_ANSWER:
        ph_fault_tls (fc);
        break;
    }
  ph_fault_close (fc->fault, fc->fd);
  g_free (fc->answer);
  g_free (fc);
  return NULL;
}

static gpointer
ph_fault_accept_thread (gpointer data)
{
  PhFault *f = data;

  for (;;)
    {
      struct pollfd pfd = { .fd = f->listen_fd, .events = POLLIN };
      PhFaultConn *fc;
      gboolean stopping;
      int fd;

      g_mutex_lock (&f->lock);
      stopping = f->stopping;
      g_mutex_unlock (&f->lock);
      if (stopping)
        return NULL;
      if (poll (&pfd, 1, 50) <= 0)
        continue;
      fd = accept4 (f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
      if (fd < 0)
        continue;
      fc = g_new0 (PhFaultConn, 1);
      fc->fault = f;
      fc->fd = fd;
      g_mutex_lock (&f->lock);
      /* The mode of the moment it arrived, for the whole connection. */
      fc->mode = f->mode;
      fc->target = f->target;
      fc->reset_after = f->reset_after;
      fc->delay_ms = f->answer_delay_ms;
      fc->answer = g_strdup (f->answer);
      f->connections++;
      g_array_append_val (f->fds, fd);
      g_ptr_array_add (f->threads, g_thread_new ("ph-fault-conn", ph_fault_conn_thread, fc));
      g_mutex_unlock (&f->lock);
    }
}

/* Listens on 127.0.0.1:@port (0: any free port), with the cloud's key for the TLS modes. */
static PhFault *
ph_fault_new (PhTestCloud *cloud, guint16 port, PhFaultMode mode)
{
  PhFault *f = g_new0 (PhFault, 1);
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons (port) };
  socklen_t len = sizeof sin;
  int one = 1;

  g_mutex_init (&f->lock);
  f->mode = mode;
  f->target = cloud->tls_port;
  f->threads = g_ptr_array_new ();
  f->fds = g_array_new (FALSE, FALSE, sizeof (int));
  g_assert_cmpint (gnutls_certificate_allocate_credentials (&f->creds), >=, 0);
  g_assert_cmpint (
      gnutls_certificate_set_x509_key_file (f->creds, cloud->cert, cloud->key, GNUTLS_X509_FMT_PEM),
      >=, 0);
  sin.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  f->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (f->listen_fd, >=, 0);
  setsockopt (f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (f->listen_fd, (struct sockaddr *) &sin, sizeof sin) != 0
      || listen (f->listen_fd, 128) != 0)
    g_error ("fault server: cannot listen on 127.0.0.1:%u: %s", port, g_strerror (errno));
  getsockname (f->listen_fd, (struct sockaddr *) &sin, &len);
  f->port = ntohs (sin.sin_port);
  f->accept_thread = g_thread_new ("ph-fault", ph_fault_accept_thread, f);
  return f;
}

/* New connections get @mode; open ones are cut, so none of the old mode lingers. */
static void
ph_fault_set_mode (PhFault *f, PhFaultMode mode)
{
  g_mutex_lock (&f->lock);
  f->mode = mode;
  ph_fault_shutdown_all_locked (f);
  g_mutex_unlock (&f->lock);
}

static void
ph_fault_set_target (PhFault *f, guint16 port)
{
  g_mutex_lock (&f->lock);
  f->target = port;
  ph_fault_shutdown_all_locked (f);
  g_mutex_unlock (&f->lock);
}

static void
ph_fault_set_answer (PhFault *f, const char *answer, guint delay_ms)
{
  g_mutex_lock (&f->lock);
  g_free (f->answer);
  f->answer = g_strdup (answer);
  f->answer_delay_ms = delay_ms;
  g_mutex_unlock (&f->lock);
}

static guint
ph_fault_get_resets (PhFault *f)
{
  guint n;

  g_mutex_lock (&f->lock);
  n = f->resets;
  g_mutex_unlock (&f->lock);
  return n;
}

static guint
ph_fault_get_connections (PhFault *f)
{
  guint n;

  g_mutex_lock (&f->lock);
  n = f->connections;
  g_mutex_unlock (&f->lock);
  return n;
}

static void
ph_fault_free (PhFault *f)
{
  if (f == NULL)
    return;
  g_mutex_lock (&f->lock);
  f->stopping = TRUE;
  g_mutex_unlock (&f->lock);
  g_thread_join (f->accept_thread);
  close (f->listen_fd);
  g_mutex_lock (&f->lock);
  ph_fault_shutdown_all_locked (f);
  g_mutex_unlock (&f->lock);
  for (guint i = 0; i < f->threads->len; i++)
    g_thread_join (g_ptr_array_index (f->threads, i));
  g_ptr_array_unref (f->threads);
  g_array_unref (f->fds);
  gnutls_certificate_free_credentials (f->creds);
  g_free (f->answer);
  g_mutex_clear (&f->lock);
  g_free (f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhFault, ph_fault_free)

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */

static gint64
ph_ms_since (gint64 start_us)
{
  return (g_get_monotonic_time () - start_us) / 1000;
}

static guint
ph_count_access (PhTestAgent *agent, const char *const *fields)
{
  g_autoptr (GPtrArray) lines = ph_test_agent_access_lines (agent, fields);

  return lines->len;
}

/* An answer passed on as it is was no failure of the agent's: its lines carry no error=. */
static void
ph_assert_access_no_error (PhTestAgent *agent, const char *const *fields)
{
  g_autoptr (GPtrArray) lines = ph_test_agent_access_lines (agent, fields);

  g_assert_cmpuint (lines->len, >, 0);
  for (guint i = 0; i < lines->len; i++)
    {
      if (strstr (g_ptr_array_index (lines, i), " error=") != NULL)
        g_printerr ("# logged as an error: %s\n", (char *) g_ptr_array_index (lines, i));
      g_assert_null (strstr (g_ptr_array_index (lines, i), " error="));
    }
}

/* The agent did not crash or complain about itself. */
static void
ph_assert_healthy (PhTestAgent *agent)
{
  g_autofree char *log = ph_test_agent_log (agent);
  g_autofree char *lower = g_ascii_strdown (log, -1);
  const char *const bad[] = { "critical", "assertion", "g_array", "double free", "segmentation" };

  if (!ph_test_agent_is_running (agent))
    ph_test_agent_print_log (agent, "the agent died");
  g_assert_true (ph_test_agent_is_running (agent));
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      if (strstr (lower, bad[i]) != NULL)
        {
          g_autofree char *why = g_strdup_printf ("the agent's log mentions “%s”", bad[i]);

          ph_test_agent_print_log (agent, why);
        }
      g_assert_null (strstr (lower, bad[i]));
    }
}

/* A normal request through the agent: GET http://origin/hello. */
static void
ph_assert_serves (PhTestAgent *agent, PhTestCloud *cloud)
{
  g_autofree char *request = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *body = NULL;
  gint64 ms = 0;
  g_autofree char *head = ph_test_exchange (agent->port, request, &body, &ms, 10000);

  if (ph_test_head_status (head) != 200 || g_strcmp0 (body, "hello\n") != 0)
    {
      g_printerr ("# GET /hello after the fault: %s%s\n", head ? head : "(no response)\n",
                  body ? body : "");
      ph_test_agent_print_log (agent, "not serving after the fault");
    }
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_assert_cmpstr (body, ==, "hello\n");
  ph_assert_healthy (agent);
}

/* After a reload: the agent applies it asynchronously, so poll (bounded) for a 200. */
static void
ph_assert_serves_after_reload (PhTestAgent *agent, PhTestCloud *cloud)
{
  g_autofree char *request = ph_test_get_request (cloud->origin_http_port, "/hello");
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      g_autofree char *head = ph_test_exchange (agent->port, request, NULL, NULL, 5000);

      if (ph_test_head_status (head) == 200)
        break;
      g_usleep (100 * 1000);
    }
  ph_assert_serves (agent, cloud);
}

/* A config for an agent behind the fault server: no warm pool, so each request makes its own
 * upstream connection and meets the fault of the moment. */
static GKeyFile *
ph_fault_config (PhTestCloud *cloud, PhFault *fault)
{
  GKeyFile *kf = ph_test_agent_config (cloud);

  g_key_file_set_integer (kf, "upstream", "port", fault->port);
  g_key_file_set_integer (kf, "upstream", "warm", 0);
  return kf;
}

/* @request through @agent gets the refusal @status/@kind within @max_ms (and, when @min_ms > 0,
 * not before: a timer that fires early is a bug too), and the agent logs it. */
static void
ph_assert_refused (PhTestAgent *agent, const char *request, int status, const char *kind,
                   gint64 min_ms, gint64 max_ms)
{
  gboolean connect = g_str_has_prefix (request, "CONNECT ");
  g_autofree char *error_field = g_strconcat ("error=", kind, NULL);
  g_autofree char *status_field = g_strdup_printf ("status=%d", status);
  const char *const fields[]
      = { connect ? "method=CONNECT" : "method=GET", status_field, error_field, NULL };
  guint logged = ph_count_access (agent, fields);
  g_autofree char *body = NULL;
  gint64 ms = 0;
  g_autofree char *head
      = ph_test_exchange (agent->port, request, &body, &ms, (guint) max_ms + 10000);

  g_test_message ("%s: %d %s after %" G_GINT64_FORMAT " ms", connect ? "CONNECT" : "GET",
                  ph_test_head_status (head), kind, ms);
  ph_test_assert_refusal (agent, head, body, status, kind);
  g_assert_cmpint (ms, <=, max_ms);
  g_assert_cmpint (ms, >=, min_ms);
  ph_test_agent_assert_access (agent, fields, logged + 1, 3000);
}

/* The same for a GET and a CONNECT. */
static void
ph_assert_both_refused (PhTestAgent *agent, PhTestCloud *cloud, int status, const char *kind,
                        gint64 min_ms, gint64 max_ms)
{
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *connect = ph_test_connect_request (cloud->origin_https_port);

  ph_assert_refused (agent, get, status, kind, min_ms, max_ms);
  ph_assert_refused (agent, connect, status, kind, min_ms, max_ms);
}

/* A CONNECT tunnel to the origin's plain port, proven live by one request through it. */
static PhTestConn *
ph_open_tunnel (PhTestAgent *agent, PhTestCloud *cloud)
{
  g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *inner = g_strdup_printf ("GET /hello HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
                                            cloud->origin_http_port);
  g_autofree char *established = NULL;
  g_autofree char *head = NULL;
  g_autoptr (GByteArray) body = g_byte_array_new ();

  ph_test_conn_send (conn, connect, -1);
  established = ph_test_conn_read_head (conn, 10000);
  if (ph_test_head_status (established) != 200)
    ph_test_agent_print_log (agent, "a tunnel did not open");
  g_assert_cmpint (ph_test_head_status (established), ==, 200);
  ph_test_conn_send (conn, inner, -1);
  head = ph_test_conn_read_head (conn, 10000);
  g_assert_cmpint (ph_test_head_status (head), ==, 200);
  g_assert_cmpuint (ph_test_conn_read_body (conn, 6, body, 10000), ==, 6);
  return g_steal_pointer (&conn);
}

/* ------------------------------------------------------------------------------------------ */
/* The retry rule of the idle pool                                                            */

/* One request on a new client connection; its status, and the answer's body in *@body. */
static int
ph_exchange_status (PhTestAgent *agent, const char *request, char **body)
{
  g_autofree char *head = ph_test_exchange (agent->port, request, body, NULL, 15000);

  return ph_test_head_status (head);
}

/* A proxy that closes a kept-alive connection just as the agent reuses it from the idle pool
 * (RFC 9110 §9.2.2): an idempotent request without a body goes again on a fresh connection and
 * the client sees only the answer; a request with a body already sent, or a method that is not
 * idempotent, is not repeated, and the client gets a 502 saying why, not a reset. */
static void
ph_faults_reused_closed (PhTestCloud *cloud)
{
  g_autoptr (PhFault) fault = ph_fault_new (cloud, 0, PH_FAULT_ONE_ANSWER);
  g_autoptr (GKeyFile) kf = ph_fault_config (cloud, fault);
  g_autoptr (PhTestAgent) agent = NULL;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *post = g_strdup_printf (
      "POST http://127.0.0.1:%u/sha256 HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: 5\r\n"
      "\r\nhello",
      cloud->origin_http_port, cloud->origin_http_port);
  g_autofree char *empty_post = g_strdup_printf (
      "POST http://127.0.0.1:%u/hello HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: 0\r\n\r\n",
      cloud->origin_http_port, cloud->origin_http_port);
  const char *const retried[] = { "method=GET", "status=200", NULL };
  guint before;

  g_key_file_set_string (kf, "log", "level", "debug");
  agent = ph_test_agent_start (cloud, "reused-closed", kf);
  /* With warm=0 the agent makes one connection at start to see that the cloud answers. */
  g_assert_true (ph_test_agent_wait_log (agent, "TLS with ", 1, 10000));

  /* A first GET leaves its connection in the idle pool. */
  {
    g_autofree char *body = NULL;

    before = ph_fault_get_connections (fault);
    g_assert_cmpint (ph_exchange_status (agent, get, &body), ==, 200);
    g_assert_cmpstr (body, ==, "hello\n");
    g_assert_cmpuint (ph_fault_get_connections (fault), ==, before + 1);
  }
  /* The next client's GET takes it; the proxy closes it unanswered; the GET goes again on a
   * fresh connection, once, and the client sees the 200. */
  {
    g_autofree char *body = NULL;

    before = ph_fault_get_connections (fault);
    g_assert_cmpint (ph_exchange_status (agent, get, &body), ==, 200);
    g_assert_cmpstr (body, ==, "hello\n");
    g_assert_cmpuint (ph_fault_get_connections (fault), ==, before + 1);
    g_assert_true (ph_test_agent_wait_log (agent, "sending it again on a fresh one", 1, 3000));
    ph_test_agent_assert_access (agent, retried, 2, 3000);
  }
  /* A POST with a body takes the pooled connection of that retry: not repeated, 502. */
  {
    g_autofree char *head = NULL;
    g_autofree char *body = NULL;

    before = ph_fault_get_connections (fault);
    head = ph_test_exchange (agent->port, post, &body, NULL, 15000);
    ph_test_assert_refusal (agent, head, body, 502, "upstream-reset");
    g_assert_nonnull (strstr (body, "has a body that was already sent"));
    g_assert_cmpuint (ph_fault_get_connections (fault), ==, before);
  }
  /* A GET fills the pool again (a new connection), then a POST without a body: not idempotent,
   * not repeated. */
  {
    g_autofree char *head = NULL;
    g_autofree char *body = NULL;
    g_autofree char *hello = NULL;

    g_assert_cmpint (ph_exchange_status (agent, get, &hello), ==, 200);
    before = ph_fault_get_connections (fault);
    head = ph_test_exchange (agent->port, empty_post, &body, NULL, 15000);
    ph_test_assert_refusal (agent, head, body, 502, "upstream-reset");
    g_assert_nonnull (strstr (body, "is not idempotent"));
    g_assert_cmpuint (ph_fault_get_connections (fault), ==, before);
  }
  {
    g_autofree char *log = ph_test_agent_log (agent);
    const char *first = strstr (log, "sending it again on a fresh one");

    /* Only the GET was sent again. */
    g_assert_nonnull (first);
    g_assert_null (strstr (first + 1, "sending it again on a fresh one"));
  }
  ph_fault_set_mode (fault, PH_FAULT_FORWARD);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

/* ------------------------------------------------------------------------------------------ */
/* The cloud proxy unreachable, cut or killed                                                 */

static void
ph_faults_refused (PhTestCloud *cloud)
{
  guint16 port = ph_test_free_port ();
  g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) agent = NULL;
  g_autoptr (PhFault) back = NULL;

  g_key_file_set_integer (kf, "upstream", "port", port);
  agent = ph_test_agent_start (cloud, "refused", kf);
  ph_assert_both_refused (agent, cloud, 502, "upstream-tcp", 0, PH_FAST_MS);

  /* The cloud proxy comes back on the same port: served without a reload. */
  back = ph_fault_new (cloud, port, PH_FAULT_FORWARD);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

/* A name that cannot resolve. A label longer than 63 bytes makes the resolver fail on this
 * machine, before any query: does-not-exist.invalid itself would be asked of the nameserver,
 * which is not on loopback. */
static void
ph_faults_unresolvable (PhTestCloud *cloud)
{
  g_autofree char *label = g_strnfill (64, 'x');
  g_autofree char *host = g_strconcat (label, ".does-not-exist.invalid", NULL);
  g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) agent = NULL;

  g_key_file_set_string (kf, "upstream", "host", host);
  agent = ph_test_agent_start (cloud, "unresolvable", kf);
  ph_assert_both_refused (agent, cloud, 502, "upstream-tcp", 0, PH_FAST_MS);

  g_key_file_set_string (kf, "upstream", "host", "127.0.0.1");
  ph_test_agent_write_config (agent, kf);
  ph_test_agent_signal (agent, SIGHUP);
  ph_assert_serves_after_reload (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

/* The agent's TCP connection to the cloud proxy is reset in the middle of a download: the
 * client must see a cut transfer (a reset), never a clean end. */
static void
ph_faults_upstream_reset (PhTestCloud *cloud)
{
  g_autoptr (PhFault) fault = ph_fault_new (cloud, 0, PH_FAULT_FORWARD);
  g_autoptr (GKeyFile) kf = ph_fault_config (cloud, fault);
  g_autoptr (PhTestAgent) agent = ph_test_agent_start (cloud, "upstream-reset", kf);
  g_autofree char *path = g_strdup_printf ("/bytes/%" G_GUINT64_FORMAT, PH_BIG_BODY);
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, path);
  g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
  g_autofree char *inner = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", path,
                                            cloud->origin_http_port);

  g_mutex_lock (&fault->lock);
  fault->reset_after = 2 * 1024 * 1024;
  g_mutex_unlock (&fault->lock);
  ph_fault_set_mode (fault, PH_FAULT_RESET);
  for (guint i = 0; i < 2; i++)
    {
      guint resets = ph_fault_get_resets (fault);
      g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
      g_autofree char *head = NULL;
      guint64 got = 0;
      PhTestConnEnd end;
      gint64 start = g_get_monotonic_time ();

      if (i == 0)
        {
          g_autofree char *established = NULL;

          ph_test_conn_send (conn, connect, -1);
          established = ph_test_conn_read_head (conn, 10000);
          g_assert_cmpint (ph_test_head_status (established), ==, 200);
          ph_test_conn_send (conn, inner, -1);
        }
      else
        {
          ph_test_conn_send (conn, get, -1);
        }
      /* What the client gets up to the end, whenever the cut comes. */
      end = ph_test_conn_wait_end (conn, 10000, &got);
      head = g_strndup ((const char *) conn->pending->data, MIN (conn->pending->len, 64));
      if (got > 0 && !g_str_has_prefix (head, "HTTP/1.1 200 "))
        g_printerr ("# the download began with: %s\n", head);
      g_assert_true (got == 0 || g_str_has_prefix (head, "HTTP/1.1 200 "));
      g_test_message ("%s: %s after %" G_GUINT64_FORMAT " body bytes, %" G_GINT64_FORMAT " ms",
                      i == 0 ? "tunnel" : "plain",
                      end == PH_TEST_CONN_RESET ? "reset"
                      : end == PH_TEST_CONN_EOF ? "clean end"
                                                : "still open",
                      got, ph_ms_since (start));
      if (end != PH_TEST_CONN_RESET)
        ph_test_agent_print_log (agent, "the cut transfer did not end with a reset");
      g_assert_cmpint (end, ==, PH_TEST_CONN_RESET);
      g_assert_cmpuint (got, <, PH_BIG_BODY);
      g_assert_cmpint (ph_ms_since (start), <, 5000);
      g_assert_cmpuint (ph_fault_get_resets (fault), ==, resets + 1);
    }
  ph_test_agent_assert_access (
      agent, (const char *[]){ "method=CONNECT", "error=upstream-reset", NULL }, 1, 3000);
  ph_test_agent_assert_access (
      agent, (const char *[]){ "method=GET", "error=upstream-reset", NULL }, 1, 3000);

  ph_fault_set_mode (fault, PH_FAULT_FORWARD);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

/* stunnel killed with 50 tunnels open: every client sees its connection end promptly, and once
 * stunnel is back the same agent serves again. A cloud end of its own: this one is broken. */
static void
ph_faults_cloud_killed (PhTestCloud *unused)
{
  const guint n_tunnels = 50;
  g_autoptr (PhTestCloud) cloud = ph_test_cloud_new ("PH_CLOUD_ORIGIN=1", NULL);
  g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) agent = ph_test_agent_start (cloud, "cloud-killed", kf);
  g_autoptr (GPtrArray) tunnels
      = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_test_conn_free);
  gint64 start, slowest = 0;

  for (guint i = 0; i < n_tunnels; i++)
    g_ptr_array_add (tunnels, ph_open_tunnel (agent, cloud));
  start = g_get_monotonic_time ();
  ph_test_cloud_kill_stunnel (cloud, SIGKILL);
  for (guint i = 0; i < n_tunnels; i++)
    {
      gint64 left = 3000 - ph_ms_since (start);
      PhTestConnEnd end
          = ph_test_conn_wait_end (g_ptr_array_index (tunnels, i), (guint) MAX (left, 0), NULL);

      if (end == PH_TEST_CONN_TIMEOUT)
        {
          g_autofree char *why = g_strdup_printf ("tunnel %u still open 3 s after stunnel died", i);

          ph_test_agent_print_log (agent, why);
        }
      g_assert_cmpint (end, !=, PH_TEST_CONN_TIMEOUT);
    }
  slowest = ph_ms_since (start);
  g_test_message ("all %u tunnels ended within %" G_GINT64_FORMAT " ms", n_tunnels, slowest);
  /* Logged while the clients still hold their ends: it was the cloud side that broke. */
  ph_test_agent_assert_access (
      agent, (const char *[]){ "method=CONNECT", "error=upstream-reset", NULL }, n_tunnels, 3000);
  g_ptr_array_set_size (tunnels, 0);

  ph_test_cloud_restart_stunnel (cloud);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

/* ------------------------------------------------------------------------------------------ */
/* A cloud proxy that accepts but misbehaves (the test's own server with the cloud's key)    */

static void
ph_faults_no_tls (PhTestCloud *cloud)
{
  g_autoptr (PhFault) fault = ph_fault_new (cloud, 0, PH_FAULT_NO_TLS);
  g_autoptr (GKeyFile) kf = ph_fault_config (cloud, fault);
  g_autoptr (PhTestAgent) agent = NULL;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *connect = ph_test_connect_request (cloud->origin_https_port);

  g_key_file_set_string (kf, "upstream", "handshake-timeout", "1s");
  agent = ph_test_agent_start (cloud, "no-tls", kf);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *body = NULL;
      gint64 ms = 0;
      g_autofree char *head
          = ph_test_exchange (agent->port, i == 0 ? get : connect, &body, &ms, 10000);
      g_autofree char *kind = ph_test_head_header (head, "X-Pinhole-Error");
      int status = ph_test_head_status (head);
      g_autofree char *field = g_strconcat ("error=", kind ? kind : "?", NULL);

      g_test_message ("%s: %d %s after %" G_GINT64_FORMAT " ms", i == 0 ? "GET" : "CONNECT", status,
                      kind ? kind : "-", ms);
      /* Either is right for a handshake that never completes; nothing else is. */
      if (status == 504)
        ph_test_assert_refusal (agent, head, body, 504, "upstream-timeout");
      else
        ph_test_assert_refusal (agent, head, body, 502, "upstream-tls");
      /* handshake-timeout=1s; the agent checks its timers every 250 ms */
      g_assert_cmpint (ms, >=, 900);
      g_assert_cmpint (ms, <, 2500);
      ph_test_agent_assert_access (
          agent, (const char *[]){ i == 0 ? "method=GET" : "method=CONNECT", field, NULL }, 1,
          3000);
    }
  ph_fault_set_mode (fault, PH_FAULT_FORWARD);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

static void
ph_faults_silence (PhTestCloud *cloud)
{
  g_autoptr (PhFault) fault = ph_fault_new (cloud, 0, PH_FAULT_TLS_SILENT);
  g_autoptr (GKeyFile) kf = ph_fault_config (cloud, fault);
  g_autoptr (PhTestAgent) agent = NULL;

  g_key_file_set_string (kf, "upstream", "response-timeout", "1s");
  agent = ph_test_agent_start (cloud, "silence", kf);
  ph_assert_both_refused (agent, cloud, 504, "upstream-timeout", 900, 2500);
  ph_fault_set_mode (fault, PH_FAULT_FORWARD);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

static void
ph_faults_tls_alert (PhTestCloud *cloud)
{
  g_autoptr (PhFault) fault = ph_fault_new (cloud, 0, PH_FAULT_TLS_ALERT);
  g_autoptr (GKeyFile) kf = ph_fault_config (cloud, fault);
  g_autoptr (PhTestAgent) agent = ph_test_agent_start (cloud, "tls-alert", kf);

  /* In place of the ServerHello... */
  ph_assert_both_refused (agent, cloud, 502, "upstream-tls", 0, PH_FAST_MS);
  /* ...and in place of the answer, after a good handshake. */
  ph_fault_set_mode (fault, PH_FAULT_LATE_ALERT);
  ph_assert_both_refused (agent, cloud, 502, "upstream-tls", 0, PH_FAST_MS);
  ph_test_agent_assert_access (agent, (const char *[]){ "error=upstream-tls", NULL }, 4, 3000);
  ph_fault_set_mode (fault, PH_FAULT_FORWARD);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

static void
ph_faults_garbage (PhTestCloud *cloud)
{
  g_autoptr (PhFault) fault = ph_fault_new (cloud, 0, PH_FAULT_GARBAGE);
  g_autoptr (GKeyFile) kf = ph_fault_config (cloud, fault);
  g_autoptr (PhTestAgent) agent = ph_test_agent_start (cloud, "garbage", kf);

  ph_assert_both_refused (agent, cloud, 502, "upstream-protocol", 0, PH_FAST_MS);
  ph_fault_set_mode (fault, PH_FAULT_FORWARD);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

/* The agent is pinned to the cloud's key and meets another: refused, naming the key it saw,
 * and not a byte of a request sent. */
static void
ph_faults_pin_mismatch (PhTestCloud *cloud)
{
  g_autoptr (PhTestRecorder) impostor = ph_test_recorder_new (PH_TEST_RECORDER_SILENT);
  g_autoptr (PhFault) fault = ph_fault_new (cloud, 0, PH_FAULT_FORWARD);
  g_autoptr (GKeyFile) kf = ph_fault_config (cloud, fault);
  g_autoptr (PhTestAgent) agent = NULL;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autoptr (GBytes) plain = NULL;

  ph_fault_set_target (fault, ph_test_recorder_get_port (impostor));
  agent = ph_test_agent_start (cloud, "pin-mismatch", kf);
  ph_assert_both_refused (agent, cloud, 502, "pin-mismatch", 0, PH_FAST_MS);
  {
    g_autofree char *body = NULL;
    g_autofree char *head = ph_test_exchange (agent->port, get, &body, NULL, 10000);

    ph_test_assert_refusal (agent, head, body, 502, "pin-mismatch");
    if (strstr (body, ph_test_recorder_get_pin (impostor)) == NULL)
      g_printerr ("# the body does not name the pin seen (%s): %s\n",
                  ph_test_recorder_get_pin (impostor), body);
    g_assert_nonnull (strstr (body, ph_test_recorder_get_pin (impostor)));
  }
  plain = ph_test_recorder_get_plain (impostor);
  g_assert_cmpuint (g_bytes_get_size (plain), ==, 0);

  ph_fault_set_target (fault, cloud->tls_port);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

/* ------------------------------------------------------------------------------------------ */
/* Answers from the cloud proxy and from origins                                              */

/* The cloud proxy answers 407 to a wrong password: auth-rejected; and the requests after it are
 * refused by the agent itself, the password not sent again (Squid sees no new attempt) until
 * the credentials change. */
static void
ph_faults_proxy_407 (PhTestCloud *cloud)
{
  g_autofree char *pw_path = g_build_filename (cloud->dir, "faults-wrong-password", NULL);
  g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) agent = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *connect = ph_test_connect_request (cloud->origin_https_port);
  const char *needle = "/407 ";
  guint before, first, after;

  g_file_set_contents_full (pw_path, "not-the-password", -1, G_FILE_SET_CONTENTS_NONE, 0600,
                            &error);
  g_assert_no_error (error);
  g_key_file_set_string (kf, "upstream", "password-file", pw_path);
  before = ph_test_cloud_settled_access_log_lines (cloud, needle);
  agent = ph_test_agent_start (cloud, "proxy-407", kf);
  ph_assert_refused (agent, get, 502, "auth-rejected", 0, 2000);
  first = ph_test_cloud_settled_access_log_lines (cloud, needle);
  ph_assert_refused (agent, connect, 502, "auth-rejected", 0, PH_FAST_MS);
  ph_assert_refused (agent, get, 502, "auth-rejected", 0, PH_FAST_MS);
  after = ph_test_cloud_settled_access_log_lines (cloud, needle);
  g_test_message ("Squid answered 407 %u times to the first request, %u times after",
                  first - before, after - first);
  g_assert_cmpuint (first - before, >=, 1);
  g_assert_cmpuint (after, ==, first);

  g_file_set_contents_full (pw_path, cloud->password, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error);
  g_assert_no_error (error);
  ph_test_agent_signal (agent, SIGHUP);
  ph_assert_serves_after_reload (agent, cloud);
  ph_test_agent_stop_ok (agent);
  g_unlink (pw_path);
}

/* An origin's 407 to a plain http:// request is the origin's business: it reaches the client as
 * the origin sent it, and the tunnel stays on for everyone (regression: any website could
 * switch Pinhole off by answering 407). */
static void
ph_faults_origin_407 (PhTestCloud *cloud)
{
  g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) agent = ph_test_agent_start (cloud, "origin-407", kf);
  const char *const paths[] = { "/status/407", "/status/407?challenge=1" };
  g_autofree char *expected_body = ph_test_status_body (407);

  for (gsize i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autofree char *request = ph_test_get_request (cloud->origin_http_port, paths[i]);
      g_autofree char *body = NULL;
      gint64 ms = 0;
      g_autofree char *head = ph_test_exchange (agent->port, request, &body, &ms, 10000);
      g_autofree char *kind = ph_test_head_header (head, "X-Pinhole-Error");
      g_autofree char *origin_status = ph_test_head_header (head, "X-Origin-Status");
      g_autofree char *server = ph_test_head_header (head, "Server");

      g_test_message ("%s:\n%s%s", paths[i], head ? head : "(no response)\n", body ? body : "");
      if (head == NULL
          || !g_str_has_prefix (head, "HTTP/1.1 407 Proxy Authentication Required\r\n"))
        ph_test_agent_print_log (agent, "the origin's 407 did not come through");
      g_assert_nonnull (head);
      g_assert_true (g_str_has_prefix (head, "HTTP/1.1 407 Proxy Authentication Required\r\n"));
      g_assert_null (kind);
      g_assert_cmpstr (origin_status, ==, "407");
      g_assert_cmpstr (server, ==, "ph-test-origin");
      g_assert_cmpstr (body, ==, expected_body);
      g_assert_cmpint (ms, <, PH_FAST_MS);
      ph_test_agent_assert_access (agent, (const char *[]){ "method=GET", "status=407", NULL },
                                   i + 1, 3000);
      ph_assert_access_no_error (agent, (const char *[]){ "method=GET", "status=407", NULL });
      /* The next request, on a new connection, still goes through. */
      ph_assert_serves (agent, cloud);
    }
  g_assert_cmpuint (ph_count_access (agent, (const char *[]){ "error=auth-rejected", NULL }), ==,
                    0);
  ph_test_agent_stop_ok (agent);
}

static void
ph_assert_passed_on (PhTestAgent *agent, const char *head, const char *body, int status,
                     const char *squid_error)
{
  g_autofree char *kind = ph_test_head_header (head, "X-Pinhole-Error");
  g_autofree char *squid = ph_test_head_header (head, "X-Squid-Error");
  g_autofree char *length = ph_test_head_header (head, "Content-Length");

  if (ph_test_head_status (head) != status || kind != NULL)
    ph_test_agent_print_log (agent, "the cloud proxy's answer was not passed on");
  g_assert_cmpint (ph_test_head_status (head), ==, status);
  g_assert_null (kind);
  if (squid_error != NULL)
    {
      g_assert_nonnull (squid);
      g_assert_true (g_str_has_prefix (squid, squid_error));
    }
  if (length != NULL)
    g_assert_cmpuint (strlen (body), ==, g_ascii_strtoull (length, NULL, 10));
}

/* Squid's own refusals and failures reach the client as they are, and block nothing after. */
static void
ph_faults_proxy_403_503 (PhTestCloud *cloud)
{
  g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) agent = ph_test_agent_start (cloud, "proxy-403-503", kf);
  guint16 closed = ph_test_free_port ();
  /* Squid refuses a request that already passed through it: a forwarding loop. */
  g_autofree char *looped
      = g_strdup_printf ("GET http://127.0.0.1:%u/hello HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                         "Via: 1.1 %s (squid)\r\n\r\n",
                         cloud->origin_http_port, cloud->origin_http_port, cloud->server_name);
  g_autofree char *connect_closed = ph_test_connect_request (closed);
  g_autofree char *get_closed = ph_test_get_request (closed, "/hello");
  const struct
  {
    const char *request;
    const char *method;
    int status;
    const char *squid_error;
  } cases[] = {
    { looped, "method=GET", 403, "ERR_ACCESS_DENIED" },
    { connect_closed, "method=CONNECT", 503, "ERR_CONNECT_FAIL" },
    { get_closed, "method=GET", 503, "ERR_CONNECT_FAIL" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *body = NULL;
      gint64 ms = 0;
      g_autofree char *head = ph_test_exchange (agent->port, cases[i].request, &body, &ms, 10000);
      g_autofree char *status = g_strdup_printf ("status=%d", cases[i].status);

      g_test_message ("%s %d after %" G_GINT64_FORMAT " ms", cases[i].method, cases[i].status, ms);
      ph_assert_passed_on (agent, head, body, cases[i].status, cases[i].squid_error);
      g_assert_cmpint (ms, <, 2000);
      ph_test_agent_assert_access (agent, (const char *[]){ cases[i].method, status, NULL }, 1,
                                   3000);
      ph_assert_access_no_error (agent, (const char *[]){ cases[i].method, status, NULL });
      ph_assert_serves (agent, cloud);
    }
  ph_test_agent_stop_ok (agent);
}

/* A cloud proxy that refuses a CONNECT itself (403) or cannot serve it (503): what it said
 * reaches the client, its own headers and body included. */
static void
ph_faults_proxy_refuses_connect (PhTestCloud *cloud)
{
  static const char *const answers[] = {
    "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nX-Proxy-Policy: port blocked\r\n"
    "Content-Length: 26\r\n\r\nCONNECT to it not allowed\n",
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 7\r\n"
    "Content-Length: 20\r\n\r\nthe proxy is paused\n",
  };
  g_autoptr (PhFault) fault = ph_fault_new (cloud, 0, PH_FAULT_ANSWER);
  g_autoptr (GKeyFile) kf = ph_fault_config (cloud, fault);
  g_autoptr (PhTestAgent) agent = ph_test_agent_start (cloud, "proxy-refuses-connect", kf);
  g_autofree char *connect = ph_test_connect_request (cloud->origin_https_port);

  for (gsize i = 0; i < G_N_ELEMENTS (answers); i++)
    {
      const char *sent_body = strstr (answers[i], "\r\n\r\n") + 4;
      g_autofree char *status_line
          = g_strndup (answers[i], strstr (answers[i], "\r\n") - answers[i]);
      g_autofree char *body = NULL;
      g_autofree char *head = NULL;
      g_autofree char *status = NULL;

      ph_fault_set_answer (fault, answers[i], 0);
      head = ph_test_exchange (agent->port, connect, &body, NULL, 10000);
      g_test_message ("the proxy sent:\n%sthe client got:\n%s%s", answers[i],
                      head ? head : "(nothing)\n", body ? body : "");
      ph_assert_passed_on (agent, head, body, i == 0 ? 403 : 503, NULL);
      g_assert_true (g_str_has_prefix (head, status_line));
      if (i == 0)
        {
          g_autofree char *policy = ph_test_head_header (head, "X-Proxy-Policy");

          g_assert_cmpstr (policy, ==, "port blocked");
        }
      else
        {
          g_autofree char *retry = ph_test_head_header (head, "Retry-After");

          g_assert_cmpstr (retry, ==, "7");
        }
      g_assert_cmpstr (body, ==, sent_body);
      status = g_strdup_printf ("status=%d", i == 0 ? 403 : 503);
      ph_test_agent_assert_access (agent, (const char *[]){ "method=CONNECT", status, NULL }, 1,
                                   3000);
      ph_assert_access_no_error (agent, (const char *[]){ "method=CONNECT", status, NULL });
    }
  ph_fault_set_mode (fault, PH_FAULT_FORWARD);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

/* Interim (1xx) responses: passed on exactly, up to a cap; past it, 502 upstream-protocol and
 * no crash (regression: one stack frame per interim response overflowed the stack). */
static void
ph_faults_interim (PhTestCloud *cloud)
{
  g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) agent = ph_test_agent_start (cloud, "interim", kf);
  const struct
  {
    guint n;
    guint code;
    gboolean passes;
  } cases[] = {
    { 5, 100, TRUE },
    { 5, 102, TRUE },
    { 5, 103, TRUE },
    /* 10,000: enough for the old recursion to overflow the stack whatever the timing. */
    { 10000, 100, FALSE },
    { 1000, 100, FALSE },
    { 1000, 103, FALSE },
    { PH_INTERIM_CAP, 100, TRUE },
    { PH_INTERIM_CAP + 1, 100, FALSE },
  };
  guint refused = 0;

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/interim/%u?code=%u", cases[i].n, cases[i].code);
      g_autofree char *request = ph_test_get_request (cloud->origin_http_port, path);
      g_autofree char *expected_body = ph_test_interim_body (cases[i].n);
      const char *interim = ph_test_interim_head (cases[i].code);
      g_autoptr (PhTestConn) conn = ph_test_conn_new (agent->port);
      g_autofree char *final = NULL;
      guint seen = 0;
      gint64 start = g_get_monotonic_time ();

      ph_test_conn_send (conn, request, -1);
      for (;;)
        {
          g_autofree char *head = ph_test_conn_read_head (conn, 5000);

          if (head == NULL || ph_test_head_status (head) >= 200)
            {
              final = g_steal_pointer (&head);
              break;
            }
          /* Bytes exact: the origin's interim head, nothing added or lost. */
          if (g_strcmp0 (head, interim) != 0)
            g_printerr ("# interim head %u differs:\n%s", seen, head);
          g_assert_cmpstr (head, ==, interim);
          seen++;
        }
      g_test_message ("%s: %u interim heads, then %d, %" G_GINT64_FORMAT " ms", path, seen,
                      ph_test_head_status (final), ph_ms_since (start));
      if (final == NULL)
        ph_test_agent_print_log (agent, "no final answer after the interim responses");
      g_assert_nonnull (final);
      if (cases[i].passes)
        {
          g_autofree char *length = ph_test_head_header (final, "Content-Length");
          g_autoptr (GByteArray) body = g_byte_array_new ();
          g_autofree char *next = ph_test_get_request (cloud->origin_http_port, "/hello");
          g_autofree char *again = NULL;

          g_assert_cmpuint (seen, ==, cases[i].n);
          g_assert_true (g_str_has_prefix (final, "HTTP/1.1 200 OK\r\n"));
          g_assert_cmpuint (g_ascii_strtoull (length, NULL, 10), ==, strlen (expected_body));
          ph_test_conn_read_body (conn, strlen (expected_body), body, 5000);
          g_assert_cmpmem (body->data, body->len, expected_body, strlen (expected_body));
          /* Nothing stray after the body: the connection carries a next request cleanly. */
          ph_test_conn_send (conn, next, -1);
          again = ph_test_conn_read_head (conn, 5000);
          g_assert_cmpint (ph_test_head_status (again), ==, 200);
        }
      else
        {
          g_assert_cmpuint (seen, <=, PH_INTERIM_CAP);
          ph_test_assert_refusal (agent, final, NULL, 502, "upstream-protocol");
          g_assert_cmpint (ph_test_conn_wait_end (conn, 3000, NULL), !=, PH_TEST_CONN_TIMEOUT);
          refused++;
        }
      g_assert_cmpint (ph_ms_since (start), <, 3000);
      ph_assert_healthy (agent);
    }
  ph_test_agent_assert_access (
      agent, (const char *[]){ "method=GET", "status=502", "error=upstream-protocol", NULL },
      refused, 3000);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

/* ------------------------------------------------------------------------------------------ */
/* Clients that misbehave                                                                     */

typedef enum
{
  PH_RESET_MID_HEAD,
  PH_RESET_MID_BODY,
  PH_RESET_CONNECT_WAIT,
  PH_RESET_TUNNEL_RELAY,
  PH_RESET_PLAIN_RELAY,
} PhResetStage;

static const char *const ph_reset_stage_names[] = {
  "mid-head",
  "mid-body of a POST",
  "waiting for CONNECT's answer",
  "mid-relay of a tunnel",
  "mid-relay of a plain download",
};

/* One client that resets its connection at @stage; @i varies the moment a little. */
static void
ph_reset_once (PhTestAgent *agent, PhTestCloud *cloud, PhResetStage stage, guint i)
{
  g_autofree char *bytes = g_strdup_printf ("/bytes/%" G_GUINT64_FORMAT, PH_BIG_BODY);
  g_autoptr (GError) error = NULL;
  PhTestConn *conn = ph_test_conn_try_new (agent->port, &error);
  guint delay_us = (i % 5) * 1000;

  if (conn == NULL)
    {
      g_autofree char *why = g_strdup_printf ("cannot connect for reset %u %s: %s", i,
                                              ph_reset_stage_names[stage], error->message);

      /* Give a dying agent the moment it needs to be seen as dead. */
      g_usleep (200 * 1000);
      ph_test_agent_print_log (agent, why);
      g_assert_not_reached ();
    }
  switch (stage)
    {
      case PH_RESET_MID_HEAD:
        {
          g_autofree char *part = g_strdup_printf (
              "GET http://127.0.0.1:%u/hello HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nX-Partial: ",
              cloud->origin_http_port, cloud->origin_http_port);

          ph_test_conn_send (conn, part, -1);
          break;
        }
      case PH_RESET_MID_BODY:
        {
          g_autofree char *head = g_strdup_printf (
              "POST http://127.0.0.1:%u/sha256 HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
              "Content-Length: %" G_GUINT64_FORMAT "\r\n\r\n",
              cloud->origin_http_port, cloud->origin_http_port, PH_BIG_BODY);
          g_autofree guint8 *part = g_malloc (256 * 1024);

          ph_test_pattern_fill (part, 256 * 1024, 0);
          ph_test_conn_send (conn, head, -1);
          ph_test_conn_send (conn, part, 256 * 1024);
          break;
        }
      case PH_RESET_CONNECT_WAIT:
        {
          g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);

          ph_test_conn_send (conn, connect, -1);
          break;
        }
      case PH_RESET_TUNNEL_RELAY:
        {
          g_autofree char *connect = ph_test_connect_request (cloud->origin_http_port);
          g_autofree char *inner = g_strdup_printf ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
                                                    bytes, cloud->origin_http_port);
          g_autofree char *established = NULL;
          g_autofree char *head = NULL;

          ph_test_conn_send (conn, connect, -1);
          established = ph_test_conn_read_head (conn, 10000);
          if (ph_test_head_status (established) != 200)
            ph_test_agent_print_log (agent, "a tunnel did not open");
          g_assert_cmpint (ph_test_head_status (established), ==, 200);
          ph_test_conn_send (conn, inner, -1);
          head = ph_test_conn_read_head (conn, 10000);
          g_assert_cmpint (ph_test_head_status (head), ==, 200);
          g_assert_cmpuint (ph_test_conn_read_body (conn, 64 * 1024, NULL, 10000), ==, 64 * 1024);
          break;
        }
      case PH_RESET_PLAIN_RELAY:
        {
          g_autofree char *get = ph_test_get_request (cloud->origin_http_port, bytes);
          g_autofree char *head = NULL;

          ph_test_conn_send (conn, get, -1);
          head = ph_test_conn_read_head (conn, 10000);
          if (ph_test_head_status (head) != 200)
            ph_test_agent_print_log (agent, "a download did not start");
          g_assert_cmpint (ph_test_head_status (head), ==, 200);
          g_assert_cmpuint (ph_test_conn_read_body (conn, 64 * 1024, NULL, 10000), ==, 64 * 1024);
          break;
        }
    }
  if (delay_us > 0)
    g_usleep (delay_us);
  ph_test_conn_abort (conn);
}

/* Clients that reset (SO_LINGER 0) at every stage, many times over, quickly: the agent keeps
 * running, complains of nothing, logs the broken exchanges and serves the next client
 * (regression: a reset at the wrong moment was a use-after-free). */
static void
ph_faults_client_resets (PhTestCloud *cloud)
{
  const guint rounds = 50;
  g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) agent = ph_test_agent_start (cloud, "client-resets", kf);
  g_autoptr (PhFault) slow = ph_fault_new (cloud, 0, PH_FAULT_ANSWER);
  g_autoptr (GKeyFile) slow_kf = ph_fault_config (cloud, slow);
  g_autoptr (PhTestAgent) slow_agent = NULL;

  for (PhResetStage stage = PH_RESET_MID_HEAD; stage <= PH_RESET_PLAIN_RELAY; stage++)
    {
      const char *method = stage == PH_RESET_CONNECT_WAIT || stage == PH_RESET_TUNNEL_RELAY
                               ? "method=CONNECT"
                           : stage == PH_RESET_MID_BODY ? "method=POST"
                                                        : "method=GET";
      const char *const closed[] = { method, "error=client-closed", NULL };
      guint before = ph_count_access (agent, closed);
      gint64 start = g_get_monotonic_time ();

      for (guint i = 0; i < rounds; i++)
        ph_reset_once (agent, cloud, stage, i);
      g_test_message ("%u resets %s in %" G_GINT64_FORMAT " ms", rounds,
                      ph_reset_stage_names[stage], ph_ms_since (start));
      ph_assert_healthy (agent);
      /* Every reset in the middle of a transfer is logged as the client's doing. */
      if (stage == PH_RESET_TUNNEL_RELAY || stage == PH_RESET_PLAIN_RELAY)
        ph_test_agent_assert_access (agent, closed, before + rounds, 5000);
    }
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);

  /* A cloud proxy slow to answer makes "waiting for the answer" certain, for a CONNECT and for
   * a plain request. */
  ph_fault_set_answer (slow, NULL, 300);
  slow_agent = ph_test_agent_start (cloud, "client-resets-waiting", slow_kf);
  for (guint i = 0; i < 2 * rounds; i++)
    {
      g_autofree char *request = i % 2 == 0
                                     ? ph_test_connect_request (cloud->origin_http_port)
                                     : ph_test_get_request (cloud->origin_http_port, "/hello");
      PhTestConn *conn;

      if (!ph_test_agent_is_running (slow_agent))
        ph_test_agent_print_log (slow_agent, "the agent died");
      g_assert_true (ph_test_agent_is_running (slow_agent));
      conn = ph_test_conn_new (slow_agent->port);
      ph_test_conn_send (conn, request, -1);
      g_usleep ((20 + i % 7) * 1000);
      ph_test_conn_abort (conn);
    }
  g_assert_cmpuint (ph_fault_get_connections (slow), >=, rounds);
  ph_assert_healthy (slow_agent);
  ph_fault_set_answer (slow, NULL, 0);
  ph_fault_set_mode (slow, PH_FAULT_FORWARD);
  ph_assert_serves (slow_agent, cloud);
  ph_test_agent_stop_ok (slow_agent);
}

static guint
ph_parse_connection_limit (PhTestAgent *agent)
{
  g_autofree char *log = ph_test_agent_log (agent);
  g_autoptr (GRegex) re = g_regex_new ("connection limit ([0-9]+)", 0, 0, NULL);
  g_autoptr (GMatchInfo) match = NULL;
  g_autofree char *number = NULL;

  if (!g_regex_match (re, log, 0, &match))
    {
      ph_test_agent_print_log (agent, "no “connection limit N” line at startup");
      return 0;
    }
  number = g_match_info_fetch (match, 1);
  return (guint) g_ascii_strtoull (number, NULL, 10);
}

/* Warning and critical lines in @log from offset @from on. */
static guint
ph_count_warnings (const char *log, gsize from)
{
  g_auto (GStrv) lines = g_strsplit (log + MIN (from, strlen (log)), "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    n += strstr (lines[i], " warning ") != NULL || strstr (lines[i], " critical ") != NULL;
  return n;
}

/* The agent runs out of descriptors: clients over its limit get a fast 503 or are not accepted,
 * never left hanging; the agent neither spins nor floods its log, and serves again once
 * the connections are gone. */
static void
ph_faults_fd_limit (PhTestCloud *cloud)
{
  const guint max_fds = 128, n_tunnels = 20, n_idle = 130;
  g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) agent = NULL;
  g_autoptr (GPtrArray) held = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_test_conn_free);
  g_autoptr (GPtrArray) idle = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_test_conn_free);
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  g_autofree char *log_before = NULL;
  g_autofree char *log_after = NULL;
  guint limit, refused = 0, closed = 0, silent = 0, warnings;
  int queue;
  gint64 deadline;
  double cpu0, cpu1;
  GPid pid;

  /* Idle clients stay until the test lets them go. */
  g_key_file_set_string (kf, "tunnel", "head-timeout", "60s");
  agent = ph_test_agent_start_with_fd_limit (cloud, "fd-limit", kf, max_fds);
  pid = ph_test_agent_get_pid (agent);
  /* Checked last, so that an agent without it still shows how it copes. */
  limit = ph_parse_connection_limit (agent);
  g_test_message ("descriptor limit %u, connection limit %u", max_fds, limit);

  for (guint i = 0; i < (limit > 0 ? MIN (n_tunnels, limit) : n_tunnels); i++)
    g_ptr_array_add (held, ph_open_tunnel (agent, cloud));
  log_before = ph_test_agent_log (agent);
  for (guint i = 0; i < n_idle; i++)
    g_ptr_array_add (idle, ph_test_conn_new (agent->port));

  /* Each idle client: answered (a 503 only), closed, or silent. */
  deadline = g_get_monotonic_time () + 3 * G_USEC_PER_SEC;
  for (guint i = 0; i < idle->len; i++)
    {
      PhTestConn *conn = g_ptr_array_index (idle, i);
      gint64 left_us = MAX (deadline - g_get_monotonic_time (), 1000);

      if (!g_socket_condition_timed_wait (conn->socket, G_IO_IN, left_us, NULL, NULL))
        {
          silent++;
          continue;
        }
      {
        g_autofree char *head = ph_test_conn_read_head (conn, 1000);

        if (head == NULL)
          {
            closed++;
            continue;
          }
        ph_test_assert_refusal (agent, head, NULL, 503, "too-many-connections");
        refused++;
      }
    }
  queue = ph_test_listen_queue (agent->port);
  g_test_message ("%u idle clients: %u refused with 503, %u closed, %u silent; accept queue %d",
                  n_idle, refused, closed, silent, queue);
  g_assert_cmpint (queue, >=, 0);
  /* Silent ones are either admitted (within the limit) or not accepted at all. */
  if (limit > 0)
    g_assert_cmpuint (silent + held->len, <=, limit + (guint) queue);

  /* One more client, with a whole request: a quick answer, a close, or left in the queue. */
  {
    int queue_before = ph_test_listen_queue (agent->port);
    g_autoptr (PhTestConn) probe = ph_test_conn_new (agent->port);
    gint64 start = g_get_monotonic_time ();
    g_autofree char *head = NULL;

    ph_test_conn_send (probe, get, -1);
    if (g_socket_condition_timed_wait (probe->socket, G_IO_IN, 2 * G_USEC_PER_SEC, NULL, NULL))
      {
        head = ph_test_conn_read_head (probe, 1000);
        g_test_message ("the client over the limit: %s after %" G_GINT64_FORMAT " ms",
                        head != NULL ? "answered" : "closed", ph_ms_since (start));
        if (head != NULL)
          {
            ph_test_assert_refusal (agent, head, NULL, 503, "too-many-connections");
            g_assert_cmpint (ph_ms_since (start), <, PH_FAST_MS);
          }
      }
    else
      {
        int queue_now = ph_test_listen_queue (agent->port);

        g_test_message ("the client over the limit: no answer in 2 s; accept queue %d -> %d",
                        queue_before, queue_now);
        if (queue_now <= 0)
          ph_test_agent_print_log (agent, "a client was accepted and left hanging");
        g_assert_cmpint (queue_now, >, 0);
      }

    /* Saturated: no spinning, no flood. */
    cpu0 = ph_test_proc_cpu_seconds (pid);
    g_usleep (2 * G_USEC_PER_SEC);
    cpu1 = ph_test_proc_cpu_seconds (pid);
    log_after = ph_test_agent_log (agent);
    warnings = ph_count_warnings (log_after, strlen (log_before));
    g_printerr ("# saturated: %.2f s of CPU in 2 s, %u warning lines\n", cpu1 - cpu0, warnings);
    ph_assert_healthy (agent);
    /* Said, and said once in a while: not once per client. */
    g_assert_cmpuint (warnings, >=, 1);
    g_assert_cmpuint (warnings, <, 20);
    g_assert_cmpfloat (cpu1 - cpu0, <, 0.5);
  }

  /* Released: a new client is served (accepting may resume only after a pause). */
  g_ptr_array_set_size (idle, 0);
  g_ptr_array_set_size (held, 0);
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  for (;;)
    {
      g_autofree char *body = NULL;
      g_autofree char *head = ph_test_exchange (agent->port, get, &body, NULL, 3000);

      if (ph_test_head_status (head) == 200 && g_strcmp0 (body, "hello\n") == 0)
        break;
      if (g_get_monotonic_time () > deadline)
        {
          ph_test_agent_print_log (agent, "not serving 5 s after the clients left");
          g_assert_not_reached ();
        }
      g_usleep (100 * 1000);
    }
  ph_test_agent_assert_access (agent, (const char *[]){ "method=GET", "status=200", NULL }, 1,
                               3000);
  ph_assert_serves (agent, cloud);
  /* The limit it works to, told at startup; each client may need two descriptors. */
  g_assert_cmpuint (limit, >, 0);
  g_assert_cmpuint (2 * limit, <, max_fds);
  ph_test_agent_stop_ok (agent);
}

/* 1,000 clients that send part of a head and then nothing do not hold up a normal one. */
static void
ph_faults_slow_clients (PhTestCloud *cloud)
{
  const guint n_slow = 1000;
  g_autoptr (GKeyFile) kf = ph_test_agent_config (cloud);
  g_autoptr (PhTestAgent) agent = ph_test_agent_start (cloud, "slow-clients", kf);
  g_autoptr (GPtrArray) slow = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_test_conn_free);
  g_autofree char *part = g_strdup_printf ("GET http://127.0.0.1:%u/hello HTTP/1.1\r\nHost: 127.0",
                                           cloud->origin_http_port);
  g_autofree char *get = ph_test_get_request (cloud->origin_http_port, "/hello");
  GPid pid = ph_test_agent_get_pid (agent);
  gint64 deadline;
  int fds = 0;

  for (guint i = 0; i < n_slow; i++)
    {
      PhTestConn *conn = ph_test_conn_new (agent->port);

      ph_test_conn_send (conn, part, -1);
      g_ptr_array_add (slow, conn);
    }
  /* They are the agent's to hold: accepted, each with its descriptor. */
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while ((fds = ph_test_proc_fd_count (pid)) < (int) n_slow && g_get_monotonic_time () < deadline)
    g_usleep (20 * 1000);
  g_test_message ("the agent holds %d descriptors", fds);
  g_assert_cmpint (fds, >=, (int) n_slow);

  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *body = NULL;
      gint64 ms = 0;
      g_autofree char *head = ph_test_exchange (agent->port, get, &body, &ms, 10000);

      g_test_message ("a normal client among %u slow ones: %d after %" G_GINT64_FORMAT " ms",
                      n_slow, ph_test_head_status (head), ms);
      g_assert_cmpint (ph_test_head_status (head), ==, 200);
      g_assert_cmpstr (body, ==, "hello\n");
      g_assert_cmpint (ms, <, 2000);
    }
  ph_test_agent_assert_access (agent, (const char *[]){ "method=GET", "status=200", NULL }, 3,
                               3000);
  ph_assert_healthy (agent);
  g_ptr_array_set_size (slow, 0);
  ph_assert_serves (agent, cloud);
  ph_test_agent_stop_ok (agent);
}

/* ------------------------------------------------------------------------------------------ */

static const PhFaultCase ph_cases[] = {
  { "/pinhole/faults/refused", ph_faults_refused },
  { "/pinhole/faults/unresolvable", ph_faults_unresolvable },
  { "/pinhole/faults/upstream-reset", ph_faults_upstream_reset },
  { "/pinhole/faults/cloud-killed", ph_faults_cloud_killed },
  { "/pinhole/faults/no-tls", ph_faults_no_tls },
  { "/pinhole/faults/silence", ph_faults_silence },
  { "/pinhole/faults/tls-alert", ph_faults_tls_alert },
  { "/pinhole/faults/garbage", ph_faults_garbage },
  { "/pinhole/faults/pin-mismatch", ph_faults_pin_mismatch },
  { "/pinhole/faults/proxy-407", ph_faults_proxy_407 },
  { "/pinhole/faults/origin-407", ph_faults_origin_407 },
  { "/pinhole/faults/proxy-403-503", ph_faults_proxy_403_503 },
  { "/pinhole/faults/proxy-refuses-connect", ph_faults_proxy_refuses_connect },
  { "/pinhole/faults/interim", ph_faults_interim },
  { "/pinhole/faults/client-resets", ph_faults_client_resets },
  { "/pinhole/faults/fd-limit", ph_faults_fd_limit },
  { "/pinhole/faults/slow-clients", ph_faults_slow_clients },
  { "/pinhole/faults/reused-closed", ph_faults_reused_closed },
};

static void
ph_faults_run (gconstpointer data)
{
  const PhFaultCase *fc = data;
  PhTestCloud *cloud;

  if (!ph_test_require_tools ())
    return;
  /* Started here, before the case's subprocess, which attaches to it. */
  cloud = ph_test_shared_cloud ();
  if (ph_test_case_fork (PH_CASE_TIMEOUT_S))
    fc->func (cloud);
}

int
main (int argc, char **argv)
{
  struct rlimit rl;

  /* A thousand slow clients and then some: this process needs the descriptors too. */
  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      setrlimit (RLIMIT_NOFILE, &rl);
    }
  signal (SIGPIPE, SIG_IGN);
  /* The agents started here get freed memory filled with junk: a use after free that a sanitizer
   * build reports then crashes a plain build more often too. */
  g_setenv ("MALLOC_PERTURB_", "165", FALSE);
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (ph_cases); i++)
    g_test_add_data_func (ph_cases[i].path, &ph_cases[i], ph_faults_run);
  return ph_test_run_cases ();
}
