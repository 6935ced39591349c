/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ask.c: one request head on a stream, the final answer's head back, within a time limit. */
#define G_LOG_DOMAIN "pinhole-upstream"

#include "ph-ask.h"
#include "ph-error.h"
#include "ph-wipe.h"

#include <glib/gi18n.h>

struct _PhAsk
{
  PhStream *stream; /* not owned */
  GString *out;
  gsize out_off;
  GByteArray *in;
  GSource *wait;
  GSource *timeout;
  PhAskFunc func;
  gpointer user_data;
};

PhAskAnswer
ph_ask_read_answer (PhStream *stream, GByteArray *in, PhHttpResponse **resp, gsize *head_len,
                    char **reason, GError **error)
{
  guint8 buf[16384];

  for (;;)
    {
      g_autoptr (GError) local = NULL;
      gsize n = 0;
      PhIoStatus st;

      if (in->len > 0)
        {
          PhHttpParseResult pr = ph_http_response_parse ((const char *) in->data, in->len, NULL,
                                                         resp, head_len, reason);
          if (pr == PH_HTTP_PARSE_DONE)
            return PH_ASK_ANSWER_HEAD;
          if (pr == PH_HTTP_PARSE_ERROR)
            return PH_ASK_ANSWER_MALFORMED;
        }
      st = ph_stream_read (stream, buf, sizeof buf, &n, &local);
      if (st == PH_IO_OK)
        {
          g_byte_array_append (in, buf, n);
          continue;
        }
      if (st == PH_IO_AGAIN)
        return PH_ASK_ANSWER_AGAIN;
      if (st == PH_IO_EOF)
        g_set_error (error, PH_ERROR, PH_ERROR_UPSTREAM_PROTOCOL,
                     "the cloud proxy closed the connection without answering");
      else
        {
          g_prefix_error (&local, "waiting for the cloud proxy's answer: ");
          g_propagate_error (error, g_steal_pointer (&local));
        }
      return PH_ASK_ANSWER_CLOSED;
    }
}

static void
source_drop (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

void
ph_ask_free (PhAsk *ask)
{
  source_drop (&ask->wait);
  source_drop (&ask->timeout);
  ph_wipe (ask->out->str, ask->out->len);
  g_string_free (ask->out, TRUE);
  g_byte_array_unref (ask->in);
  g_free (ask);
}

static void
ask_finish (PhAsk *ask, PhHttpResponse *resp, const char *why)
{
  ask->func (resp, why, ask->user_data);
  ph_ask_free (ask);
}

static gboolean ask_io_cb (GSocket *socket, GIOCondition cond, gpointer data);

static void
ask_pump (PhAsk *ask)
{
  for (;;)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *reason = NULL;
      PhHttpResponse *resp = NULL;
      gsize head_len = 0;
      gsize n = 0;

      if (ask->out_off < ask->out->len)
        {
          PhIoStatus st
              = ph_stream_write (ask->stream, (const guint8 *) ask->out->str + ask->out_off,
                                 ask->out->len - ask->out_off, &n, &error);
          if (st == PH_IO_OK)
            {
              ask->out_off += n;
              /* Sent: the credential in it has no more use. */
              if (ask->out_off == ask->out->len)
                ph_wipe (ask->out->str, ask->out->len);
              continue;
            }
          if (st == PH_IO_AGAIN)
            {
              ask->wait = ph_stream_wait (ask->stream, TRUE, ask_io_cb, ask);
              return;
            }
          ask_finish (ask, NULL, error ? error->message : _ ("the connection closed"));
          return;
        }
      switch (ph_ask_read_answer (ask->stream, ask->in, &resp, &head_len, &reason, &error))
        {
          case PH_ASK_ANSWER_HEAD:
            if (ph_http_response_get_status (resp) < 200)
              {
                /* Interim: the final answer follows. */
                g_byte_array_remove_range (ask->in, 0, head_len);
                ph_http_response_free (resp);
                continue;
              }
            ask_finish (ask, resp, NULL);
            return;
          case PH_ASK_ANSWER_AGAIN:
            ask->wait = ph_stream_wait (ask->stream, FALSE, ask_io_cb, ask);
            return;
          case PH_ASK_ANSWER_MALFORMED:
            {
              /* TRANSLATORS: %s says what is wrong with the answer */
              g_autofree char *why = g_strdup_printf (_ ("a malformed answer: %s"), reason);
              ask_finish (ask, NULL, why);
              return;
            }
          case PH_ASK_ANSWER_CLOSED:
          default:
            ask_finish (ask, NULL, error ? error->message : _ ("the connection closed"));
            return;
        }
    }
}

static gboolean
ask_io_cb (GSocket *socket, GIOCondition cond, gpointer data)
{
  PhAsk *ask = data;

  g_clear_pointer (&ask->wait, g_source_unref);
  ask_pump (ask);
  return G_SOURCE_REMOVE;
}

static gboolean
ask_timeout_cb (gpointer data)
{
  PhAsk *ask = data;

  g_clear_pointer (&ask->timeout, g_source_unref);
  ask_finish (ask, NULL, _ ("no answer in time"));
  return G_SOURCE_REMOVE;
}

PhAsk *
ph_ask_new (PhStream *stream, GString *head, guint timeout_ms, PhAskFunc func, gpointer user_data)
{
  PhAsk *ask = g_new0 (PhAsk, 1);

  ask->stream = stream;
  ask->out = head;
  ask->in = g_byte_array_new ();
  ask->func = func;
  ask->user_data = user_data;
  ask->timeout = g_timeout_source_new (timeout_ms);
  g_source_set_callback (ask->timeout, ask_timeout_cb, ask, NULL);
  g_source_attach (ask->timeout, NULL);
  /* The first write from the main loop: @func never runs before the caller has the ask. */
  ask->wait = ph_stream_wait (stream, TRUE, ask_io_cb, ask);
  return ask;
}
