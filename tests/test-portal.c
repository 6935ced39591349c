/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-portal.c: unit tests for agent/core/ph-portal.h: what the captive-portal check makes of
 * each kind of answer (204, redirects, a page, interim answers, errors, silence, nothing there),
 * against a loopback server of the test's own that answers one canned reply, and the request it
 * sends. */
#include "ph-portal.h"
#include "ph-error.h"

#include <string.h>

typedef struct
{
  const char *name;
  const char *reply; /* what the server sends; NULL: it closes without a word */
  gboolean silent;   /* it reads the request and says nothing until the client goes */
  PhPortalResult want;
  const char *portal; /* FOUND: the URL, "@" for the server's "127.0.0.1:PORT" */
  int error_code;     /* UNKNOWN: PH_ERROR code, or -1 for any error */
} PortalCase;

static const PortalCase cases[] = {
  { "no-portal", "HTTP/1.1 204 No Content\r\n\r\n", FALSE, PH_PORTAL_NONE },
  { "redirect-relative",
    "HTTP/1.1 302 Found\r\nLocation: /login?from=check\r\nContent-Length: 0\r\n\r\n", FALSE,
    PH_PORTAL_FOUND, "http://@/login?from=check" },
  { "redirect-absolute",
    "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://portal.example/sign-in\r\n"
    "Content-Length: 0\r\n\r\n",
    FALSE, PH_PORTAL_FOUND, "https://portal.example/sign-in" },
  { "redirect-without-location", "HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", FALSE,
    PH_PORTAL_FOUND, "http://@/generate_204?probe=1" },
  { "page", "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n<html></html>", FALSE, PH_PORTAL_FOUND,
    "http://@/generate_204?probe=1" },
  { "interim-then-204", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", FALSE,
    PH_PORTAL_NONE },
  { "server-error", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", FALSE,
    PH_PORTAL_UNKNOWN, NULL, PH_ERROR_FAILED },
  { "malformed", "HTTP/1.1 2OO OK\r\n\r\n", FALSE, PH_PORTAL_UNKNOWN, NULL, PH_ERROR_FAILED },
  { "closed", NULL, FALSE, PH_PORTAL_UNKNOWN, NULL, PH_ERROR_FAILED },
  { "head-cut", "HTTP/1.1 204 No", FALSE, PH_PORTAL_UNKNOWN, NULL, PH_ERROR_FAILED },
  { "silent", NULL, TRUE, PH_PORTAL_UNKNOWN, NULL, PH_ERROR_TIMEOUT },
};

typedef struct
{
  const PortalCase *pc;
  GSocket *listener;
  GString *request; /* what the check sent */
} Server;

static gpointer
server_thread (gpointer data)
{
  Server *s = data;
  g_autoptr (GSocket) conn = g_socket_accept (s->listener, NULL, NULL);
  char buf[1024];
  gssize n;

  g_assert_nonnull (conn);
  while (strstr (s->request->str, "\r\n\r\n") == NULL
         && (n = g_socket_receive (conn, buf, sizeof buf, NULL, NULL)) > 0)
    g_string_append_len (s->request, buf, n);
  if (s->pc->reply != NULL)
    g_socket_send (conn, s->pc->reply, strlen (s->pc->reply), NULL, NULL);
  if (s->pc->silent)
    while (g_socket_receive (conn, buf, sizeof buf, NULL, NULL) > 0)
      ;
  g_socket_close (conn, NULL);
  return NULL;
}

static guint16
listen_loopback (GSocket **out)
{
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;
  GSocket *socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);

  g_assert_no_error (error);
  g_assert_true (g_socket_bind (socket, any, TRUE, &error));
  g_assert_true (g_socket_listen (socket, &error));
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  *out = socket;
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
check_done (GObject *source, GAsyncResult *result, gpointer data)
{
  GAsyncResult **out = data;

  *out = g_object_ref (result);
}

