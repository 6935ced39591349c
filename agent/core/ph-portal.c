/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-portal.c: the captive-portal check. A direct GET of the check URL with Connection: close;
 * the response head is read with ph-http's parser (the body is never read) and judged: 204 is an
 * open network, a redirect or a 200 page is a portal, anything else says nothing. */
#define G_LOG_DOMAIN "pinhole-portal"

#include "ph-portal.h"
#include "ph-error.h"
#include "ph-http.h"

#include <string.h>
#include <glib/gi18n.h>

/* A portal's answer fits in this; a longer head is no portal's check answer. */
#define PORTAL_MAX_HEAD 16384

typedef struct
{
  GUri *uri;
  GSocketConnection *conn;
  GByteArray *buf;
  GSource *timeout;
  GCancellable *cancel; /* ours: the caller's, chained, and the timeout's */
  GCancellable *caller;
  gulong chain_id;
  gboolean timed_out;
  char *result_url;
} PhPortalCheck;

static void
check_free (PhPortalCheck *c)
{
  if (c->timeout != NULL)
    {
      g_source_destroy (c->timeout);
      g_source_unref (c->timeout);
    }
  if (c->chain_id != 0)
    g_cancellable_disconnect (c->caller, c->chain_id);
  g_clear_object (&c->caller);
  g_clear_pointer (&c->uri, g_uri_unref);
  g_clear_object (&c->conn);
  g_clear_pointer (&c->buf, g_byte_array_unref);
  g_clear_object (&c->cancel);
  g_free (c->result_url);
  g_free (c);
}

static void
task_fail (GTask *task, GError *error)
{
  PhPortalCheck *c = g_task_get_task_data (task);

  if (c->timed_out && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_autofree char *check = g_uri_to_string (c->uri);

      g_error_free (error);
      g_task_return_new_error (task, PH_ERROR, PH_ERROR_TIMEOUT,
                               /* TRANSLATORS: %s is the captive-portal check URL */
                               _ ("the captive-portal check %s did not answer in time"), check);
      return;
    }
  g_task_return_error (task, error);
}

static void read_more (GTask *task);

/* The head is in: what does it say? */
static void
judge (GTask *task, PhHttpResponse *resp)
{
  PhPortalCheck *c = g_task_get_task_data (task);
  guint status = ph_http_response_get_status (resp);
  const char *location = ph_http_header_get (ph_http_response_get_headers (resp), "location");
  g_autofree char *check = g_uri_to_string (c->uri);

  if (status == 204)
    {
      g_task_return_int (task, PH_PORTAL_NONE);
      return;
    }
  if (status >= 300 && status < 400 && location != NULL && *location != '\0')
    {
      g_autoptr (GError) error = NULL;
      c->result_url = g_uri_resolve_relative (check, location, G_URI_FLAGS_NONE, &error);
      if (c->result_url == NULL)
        c->result_url = g_strdup (check);
      g_task_return_int (task, PH_PORTAL_FOUND);
      return;
    }
  if (status == 200 || (status >= 300 && status < 400))
    {
      c->result_url = g_steal_pointer (&check);
      g_task_return_int (task, PH_PORTAL_FOUND);
      return;
    }
  g_task_return_new_error (task, PH_ERROR, PH_ERROR_FAILED,
                           /* TRANSLATORS: %s is the captive-portal check URL, %u an HTTP status */
                           _ ("the captive-portal check %s answered %u"), check, status);
}

/* Judges the head in the buffer, or reads more. */
static void
parse_buffer (GTask *task)
{
  PhPortalCheck *c = g_task_get_task_data (task);
  PhHttpLimits limits = ph_http_default_limits;

  limits.max_head = PORTAL_MAX_HEAD;
  for (;;)
    {
      g_autoptr (PhHttpResponse) resp = NULL;
      g_autofree char *reason = NULL;
      gsize consumed = 0;

      switch (ph_http_response_parse ((const char *) c->buf->data, c->buf->len, &limits, &resp,
                                      &consumed, &reason))
        {
          case PH_HTTP_PARSE_DONE:
            /* An interim answer (100, 103) is followed by the real one. */
            if (ph_http_response_get_status (resp) < 200)
              {
                g_byte_array_remove_range (c->buf, 0, consumed);
                continue;
              }
            judge (task, resp);
            g_object_unref (task);
            return;
          case PH_HTTP_PARSE_INCOMPLETE:
            if (c->buf->len < PORTAL_MAX_HEAD)
              {
                read_more (task);
                return;
              }
            break;
          case PH_HTTP_PARSE_ERROR:
            break;
        }
      g_task_return_new_error (task, PH_ERROR, PH_ERROR_FAILED,
                               /* TRANSLATORS: %s is the host of the captive-portal check URL,
                                * then what was wrong with its answer */
                               _ ("the captive-portal check %s answered malformed HTTP: %s"),
                               g_uri_get_host (c->uri), reason ? reason : "");
      g_object_unref (task);
      return;
    }
}

