/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-log.c: one writer for every log domain of the agent. Lines go to
 * stderr (the journal captures it under systemd); secrets never leave. */
#define G_LOG_DOMAIN "pinhole-log"

#include "ph-log.h"
#include "ph-wipe.h"

#include <stdio.h>
#include <string.h>

static PhLogLevel current_level = PH_LOG_LEVEL_INFO;
static GPtrArray *secrets; /* of char*, wiped on clear */
static GMutex log_lock;

static const struct
{
  const char *name;
  PhLogLevel level;
} level_names[] = {
  { "error", PH_LOG_LEVEL_ERROR },
  { "warning", PH_LOG_LEVEL_WARNING },
  { "info", PH_LOG_LEVEL_INFO },
  { "debug", PH_LOG_LEVEL_DEBUG },
};

gboolean
ph_log_level_from_string (const char *str, PhLogLevel *level)
{
  for (gsize i = 0; i < G_N_ELEMENTS (level_names); i++)
    if (g_ascii_strcasecmp (str, level_names[i].name) == 0)
      {
        *level = level_names[i].level;
        return TRUE;
      }
  return FALSE;
}

void
ph_log_set_level (PhLogLevel level)
{
  current_level = level;
}

static void
secret_free (gpointer p)
{
  char *s = p;
  ph_wipe (s, strlen (s));
  g_free (s);
}

void
ph_log_add_secret (const char *secret)
{
  if (secret == NULL || strlen (secret) < 3)
    return;
  g_mutex_lock (&log_lock);
  if (secrets == NULL)
    secrets = g_ptr_array_new_with_free_func (secret_free);
  g_ptr_array_add (secrets, g_strdup (secret));
  g_mutex_unlock (&log_lock);
}

static void
redact_all (GString *s, const char *needle)
{
  gsize nlen = strlen (needle);
  char *hit;
  gsize from = 0;

  while (from < s->len && (hit = strstr (s->str + from, needle)) != NULL)
    {
      gsize pos = hit - s->str;
      g_string_erase (s, pos, nlen);
      g_string_insert (s, pos, "[redacted]");
      from = pos + strlen ("[redacted]");
    }
}

/* Caller holds log_lock. */
static char *
redact_locked (const char *message)
{
  GString *s = g_string_new (message);
  const char *basic;

  for (guint i = 0; secrets != NULL && i < secrets->len; i++)
    redact_all (s, g_ptr_array_index (secrets, i));

  /* A Basic credential token, wherever it came from. */
  basic = strstr (s->str, "Basic ");
  while (basic != NULL)
    {
      gsize pos = basic - s->str + strlen ("Basic ");
      gsize end = pos;
      while (end < s->len && !g_ascii_isspace (s->str[end]))
        end++;
      if (end > pos)
        {
          g_string_erase (s, pos, end - pos);
          g_string_insert (s, pos, "[redacted]");
        }
      basic = strstr (s->str + pos, "Basic ");
    }
  return g_string_free (s, FALSE);
}