static PhPortalResult
run_check (const char *url, guint timeout_ms, char **portal, GError **error)
{
  g_autoptr (GAsyncResult) result = NULL;

  ph_portal_check_async (url, timeout_ms, NULL, check_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return ph_portal_check_finish (result, portal, error);
}

static void
test_case (gconstpointer data)
{
  const PortalCase *pc = data;
  Server s = { pc, NULL, g_string_new (NULL) };
  guint16 port = listen_loopback (&s.listener);
  g_autofree char *authority = g_strdup_printf ("127.0.0.1:%u", port);
  g_autofree char *url = g_strdup_printf ("http://%s/generate_204?probe=1", authority);
  g_autofree char *portal = NULL;
  g_autofree char *host_line = g_strdup_printf ("\r\nHost: %s\r\n", authority);
  g_autoptr (GError) error = NULL;
  GThread *thread = g_thread_new ("portal-server", server_thread, &s);
  PhPortalResult got = run_check (url, pc->silent ? 300 : 5000, &portal, &error);

  g_thread_join (thread);
  g_assert_true (g_str_has_prefix (s.request->str, "GET /generate_204?probe=1 HTTP/1.1\r\n"));
  g_assert_nonnull (strstr (s.request->str, host_line));
  g_assert_nonnull (strstr (s.request->str, "\r\nConnection: close\r\n"));
  g_assert_cmpint (got, ==, pc->want);
  if (pc->want == PH_PORTAL_FOUND)
    {
      g_autoptr (GString) want = g_string_new (pc->portal);

      g_string_replace (want, "@", authority, 0);
      g_assert_no_error (error);
      g_assert_cmpstr (portal, ==, want->str);
    }
  else if (pc->want == PH_PORTAL_NONE)
    {
      g_assert_no_error (error);
      g_assert_null (portal);
    }
  else
    {
      g_assert_null (portal);
      g_assert_error (error, PH_ERROR, pc->error_code);
      g_test_message ("%s", error->message);
    }
  g_string_free (s.request, TRUE);
  g_object_unref (s.listener);
}

/* Nothing listens: no answer, no portal. */
static void
test_refused (void)
{
  GSocket *listener = NULL;
  guint16 port = listen_loopback (&listener);
  g_autofree char *url = NULL;
  g_autofree char *portal = NULL;
  g_autoptr (GError) error = NULL;

  g_object_unref (listener);
  url = g_strdup_printf ("http://127.0.0.1:%u/generate_204", port);
  g_assert_cmpint (run_check (url, 5000, &portal, &error), ==, PH_PORTAL_UNKNOWN);
  g_assert_nonnull (error);
  g_assert_null (portal);
}

/* A URL a check cannot ask (the config refuses these too). */
static void
test_not_http (void)
{
  g_autofree char *portal = NULL;
  g_autoptr (GError) error = NULL;

  g_assert_cmpint (run_check ("https://127.0.0.1/generate_204", 5000, &portal, &error), ==,
                   PH_PORTAL_UNKNOWN);
  g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
}

/* A cancelled check ends at once, cancelled. */
static void
test_cancelled (void)
{
  GSocket *listener = NULL;
  guint16 port = listen_loopback (&listener);
  g_autoptr (GCancellable) cancel = g_cancellable_new ();
  g_autoptr (GAsyncResult) result = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *portal = NULL;
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u/generate_204", port);

  /* The listener accepts (the kernel does) but nobody answers. */
  ph_portal_check_async (url, 60000, cancel, check_done, &result);
  g_cancellable_cancel (cancel);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (ph_portal_check_finish (result, &portal, &error), ==, PH_PORTAL_UNKNOWN);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_object_unref (listener);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strconcat ("/pinhole/portal/", cases[i].name, NULL);
      g_test_add_data_func (path, &cases[i], test_case);
    }
  g_test_add_func ("/pinhole/portal/refused", test_refused);
  g_test_add_func ("/pinhole/portal/not-http", test_not_http);
  g_test_add_func ("/pinhole/portal/cancelled", test_cancelled);
  return g_test_run ();
}