static void
read_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GTask) task = data;
  PhPortalCheck *c = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes
      = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);

  if (bytes == NULL)
    {
      task_fail (task, g_steal_pointer (&error));
      return;
    }
  if (g_bytes_get_size (bytes) == 0)
    {
      g_task_return_new_error (task, PH_ERROR, PH_ERROR_FAILED,
                               /* TRANSLATORS: %s is the host of the captive-portal check URL */
                               _ ("the captive-portal check %s closed before an answer"),
                               g_uri_get_host (c->uri));
      return;
    }
  g_byte_array_append (c->buf, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  parse_buffer (g_steal_pointer (&task));
}

static void
read_more (GTask *task)
{
  PhPortalCheck *c = g_task_get_task_data (task);
  GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (c->conn));

  g_input_stream_read_bytes_async (in, 4096, G_PRIORITY_DEFAULT, c->cancel, read_done, task);
}

static void
write_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GTask) task = data;
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      task_fail (task, error);
      return;
    }
  read_more (g_steal_pointer (&task));
}

static void
connected (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GTask) task = data;
  PhPortalCheck *c = g_task_get_task_data (task);
  GError *error = NULL;
  const char *path = g_uri_get_path (c->uri);
  const char *query = g_uri_get_query (c->uri);
  const char *host = g_uri_get_host (c->uri);
  gint port = g_uri_get_port (c->uri);
  g_autoptr (GString) head = g_string_new (NULL);
  g_autofree char *authority = NULL;
  GOutputStream *out;

  c->conn = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  if (c->conn == NULL)
    {
      task_fail (task, error);
      return;
    }
  authority = g_strdup_printf (strchr (host, ':') ? "[%s]" : "%s", host);
  if (port > 0 && port != 80)
    {
      g_autofree char *bare = g_steal_pointer (&authority);
      authority = g_strdup_printf ("%s:%d", bare, port);
    }
  g_string_append_printf (head,
                          "GET %s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: pinhole-agent\r\n"
                          "Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
                          *path ? path : "/", query ? "?" : "", query ? query : "", authority);
  out = g_io_stream_get_output_stream (G_IO_STREAM (c->conn));
  g_output_stream_write_all_async (out, head->str, head->len, G_PRIORITY_DEFAULT, c->cancel,
                                   write_done, g_steal_pointer (&task));
}

static gboolean
timeout_cb (gpointer data)
{
  PhPortalCheck *c = data;

  c->timed_out = TRUE;
  g_cancellable_cancel (c->cancel);
  g_clear_pointer (&c->timeout, g_source_unref);
  return G_SOURCE_REMOVE;
}

static void
chain_cancel (GCancellable *caller, gpointer data)
{
  g_cancellable_cancel (data);
}

void
ph_portal_check_async (const char *check_url, guint timeout_ms, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr (GSocketClient) client = NULL;
  g_autoptr (GError) error = NULL;
  PhPortalCheck *c = g_new0 (PhPortalCheck, 1);

  g_task_set_source_tag (task, ph_portal_check_async);
  g_task_set_task_data (task, c, (GDestroyNotify) check_free);
  c->buf = g_byte_array_new ();
  c->cancel = g_cancellable_new ();
  c->uri = g_uri_parse (check_url, G_URI_FLAGS_NONE, &error);
  if (c->uri == NULL || g_strcmp0 (g_uri_get_scheme (c->uri), "http") != 0
      || g_uri_get_host (c->uri) == NULL || *g_uri_get_host (c->uri) == '\0')
    {
      g_task_return_new_error (task, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                               /* TRANSLATORS: %s is the configured captive-portal check URL */
                               _ ("the captive-portal check “%s” is not an http:// URL"),
                               check_url);
      return;
    }
  if (cancellable != NULL)
    c->caller = g_object_ref (cancellable);
  if (cancellable != NULL)
    c->chain_id = g_cancellable_connect (cancellable, G_CALLBACK (chain_cancel),
                                         g_object_ref (c->cancel), g_object_unref);
  c->timeout = g_timeout_source_new (timeout_ms);
  g_source_set_callback (c->timeout, timeout_cb, c, NULL);
  g_source_attach (c->timeout, g_main_context_get_thread_default ());
  client = g_socket_client_new ();
  /* Directly: the check asks the network the machine is on, never a proxy (least of all us). */
  g_socket_client_set_enable_proxy (client, FALSE);
  g_socket_client_connect_to_host_async (
      client, g_uri_get_host (c->uri),
      g_uri_get_port (c->uri) > 0 ? (guint16) g_uri_get_port (c->uri) : 80, c->cancel, connected,
      g_steal_pointer (&task));
}

PhPortalResult
ph_portal_check_finish (GAsyncResult *result, char **portal_url, GError **error)
{
  GTask *task = G_TASK (result);
  PhPortalCheck *c = g_task_get_task_data (task);
  GError *local = NULL;
  gssize kind = g_task_propagate_int (task, &local);

  *portal_url = NULL;
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return PH_PORTAL_UNKNOWN;
    }
  if (kind == PH_PORTAL_FOUND)
    *portal_url = g_steal_pointer (&c->result_url);
  return (PhPortalResult) kind;
}