static PhLogLevel
level_of (GLogLevelFlags flags)
{
  if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
    return PH_LOG_LEVEL_ERROR;
  if (flags & G_LOG_LEVEL_WARNING)
    return PH_LOG_LEVEL_WARNING;
  if (flags & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
    return PH_LOG_LEVEL_INFO;
  return PH_LOG_LEVEL_DEBUG;
}

static const char *
level_label (GLogLevelFlags flags)
{
  if (flags & G_LOG_LEVEL_ERROR)
    return "error";
  if (flags & G_LOG_LEVEL_CRITICAL)
    return "critical";
  if (flags & G_LOG_LEVEL_WARNING)
    return "warning";
  if (flags & G_LOG_LEVEL_MESSAGE)
    return "notice";
  if (flags & G_LOG_LEVEL_INFO)
    return "info";
  return "debug";
}

/* Under systemd, whether stderr is the journal (JOURNAL_STREAM). */
static gboolean to_journal;
static PhLogSink sink;
static FILE *out_stream; /* NULL: stderr */

static GLogWriterOutput
ph_log_writer (GLogLevelFlags flags, const GLogField *fields, gsize n_fields, gpointer user_data)
{
  const char *domain = NULL;
  const char *message = NULL;
  g_autoptr (GDateTime) now = NULL;
  g_autofree char *stamp = NULL;
  g_autofree char *clean = NULL;

  if (level_of (flags) > current_level)
    return G_LOG_WRITER_HANDLED;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0)
        domain = fields[i].value;
      else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
        message = fields[i].value;
    }
  if (message == NULL)
    return G_LOG_WRITER_UNHANDLED;
  if (domain != NULL && g_str_has_prefix (domain, "pinhole-"))
    domain += strlen ("pinhole-");

  now = g_date_time_new_now_utc ();
  stamp = g_date_time_format (now, "%Y-%m-%dT%H:%M:%S.%fZ");
  if (stamp != NULL && strlen (stamp) > 23)
    {
      stamp[23] = 'Z';
      stamp[24] = '\0';
    }

  g_mutex_lock (&log_lock);
  clean = redact_locked (message);
  if (sink != NULL)
    sink (flags, domain ? domain : "agent", clean);
  if (to_journal)
    {
      /* The same fields, the message redacted: access lines keep their
       * PINHOLE_* fields for journalctl queries. */
      g_autofree GLogField *copy = g_new (GLogField, n_fields + 1);
      GLogWriterOutput out;

      for (gsize i = 0; i < n_fields; i++)
        {
          copy[i] = fields[i];
          if (g_strcmp0 (fields[i].key, "MESSAGE") == 0)
            {
              copy[i].value = clean;
              copy[i].length = -1;
            }
        }
      copy[n_fields] = (GLogField){ "SYSLOG_IDENTIFIER", "pinhole-agent", -1 };
      out = g_log_writer_journald (flags, copy, n_fields + 1, NULL);
      g_mutex_unlock (&log_lock);
      if (out == G_LOG_WRITER_HANDLED)
        return out;
      g_mutex_lock (&log_lock);
    }
  fprintf (out_stream ? out_stream : stderr, "%s %s %s: %s\n", stamp ? stamp : "-",
           level_label (flags), domain ? domain : "agent", clean);
  fflush (out_stream ? out_stream : stderr);
  g_mutex_unlock (&log_lock);
  return G_LOG_WRITER_HANDLED;
}

void
ph_log_init (void)
{
  to_journal = g_log_writer_is_journald (fileno (stderr));
  g_log_set_writer_func (ph_log_writer, NULL, NULL);
}

void
ph_log_set_stream (FILE *stream)
{
  g_mutex_lock (&log_lock);
  out_stream = stream;
  g_mutex_unlock (&log_lock);
}

void
ph_log_set_sink (PhLogSink new_sink)
{
  g_mutex_lock (&log_lock);
  sink = new_sink;
  g_mutex_unlock (&log_lock);
}

void
ph_log_access (const char *client, const char *method, const char *target, guint status, guint64 up,
               guint64 down, gint64 duration_us, const char *route, const char *error_kind,
               const char *proto, const char *name, const char *learned, const char *original,
               const char *upstream_proto)
{
  g_autofree char *status_text = g_strdup_printf ("%u", status);
  g_autoptr (GString) extra = g_string_new (NULL);

  if (proto != NULL)
    g_string_append_printf (extra, " proto=%s", proto);
  if (name != NULL)
    g_string_append_printf (extra, " name=%s", name);
  if (learned != NULL)
    g_string_append_printf (extra, " learned=%s", learned);
  if (original != NULL)
    g_string_append_printf (extra, " original=%s", original);
  /* How it went to the cloud proxy when not HTTP/1.1: "h2", a stream of its HTTP/2 connection */
  if (upstream_proto != NULL)
    g_string_append_printf (extra, " upstream=%s", upstream_proto);
  g_log_structured (
      "pinhole-access", G_LOG_LEVEL_MESSAGE, "PINHOLE_CLIENT", client, "PINHOLE_TARGET",
      target ? target : "-", "PINHOLE_STATUS", status_text, "PINHOLE_ROUTE", route ? route : "-",
      "PINHOLE_ERROR", error_kind ? error_kind : "", "PINHOLE_PROTO", proto ? proto : "http",
      "PINHOLE_NAME", name ? name : "", "PINHOLE_LEARNED", learned ? learned : "",
      "PINHOLE_ORIGINAL", original ? original : "", "MESSAGE_ID",
      "6d1c3f3ec1e84e5c9a2f1f1c0b8a7e51", "MESSAGE",
      "access client=%s method=%s target=%s status=%u up=%" G_GUINT64_FORMAT
      " down=%" G_GUINT64_FORMAT " duration=%.3fs route=%s%s%s%s",
      client, method ? method : "-", target ? target : "-", status, up, down, duration_us / 1e6,
      route ? route : "-", error_kind ? " error=" : "", error_kind ? error_kind : "", extra->str);
}
