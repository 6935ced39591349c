/* ph-ctl.c: pinholectl, the command-line client of org.pinhole.Agent1 for
 * headless servers and scripts.
 *
 * Exit codes, which scripts rely on (keep them in step with --help):
 *   0  success
 *   1  the agent reported a failure not listed below, or the user declined to trust a key
 *   2  usage error (unknown command, missing or extra argument, no terminal to ask on)
 *   3  agent not reachable (nobody owns org.pinhole.Agent, bus not available)
 *   4  permission denied (PermissionDenied, D-Bus AccessDenied, polkit)
 *   5  locked by the administrator (Locked)
 *   6  invalid setting or unknown key (InvalidSetting, InvalidConfig)
 *   7  the cloud proxy could not be reached or verified
 *      (PinMismatch, UpstreamTls, UpstreamUnreachable, Timeout)
 *   8  not configured (NotConfigured) or no credentials (NoCredentials)
 */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-build-config.h"
#include "ph-agent1-generated.h"
#include "ph-error.h"
#include "ph-paths.h"
#include "ph-wipe.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib/gi18n.h>
#ifdef G_OS_WIN32
#include "ph-control-pipe.h"
#include "ph-service.h"
#include <io.h>
#include <windows.h>
#else
#include <termios.h>
#include <sys/wait.h>
#endif

#define PH_AGENT_BUS_NAME "org.pinhole.Agent"
#define PH_AGENT_OBJECT_PATH "/org/pinhole/Agent1"
#define PH_AGENT_INTERFACE "org.pinhole.Agent1"
#define PH_AGENT_UNIT "pinhole-agent.service"

/* FetchUpstreamPin waits for the agent's own connect and handshake
 * timeouts (10 s each by default), which D-Bus's 25 s default cuts close. */
#define CALL_TIMEOUT_MS (60 * 1000)

/* Long enough for any proxy password; the buffer lives on the stack so that
 * it can be wiped, which a growing heap string could not promise. */
#define PASSWORD_MAX 1024

#define DEFAULT_LOG_LINES 50

typedef enum
{
  PH_CTL_EXIT_OK = 0,
  PH_CTL_EXIT_FAILED = 1,
  PH_CTL_EXIT_USAGE = 2,
  PH_CTL_EXIT_UNREACHABLE = 3,
  PH_CTL_EXIT_PERMISSION = 4,
  PH_CTL_EXIT_LOCKED = 5,
  PH_CTL_EXIT_INVALID = 6,
  PH_CTL_EXIT_UPSTREAM = 7,
  PH_CTL_EXIT_NOT_CONFIGURED = 8,
} PhCtlExit;

/* Failures of pinholectl itself, as opposed to the agent's. */
typedef enum
{
  PH_CTL_ERROR_FAILED,
  PH_CTL_ERROR_USAGE,
  PH_CTL_ERROR_UNREACHABLE,
} PhCtlError;

#define PH_CTL_ERROR (ph_ctl_error_quark ())
static GQuark
ph_ctl_error_quark (void)
{
  return g_quark_from_static_string ("ph-ctl-error-quark");
}

/* Which options a command accepts beyond the global ones. */
typedef enum
{
  OPT_JSON = 1 << 0,
  OPT_YES = 1 << 1,
  OPT_PASSWORD_STDIN = 1 << 2,
  OPT_LINES = 1 << 3,
  OPT_FOLLOW = 1 << 4,
} PhCtlOpt;

typedef struct
{
  /* global options */
  gboolean system;
  gboolean session;
  char *address;
  gboolean version;
  /* command options */
  gboolean json;
  gboolean yes;
  gboolean password_stdin;
  int lines;
  gboolean follow;

  GDBusConnection *connection;
  const char *bus_name; /* NULL on a peer-to-peer connection */
  GBusType bus_type;    /* G_BUS_TYPE_NONE for --address */
  PhAgent1 *agent;
  int exit_status; /* set by commands that pass on another program's status */
} PhCtl;

static void
ph_ctl_clear (PhCtl *ctl)
{
  g_clear_object (&ctl->agent);
  g_clear_object (&ctl->connection);
  g_clear_pointer (&ctl->address, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PhCtl, ph_ctl_clear)

typedef gboolean (*PhCtlCommandFunc) (PhCtl *ctl, char **args, GError **error);

typedef struct
{
  const char *name;
  const char *sub; /* second word, as in "pin show" */
  const char *arguments;
  const char *summary;
  PhCtlOpt options;
  guint min_args;
  guint max_args;
  PhCtlCommandFunc func;
} PhCtlCommand;

/* ---- errors and exit codes ---- */

static int
exit_code_for_error (const GError *error)
{
  g_autofree char *remote = NULL;

  if (error->domain == PH_CTL_ERROR)
    {
      switch ((PhCtlError) error->code)
        {
          case PH_CTL_ERROR_USAGE:
            return PH_CTL_EXIT_USAGE;
          case PH_CTL_ERROR_UNREACHABLE:
            return PH_CTL_EXIT_UNREACHABLE;
          case PH_CTL_ERROR_FAILED:
          default:
            return PH_CTL_EXIT_FAILED;
        }
    }
  if (error->domain == G_OPTION_ERROR)
    return PH_CTL_EXIT_USAGE;
  if (error->domain == PH_ERROR)
    {
      switch ((PhError) error->code)
        {
          case PH_ERROR_PERMISSION_DENIED:
            return PH_CTL_EXIT_PERMISSION;
          case PH_ERROR_LOCKED:
            return PH_CTL_EXIT_LOCKED;
          case PH_ERROR_INVALID_SETTING:
          case PH_ERROR_INVALID_CONFIG:
            return PH_CTL_EXIT_INVALID;
          case PH_ERROR_PIN_MISMATCH:
          case PH_ERROR_UPSTREAM_TLS:
          case PH_ERROR_UPSTREAM_UNREACHABLE:
          case PH_ERROR_TIMEOUT:
            return PH_CTL_EXIT_UPSTREAM;
          case PH_ERROR_NOT_CONFIGURED:
          case PH_ERROR_NO_CREDENTIALS:
            return PH_CTL_EXIT_NOT_CONFIGURED;
          case PH_ERROR_FAILED:
          case PH_ERROR_BAD_REQUEST:
          case PH_ERROR_AUTH_REJECTED:
          case PH_ERROR_UPSTREAM_PROTOCOL:
          case PH_ERROR_LAST:
          default:
            return PH_CTL_EXIT_FAILED;
        }
    }
  if (error->domain == G_DBUS_ERROR)
    {
      switch (error->code)
        {
          case G_DBUS_ERROR_ACCESS_DENIED:
          case G_DBUS_ERROR_AUTH_FAILED:
            return PH_CTL_EXIT_PERMISSION;
          case G_DBUS_ERROR_SERVICE_UNKNOWN:
          case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
          case G_DBUS_ERROR_NO_SERVER:
          case G_DBUS_ERROR_DISCONNECTED:
          case G_DBUS_ERROR_NO_REPLY:
          case G_DBUS_ERROR_TIMEOUT:
          case G_DBUS_ERROR_TIMED_OUT:
          case G_DBUS_ERROR_UNKNOWN_OBJECT:
          case G_DBUS_ERROR_UNKNOWN_INTERFACE:
          case G_DBUS_ERROR_SPAWN_EXEC_FAILED:
          case G_DBUS_ERROR_SPAWN_FORK_FAILED:
          case G_DBUS_ERROR_SPAWN_CHILD_EXITED:
          case G_DBUS_ERROR_SPAWN_CHILD_SIGNALED:
          case G_DBUS_ERROR_SPAWN_FAILED:
          case G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND:
          case G_DBUS_ERROR_SPAWN_SERVICE_INVALID:
          case G_DBUS_ERROR_SPAWN_PERMISSIONS_INVALID:
          case G_DBUS_ERROR_SPAWN_NO_MEMORY:
            return PH_CTL_EXIT_UNREACHABLE;
          default:
            return PH_CTL_EXIT_FAILED;
        }
    }
  /* Remote errors GLib has no mapping for arrive as G_IO_ERROR_DBUS_ERROR;
   * polkit's refusal is the one that matters here. */
  remote = g_dbus_error_get_remote_error (error);
  if (remote != NULL)
    {
      if (g_str_equal (remote, "org.freedesktop.PolicyKit1.Error.NotAuthorized"))
        return PH_CTL_EXIT_PERMISSION;
      return PH_CTL_EXIT_FAILED;
    }
  /* Any other I/O error comes from the transport: the bus or the agent went away. */
  if (error->domain == G_IO_ERROR)
    return PH_CTL_EXIT_UNREACHABLE;
  return PH_CTL_EXIT_FAILED;
}

/* ---- JSON, written by hand: a compact writer that keeps track of commas ---- */

typedef struct
{
  GString *out;
  guint depth;
  guint64 first; /* bit n: nothing written yet at depth n */
  gboolean after_key;
} PhJson;

static void
json_clear (PhJson *j)
{
  if (j->out != NULL)
    g_string_free (g_steal_pointer (&j->out), TRUE);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PhJson, json_clear)

static void
json_separate (PhJson *j)
{
  if (j->after_key)
    {
      j->after_key = FALSE;
      return;
    }
  if (j->depth > 0 && (j->first & (G_GUINT64_CONSTANT (1) << j->depth)) == 0)
    g_string_append_c (j->out, ',');
  j->first &= ~(G_GUINT64_CONSTANT (1) << j->depth);
}

static void
json_escape (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const char *p = s; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      switch (c)
        {
          case '"':
            g_string_append (out, "\\\"");
            break;
          case '\\':
            g_string_append (out, "\\\\");
            break;
          case '\b':
            g_string_append (out, "\\b");
            break;
          case '\f':
            g_string_append (out, "\\f");
            break;
          case '\n':
            g_string_append (out, "\\n");
            break;
          case '\r':
            g_string_append (out, "\\r");
            break;
          case '\t':
            g_string_append (out, "\\t");
            break;
          default:
            if (c < 0x20 || c == 0x7f)
              g_string_append_printf (out, "\\u%04x", c);
            else
              g_string_append_c (out, (char) c);
        }
    }
  g_string_append_c (out, '"');
}

static void
json_open (PhJson *j, char bracket)
{
  json_separate (j);
  g_string_append_c (j->out, bracket);
  j->depth++;
  g_assert (j->depth < 64);
  j->first |= G_GUINT64_CONSTANT (1) << j->depth;
}

static void
json_close (PhJson *j, char bracket)
{
  j->depth--;
  g_string_append_c (j->out, bracket);
}

static void
json_key (PhJson *j, const char *key)
{
  json_separate (j);
  json_escape (j->out, key);
  g_string_append_c (j->out, ':');
  j->after_key = TRUE;
}

static void
json_string (PhJson *j, const char *value)
{
  json_separate (j);
  json_escape (j->out, value != NULL ? value : "");
}

static void
json_boolean (PhJson *j, gboolean value)
{
  json_separate (j);
  g_string_append (j->out, value ? "true" : "false");
}

static void
json_uint (PhJson *j, guint64 value)
{
  json_separate (j);
  g_string_append_printf (j->out, "%" G_GUINT64_FORMAT, value);
}

static void
json_int (PhJson *j, gint64 value)
{
  json_separate (j);
  g_string_append_printf (j->out, "%" G_GINT64_FORMAT, value);
}

static void
json_strv (PhJson *j, const char *const *values)
{
  json_open (j, '[');
  for (guint i = 0; values != NULL && values[i] != NULL; i++)
    json_string (j, values[i]);
  json_close (j, ']');
}

/* D-Bus dictionary keys are "kebab-case"; JSON keys are snake_case. */
static void
json_snake_key (PhJson *j, const char *key)
{
  g_autofree char *snake = g_strdelimit (g_strdup (key), "-", '_');

  json_key (j, snake);
}

/* For the a{sv} answers, so that keys the agent adds later reach scripts too. */
static void
json_variant (PhJson *j, GVariant *value)
{
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
    {
      g_autoptr (GVariant) inner = g_variant_get_variant (value);

      json_variant (j, inner);
    }
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
    json_boolean (j, g_variant_get_boolean (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING)
           || g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH)
           || g_variant_is_of_type (value, G_VARIANT_TYPE_SIGNATURE))
    json_string (j, g_variant_get_string (value, NULL));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTE))
    json_uint (j, g_variant_get_byte (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT16))
    json_uint (j, g_variant_get_uint16 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    json_uint (j, g_variant_get_uint32 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64))
    json_uint (j, g_variant_get_uint64 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT16))
    json_int (j, g_variant_get_int16 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
    json_int (j, g_variant_get_int32 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
    json_int (j, g_variant_get_int64 (value));
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE_DOUBLE))
    {
      json_separate (j);
      g_string_append_printf (j->out, "%.17g", g_variant_get_double (value));
    }
  else if (g_variant_is_of_type (value, G_VARIANT_TYPE ("a{s*}")))
    {
      GVariantIter iter;
      const char *key;
      GVariant *item;

      json_open (j, '{');
      g_variant_iter_init (&iter, value);
      while (g_variant_iter_next (&iter, "{&s@*}", &key, &item))
        {
          json_snake_key (j, key);
          json_variant (j, item);
          g_variant_unref (item);
        }
      json_close (j, '}');
    }
  else if (g_variant_is_container (value))
    {
      GVariantIter iter;
      GVariant *item;

      json_open (j, '[');
      g_variant_iter_init (&iter, value);
      while ((item = g_variant_iter_next_value (&iter)) != NULL)
        {
          json_variant (j, item);
          g_variant_unref (item);
        }
      json_close (j, ']');
    }
  else
    {
      json_separate (j);
      g_string_append (j->out, "null");
    }
}

static void
json_print (PhJson *j)
{
  g_assert (j->depth == 0);
  g_print ("%s\n", j->out->str);
}

/* ---- human output ---- */

/* Label/value pairs printed as two aligned columns; a value with several
 * lines continues under the first. Labels carry their own colon so that
 * translations can punctuate as their language does. */
typedef struct
{
  GPtrArray *cells;
  guint indent;
} PhRows;

/* Terminal columns of TEXT: CJK translations take two per character, which
 * a count of characters would misalign. */
static glong
text_width (const char *text)
{
  glong width = 0;

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iszerowidth (c))
        continue;
      width += g_unichar_iswide (c) ? 2 : 1;
    }
  return width;
}

/* Ends the line that starts at START in OUT, without the padding that an
 * empty last column leaves. */
static void
end_line (GString *out, gsize start)
{
  while (out->len > start && out->str[out->len - 1] == ' ')
    g_string_truncate (out, out->len - 1);
  g_string_append_c (out, '\n');
}

static void
rows_init (PhRows *rows, guint indent)
{
  rows->cells = g_ptr_array_new_with_free_func (g_free);
  rows->indent = indent;
}

static void
rows_add (PhRows *rows, const char *label, const char *value)
{
  g_ptr_array_add (rows->cells, g_strdup (label));
  g_ptr_array_add (rows->cells, g_strdup (value != NULL ? value : ""));
}

static void
rows_print (PhRows *rows, GString *out)
{
  glong width = 0;

  for (guint i = 0; i < rows->cells->len; i += 2)
    width = MAX (width, text_width (rows->cells->pdata[i]));
  for (guint i = 0; i < rows->cells->len; i += 2)
    {
      const char *label = rows->cells->pdata[i];
      g_auto (GStrv) lines = g_strsplit (rows->cells->pdata[i + 1], "\n", -1);

      for (guint l = 0; lines[l] != NULL; l++)
        {
          glong pad = width + 2 - (l == 0 ? text_width (label) : 0);
          gsize start = out->len;

          g_string_append_printf (out, "%*s%s%*s%s", (int) rows->indent, "", l == 0 ? label : "",
                                  (int) pad, "", lines[l]);
          end_line (out, start);
        }
    }
  g_ptr_array_set_size (rows->cells, 0);
}

static void
rows_clear (PhRows *rows)
{
  g_clear_pointer (&rows->cells, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PhRows, rows_clear)

static const char *
or_empty (const char *value)
{
  return value != NULL ? value : "";
}

static const char *
yes_no (gboolean value)
{
  return value ? _ ("yes") : _ ("no");
}

static char *
join_or_none (const char *const *values, const char *separator)
{
  if (values == NULL || values[0] == NULL)
    /* TRANSLATORS: shown for an empty list (no listeners, no locked keys) */
    return g_strdup (_ ("none"));
  return g_strjoinv (separator, (char **) values);
}

static gboolean
strv_contains (const char *const *values, const char *value)
{
  return values != NULL && value != NULL && g_strv_contains (values, value);
}

static char *
format_time (gint64 unix_time)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (unix_time);

  if (dt == NULL)
    return g_strdup_printf ("%" G_GINT64_FORMAT, unix_time);
  return g_date_time_format (dt, "%Y-%m-%d %H:%M:%S UTC");
}

static char *
format_validity (gint64 not_before, gint64 not_after)
{
  g_autofree char *from = format_time (not_before);
  g_autofree char *to = format_time (not_after);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  if (now > not_after)
    /* TRANSLATORS: a certificate's validity; the dates are "2025-01-31 12:00:00 UTC" */
    return g_strdup_printf (_ ("%s to %s (expired)"), from, to);
  if (now < not_before)
    return g_strdup_printf (_ ("%s to %s (not yet valid)"), from, to);
  return g_strdup_printf (_ ("%s to %s"), from, to);
}

static const char *
dict_string (GVariant *dict, const char *key)
{
  const char *value = NULL;

  if (dict == NULL || !g_variant_lookup (dict, key, "&s", &value))
    return "";
  return value;
}

static gboolean
dict_boolean (GVariant *dict, const char *key)
{
  gboolean value = FALSE;

  if (dict != NULL)
    g_variant_lookup (dict, key, "b", &value);
  return value;
}

static gint64
dict_int64 (GVariant *dict, const char *key)
{
  gint64 value = 0;

  if (dict != NULL)
    g_variant_lookup (dict, key, "x", &value);
  return value;
}

/* ---- the terminal ---- */

#ifdef G_OS_UNIX
/* The terminal's settings while echo is off, so that a signal does not
 * leave the user's shell without echo. */
static int tty_restore_fd = -1;
static struct termios tty_restore_termios;

static void
tty_restore_on_signal (int sig)
{
  if (tty_restore_fd >= 0)
    tcsetattr (tty_restore_fd, TCSAFLUSH, &tty_restore_termios);
  signal (sig, SIG_DFL);
  raise (sig);
}

static int
tty_open (GError **error)
{
  int fd = open ("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("no terminal to ask on: %s"),
                   g_strerror (saved_errno));
    }
  return fd;
}

#else
/* The console, opened for this question whatever stdin and stdout are: CONIN$ to read,
 * CONOUT$ (remembered here) to write the prompt. */
static int tty_in_fd = -1;
static int tty_out_fd = -1;

static int
tty_open (GError **error)
{
  HANDLE in = CreateFileW (L"CONIN$", GENERIC_READ | GENERIC_WRITE,
                           FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);
  HANDLE out = CreateFileW (L"CONOUT$", GENERIC_READ | GENERIC_WRITE,
                            FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0, NULL);

  if (in == INVALID_HANDLE_VALUE || out == INVALID_HANDLE_VALUE)
    {
      g_autofree char *msg = g_win32_error_message (GetLastError ());

      if (in != INVALID_HANDLE_VALUE)
        CloseHandle (in);
      if (out != INVALID_HANDLE_VALUE)
        CloseHandle (out);
      g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("no terminal to ask on: %s"), msg);
      return -1;
    }
  if (tty_out_fd >= 0)
    close (tty_out_fd);
  tty_out_fd = _open_osfhandle ((intptr_t) out, _O_WRONLY | _O_BINARY);
  tty_in_fd = _open_osfhandle ((intptr_t) in, _O_RDONLY | _O_BINARY);
  return tty_in_fd;
}

#endif

static gboolean
write_all (int fd, const char *text, GError **error)
{
  gsize len = strlen (text);

#ifdef G_OS_WIN32
  if (fd == tty_in_fd && tty_out_fd >= 0)
    fd = tty_out_fd;
#endif

  while (len > 0)
    {
      ssize_t n = write (fd, text, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved_errno = errno;

          g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED, _ ("could not write: %s"),
                       g_strerror (saved_errno));
          return FALSE;
        }
      text += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* Reads one line from FD into BUF, without its "\n" or "\r\n", byte by byte
 * so that nothing past the line is consumed and no copy is left in a stdio
 * buffer. Fails for lines that do not fit, NUL bytes and empty input. */
static gboolean
read_line (int fd, char *buf, gsize size, gsize *len_out, GError **error)
{
  gsize len = 0;
  gboolean too_long = FALSE;
  gboolean got_newline = FALSE;
  gboolean got_nul = FALSE;
  gboolean got_any = FALSE;

  while (TRUE)
    {
      char c;
      ssize_t n = read (fd, &c, 1);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved_errno = errno;

          g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED, _ ("could not read: %s"),
                       g_strerror (saved_errno));
          return FALSE;
        }
      if (n == 0)
        break;
      got_any = TRUE;
      if (c == '\n')
        {
          got_newline = TRUE;
          break;
        }
      if (c == '\0')
        got_nul = TRUE;
      if (len + 1 < size)
        buf[len++] = c;
      else
        too_long = TRUE;
    }
  if (got_newline && len > 0 && buf[len - 1] == '\r')
    len--;
  buf[len] = '\0';
  if (!got_any)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("no input"));
      return FALSE;
    }
  if (too_long)
    {
      g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("the line is longer than %u bytes"),
                   (guint) (size - 1));
      return FALSE;
    }
  if (got_nul)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                           _ ("the line contains a NUL byte"));
      return FALSE;
    }
  *len_out = len;
  return TRUE;
}

#ifdef G_OS_UNIX
/* Asks PROMPT on the terminal FD and reads the answer without echo. */
static gboolean
tty_read_secret (int fd, const char *prompt, char *buf, gsize size, gsize *len, GError **error)
{
  struct termios quiet;
  struct sigaction action = { 0 };
  struct sigaction old_int, old_term, old_hup, old_quit;
  gboolean ok;

  if (!write_all (fd, prompt, error))
    return FALSE;
  if (tcgetattr (fd, &tty_restore_termios) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED,
                   _ ("could not turn off echo on the terminal: %s"), g_strerror (saved_errno));
      return FALSE;
    }
  action.sa_handler = tty_restore_on_signal;
  sigemptyset (&action.sa_mask);
  sigaction (SIGINT, &action, &old_int);
  sigaction (SIGTERM, &action, &old_term);
  sigaction (SIGHUP, &action, &old_hup);
  sigaction (SIGQUIT, &action, &old_quit);
  tty_restore_fd = fd;

  quiet = tty_restore_termios;
  quiet.c_lflag &= ~(tcflag_t) ECHO;
  quiet.c_lflag |= ECHONL;
  if (tcsetattr (fd, TCSAFLUSH, &quiet) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED,
                   _ ("could not turn off echo on the terminal: %s"), g_strerror (saved_errno));
      ok = FALSE;
    }
  else
    {
      ok = read_line (fd, buf, size, len, error);
      tcsetattr (fd, TCSAFLUSH, &tty_restore_termios);
    }

  tty_restore_fd = -1;
  sigaction (SIGINT, &old_int, NULL);
  sigaction (SIGTERM, &old_term, NULL);
  sigaction (SIGHUP, &old_hup, NULL);
  sigaction (SIGQUIT, &old_quit, NULL);
  return ok;
}

#else
/* Asks PROMPT on the console and reads the answer without echo, as UTF-16 from the console
 * (not in its code page), into BUF as UTF-8. */
static HANDLE tty_restore_handle = INVALID_HANDLE_VALUE;
static DWORD tty_restore_mode;

static BOOL WINAPI
tty_restore_on_ctrl (DWORD event)
{
  if (tty_restore_handle != INVALID_HANDLE_VALUE)
    SetConsoleMode (tty_restore_handle, tty_restore_mode);
  return FALSE;
}

static gboolean
tty_read_secret (int fd, const char *prompt, char *buf, gsize size, gsize *len, GError **error)
{
  HANDLE in = (HANDLE) _get_osfhandle (fd);
  wchar_t wbuf[1024];
  DWORD nread = 0;
  glong n8 = 0;
  g_autofree char *utf8 = NULL;
  gboolean ok = FALSE;

  if (!write_all (fd, prompt, error))
    return FALSE;
  if (!GetConsoleMode (in, &tty_restore_mode))
    {
      g_autofree char *msg = g_win32_error_message (GetLastError ());

      g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED,
                   _ ("could not turn off echo on the terminal: %s"), msg);
      return FALSE;
    }
  tty_restore_handle = in;
  SetConsoleCtrlHandler (tty_restore_on_ctrl, TRUE);
  SetConsoleMode (in, (tty_restore_mode & ~(DWORD) ENABLE_ECHO_INPUT) | ENABLE_LINE_INPUT);
  if (ReadConsoleW (in, wbuf, G_N_ELEMENTS (wbuf) - 1, &nread, NULL))
    {
      while (nread > 0 && (wbuf[nread - 1] == L'\n' || wbuf[nread - 1] == L'\r'))
        nread--;
      utf8 = g_utf16_to_utf8 ((gunichar2 *) wbuf, nread, NULL, &n8, NULL);
      ok = utf8 != NULL && (gsize) n8 < size;
    }
  SetConsoleMode (in, tty_restore_mode);
  SetConsoleCtrlHandler (tty_restore_on_ctrl, FALSE);
  tty_restore_handle = INVALID_HANDLE_VALUE;
  write_all (fd, "\r\n", NULL);
  ph_wipe (wbuf, sizeof wbuf);
  if (!ok)
    {
      if (utf8 != NULL)
        ph_wipe (utf8, (gsize) n8);
      g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("the line is longer than %u bytes"),
                   (guint) (size - 1));
      return FALSE;
    }
  memcpy (buf, utf8, (gsize) n8 + 1);
  *len = (gsize) n8;
  ph_wipe (utf8, (gsize) n8);
  return TRUE;
}

#endif

static gboolean
tty_confirm (int fd, const char *question, gboolean *answer, GError **error)
{
  char buf[64];
  gsize len = 0;
  g_autofree char *prompt = g_strdup_printf ("%s ", question);

  *answer = FALSE;
  if (!write_all (fd, prompt, error))
    return FALSE;
  if (!read_line (fd, buf, sizeof buf, &len, error))
    return FALSE;
  g_strstrip (buf);
  /* English "y" and "yes" are always accepted too. */
  *answer = g_ascii_strcasecmp (buf, "y") == 0 || g_ascii_strcasecmp (buf, "yes") == 0;
  /* TRANSLATORS: the short form of "yes" accepted at a [y/N] question */
  *answer = *answer || g_utf8_collate (buf, C_ ("answer", "y")) == 0;
  /* TRANSLATORS: the long form of "yes" accepted at a [y/N] question */
  *answer = *answer || g_utf8_collate (buf, C_ ("answer", "yes")) == 0;
  return TRUE;
}

/* ---- connecting ---- */

static gboolean
bus_has_agent (GDBusConnection *connection, gboolean *has_owner, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) names = NULL;
  g_autofree const char **activatable = NULL;

  reply = g_dbus_connection_call_sync (
      connection, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
      "NameHasOwner", g_variant_new ("(s)", PH_AGENT_BUS_NAME), G_VARIANT_TYPE ("(b)"),
      G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(b)", has_owner);
  if (*has_owner)
    return TRUE;

  /* A system service may be started by the bus on the first call. */
  g_clear_pointer (&reply, g_variant_unref);
  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "ListActivatableNames", NULL,
                                       G_VARIANT_TYPE ("(as)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL,
                                       NULL);
  if (reply == NULL)
    return TRUE;
  names = g_variant_get_child_value (reply, 0);
  activatable = g_variant_get_strv (names, NULL);
  *has_owner = g_strv_contains (activatable, PH_AGENT_BUS_NAME);
  return TRUE;
}

#ifdef G_OS_UNIX
/* The bus of TYPE if the agent is (or can be started) there; NULL with no
 * error when the bus is up but the agent is not. */
static GDBusConnection *
bus_with_agent (GBusType type, GError **error)
{
  g_autoptr (GDBusConnection) connection = NULL;
  gboolean has_owner = FALSE;

  connection = g_bus_get_sync (type, NULL, error);
  if (connection == NULL)
    return NULL;
  if (!bus_has_agent (connection, &has_owner, error))
    return NULL;
  if (!has_owner)
    return NULL;
  return g_steal_pointer (&connection);
}

#endif

/* --address may name a bus (a private dbus-daemon) or the agent's own
 * peer-to-peer server; a peer answers the bus's Hello with an error. */
static GDBusConnection *
connect_address (const char *address, gboolean *is_bus, GError **error)
{
  g_autoptr (GError) bus_error = NULL;
  GDBusConnection *connection;

  connection = g_dbus_connection_new_for_address_sync (
      address,
      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
          | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
      NULL, NULL, &bus_error);
  if (connection != NULL)
    {
      *is_bus = TRUE;
      return connection;
    }
  if (bus_error->domain != G_DBUS_ERROR && !g_dbus_error_is_remote_error (bus_error))
    {
      g_propagate_error (error, g_steal_pointer (&bus_error));
      return NULL;
    }
  *is_bus = FALSE;
  return g_dbus_connection_new_for_address_sync (
      address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT, NULL, NULL, error);
}

static void
set_unreachable (GError **error, GError *cause, const char *what)
{
  g_dbus_error_strip_remote_error (cause);
  g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_UNREACHABLE, "%s: %s", what, cause->message);
}

/* Chooses the bus as --help says: --system, --session, --address, or else
 * the system bus if the agent runs there and the session bus if not. */
static gboolean
ctl_open_bus (PhCtl *ctl, GError **error)
{
  g_autoptr (GError) local_error = NULL;

  if (ctl->connection != NULL)
    return TRUE;

  if (ctl->address != NULL)
    {
      gboolean is_bus = FALSE;
      gboolean has_owner = FALSE;

      ctl->bus_type = G_BUS_TYPE_NONE;
      ctl->connection = connect_address (ctl->address, &is_bus, &local_error);
      if (ctl->connection == NULL)
        {
          g_autofree char *what = g_strdup_printf (_ ("cannot connect to %s"), ctl->address);

          set_unreachable (error, local_error, what);
          return FALSE;
        }
      if (!is_bus)
        {
          ctl->bus_name = NULL;
          return TRUE;
        }
      ctl->bus_name = PH_AGENT_BUS_NAME;
      if (!bus_has_agent (ctl->connection, &has_owner, &local_error))
        {
          set_unreachable (error, local_error, _ ("cannot ask the bus for the agent"));
          return FALSE;
        }
      if (!has_owner)
        {
          g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_UNREACHABLE,
                       _ ("the Pinhole agent is not running on the bus at %s (nobody owns %s)"),
                       ctl->address, PH_AGENT_BUS_NAME);
          return FALSE;
        }
      return TRUE;
    }

#ifdef G_OS_WIN32
  /* The agent's named pipe; one private connection, no bus name. */
  ctl->bus_type = G_BUS_TYPE_NONE;
  ctl->bus_name = NULL;
  ctl->connection = ph_control_pipe_connect_sync (ph_control_pipe_name (), NULL, &local_error);
  if (ctl->connection != NULL)
    return TRUE;
  if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_UNREACHABLE,
                 /* TRANSLATORS: %s is the pipe's name, \\.\pipe\pinhole-agent */
                 _ ("the Pinhole agent is not running (nothing listens on %s)"),
                 ph_control_pipe_name ());
  else
    set_unreachable (error, local_error, _ ("cannot reach the Pinhole agent"));
  return FALSE;
#else
  ctl->bus_name = PH_AGENT_BUS_NAME;
  if (ctl->system || ctl->session)
    {
      ctl->bus_type = ctl->system ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;
      ctl->connection = bus_with_agent (ctl->bus_type, &local_error);
      if (ctl->connection != NULL)
        return TRUE;
      if (local_error != NULL)
        {
          set_unreachable (error, local_error,
                           ctl->system ? _ ("cannot connect to the system bus")
                                       : _ ("cannot connect to the session bus"));
          return FALSE;
        }
      g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_UNREACHABLE, "%s",
                   ctl->system ? _ ("the Pinhole agent is not running on the system bus "
                                    "(nobody owns org.pinhole.Agent)")
                               : _ ("the Pinhole agent is not running on the session bus "
                                    "(nobody owns org.pinhole.Agent)"));
      return FALSE;
    }

  /* No system bus at all is normal in containers: then only the session
   * bus counts. */
  ctl->connection = bus_with_agent (G_BUS_TYPE_SYSTEM, NULL);
  if (ctl->connection != NULL)
    {
      ctl->bus_type = G_BUS_TYPE_SYSTEM;
      return TRUE;
    }
  ctl->bus_type = G_BUS_TYPE_SESSION;
  ctl->connection = bus_with_agent (G_BUS_TYPE_SESSION, &local_error);
  if (ctl->connection != NULL)
    return TRUE;
  if (local_error != NULL)
    {
      set_unreachable (error, local_error,
                       _ ("the Pinhole agent is not running on the system bus, "
                          "and there is no session bus"));
      return FALSE;
    }
  g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_UNREACHABLE,
                       _ ("the Pinhole agent is not running (nobody owns org.pinhole.Agent "
                          "on the system bus or the session bus)"));
  return FALSE;
#endif
}

static gboolean
ctl_connect (PhCtl *ctl, GError **error)
{
  g_autoptr (GError) local_error = NULL;

  if (ctl->agent != NULL)
    return TRUE;
  if (!ctl_open_bus (ctl, error))
    return FALSE;
  /* Properties are fetched by "status" itself, so that a failure to read
   * them is reported instead of showing empty values. */
  ctl->agent = ph_agent1_proxy_new_sync (ctl->connection,
                                         G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES
                                             | G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
                                         ctl->bus_name, PH_AGENT_OBJECT_PATH, NULL, &local_error);
  if (ctl->agent == NULL)
    {
      set_unreachable (error, local_error, _ ("cannot reach the Pinhole agent"));
      return FALSE;
    }
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (ctl->agent), CALL_TIMEOUT_MS);
  return TRUE;
}

static gboolean
ctl_load_properties (PhCtl *ctl, GError **error)
{
  g_autoptr (GVariant) reply = NULL;
  g_autoptr (GVariant) props = NULL;
  GVariantIter iter;
  const char *name;
  GVariant *value;

  reply = g_dbus_proxy_call_sync (
      G_DBUS_PROXY (ctl->agent), "org.freedesktop.DBus.Properties.GetAll",
      g_variant_new ("(s)", PH_AGENT_INTERFACE), G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
  if (reply == NULL)
    return FALSE;
  props = g_variant_get_child_value (reply, 0);
  g_variant_iter_init (&iter, props);
  while (g_variant_iter_next (&iter, "{&sv}", &name, &value))
    {
      g_dbus_proxy_set_cached_property (G_DBUS_PROXY (ctl->agent), name, value);
      g_variant_unref (value);
    }
  return TRUE;
}

/* ---- commands ---- */

static void
print_status_json (PhAgent1 *agent, const char *error_name, const char *error_message)
{
  g_auto (PhJson) j = { .out = g_string_new (NULL) };

  json_open (&j, '{');
  json_key (&j, "version");
  json_string (&j, ph_agent1_get_version (agent));
  json_key (&j, "mode");
  json_string (&j, ph_agent1_get_mode (agent));
  json_key (&j, "state");
  json_string (&j, ph_agent1_get_state (agent));
  json_key (&j, "enabled");
  json_boolean (&j, ph_agent1_get_enabled (agent));
  json_key (&j, "last_error");
  json_open (&j, '{');
  json_key (&j, "name");
  json_string (&j, error_name);
  json_key (&j, "message");
  json_string (&j, error_message);
  json_close (&j, '}');
  json_key (&j, "upstream");
  json_string (&j, ph_agent1_get_upstream (agent));
  json_key (&j, "listeners");
  json_strv (&j, ph_agent1_get_listeners (agent));
  json_key (&j, "active_tunnels");
  json_uint (&j, ph_agent1_get_active_tunnels (agent));
  json_key (&j, "bytes_up");
  json_uint (&j, ph_agent1_get_bytes_up (agent));
  json_key (&j, "bytes_down");
  json_uint (&j, ph_agent1_get_bytes_down (agent));
  json_key (&j, "seen_pin");
  json_string (&j, ph_agent1_get_seen_pin (agent));
  json_key (&j, "trusted_pins");
  json_strv (&j, ph_agent1_get_trusted_pins (agent));
  json_key (&j, "username");
  json_string (&j, ph_agent1_get_username (agent));
  json_key (&j, "credentials_stored");
  json_boolean (&j, ph_agent1_get_credentials_stored (agent));
  json_key (&j, "locked_keys");
  json_strv (&j, ph_agent1_get_locked_keys (agent));
  json_close (&j, '}');
  json_print (&j);
}

static void
print_status_human (PhAgent1 *agent, const char *error_name, const char *error_message)
{
  g_auto (PhRows) rows = { 0 };
  g_autoptr (GString) out = g_string_new (NULL);
  const char *seen_pin = ph_agent1_get_seen_pin (agent);
  const char *const *trusted = ph_agent1_get_trusted_pins (agent);
  const char *upstream = ph_agent1_get_upstream (agent);
  const char *username = ph_agent1_get_username (agent);
  guint tunnels = ph_agent1_get_active_tunnels (agent);
  g_autofree char *listeners = join_or_none (ph_agent1_get_listeners (agent), ", ");
  g_autofree char *locked = join_or_none (ph_agent1_get_locked_keys (agent), ", ");
  g_autofree char *trusted_text = join_or_none (trusted, "\n");
  g_autofree char *up = g_format_size (ph_agent1_get_bytes_up (agent));
  g_autofree char *down = g_format_size (ph_agent1_get_bytes_down (agent));
  g_autofree char *mode = NULL;
  g_autofree char *tunnels_text = NULL;
  g_autofree char *traffic = NULL;
  g_autofree char *seen = NULL;

  rows_init (&rows, 0);
  /* State names are the contract's own words (off, connecting, on, error). */
  rows_add (&rows, _ ("State:"), ph_agent1_get_state (agent));
  /* TRANSLATORS: "session (agent 0.1.0)": how the agent runs and its version */
  mode = g_strdup_printf (_ ("%s (agent %s)"), or_empty (ph_agent1_get_mode (agent)),
                          or_empty (ph_agent1_get_version (agent)));
  rows_add (&rows, _ ("Mode:"), mode);
  rows_add (&rows, _ ("Upstream:"),
            upstream != NULL && *upstream != '\0' ? upstream
                                                  /* TRANSLATORS: no cloud proxy set */
                                                  : _ ("not configured"));
  rows_add (&rows, _ ("Listeners:"), listeners);
  tunnels_text = g_strdup_printf (ngettext ("%u open", "%u open", tunnels), tunnels);
  rows_add (&rows, _ ("Tunnels:"), tunnels_text);
  /* TRANSLATORS: bytes carried, e.g. "1.2 MB up, 35.0 MB down" */
  traffic = g_strdup_printf (_ ("%s up, %s down"), up, down);
  rows_add (&rows, _ ("Traffic:"), traffic);
  if (seen_pin == NULL || *seen_pin == '\0')
    /* TRANSLATORS: no TLS handshake with the cloud proxy yet */
    seen = g_strdup (_ ("none yet"));
  else if (strv_contains (trusted, seen_pin))
    seen = g_strdup_printf (_ ("%s (trusted)"), seen_pin);
  else
    seen = g_strdup_printf (_ ("%s (NOT trusted)"), seen_pin);
  rows_add (&rows, _ ("Seen pin:"), seen);
  rows_add (&rows, _ ("Trusted pins:"), trusted_text);
  rows_add (&rows, _ ("User:"),
            username != NULL && *username != '\0' ? username
                                                  /* TRANSLATORS: no proxy user name */
                                                  : _ ("none"));
  rows_add (&rows, _ ("Credentials stored:"), yes_no (ph_agent1_get_credentials_stored (agent)));
  rows_add (&rows, _ ("Locked keys:"), locked);
  if (*error_name != '\0' || *error_message != '\0')
    {
      g_autofree char *message = g_strstrip (g_strdup (error_message));
      /* TRANSLATORS: the agent's error message, then the D-Bus error name */
      g_autofree char *text = g_strdup_printf (_ ("%s (%s)"), message, error_name);

      rows_add (&rows, _ ("Last error:"), text);
    }
  rows_print (&rows, out);
  g_print ("%s", out->str);
}

static gboolean
cmd_status (PhCtl *ctl, char **args, GError **error)
{
  const char *error_name = "";
  const char *error_message = "";
  GVariant *last_error;

  if (!ctl_connect (ctl, error) || !ctl_load_properties (ctl, error))
    return FALSE;
  last_error = ph_agent1_get_last_error (ctl->agent);
  if (last_error != NULL && g_variant_is_of_type (last_error, G_VARIANT_TYPE ("(ss)")))
    g_variant_get (last_error, "(&s&s)", &error_name, &error_message);
  if (ctl->json)
    print_status_json (ctl->agent, error_name, error_message);
  else
    print_status_human (ctl->agent, error_name, error_message);
  return TRUE;
}

static gboolean
cmd_enable (PhCtl *ctl, char **args, GError **error)
{
  return ctl_connect (ctl, error) && ph_agent1_call_enable_sync (ctl->agent, NULL, error);
}

static gboolean
cmd_disable (PhCtl *ctl, char **args, GError **error)
{
  return ctl_connect (ctl, error) && ph_agent1_call_disable_sync (ctl->agent, NULL, error);
}

static gboolean
cmd_reload (PhCtl *ctl, char **args, GError **error)
{
  return ctl_connect (ctl, error) && ph_agent1_call_reload_sync (ctl->agent, NULL, error);
}

/* One certificate of FetchUpstreamPin's chain, as rows. */
static void
describe_certificate (PhRows *rows, GVariant *cert, gboolean full)
{
  g_autofree char *validity
      = format_validity (dict_int64 (cert, "not-before"), dict_int64 (cert, "not-after"));

  rows_add (rows, _ ("Subject:"), dict_string (cert, "subject"));
  rows_add (rows, _ ("Issuer:"), dict_string (cert, "issuer"));
  rows_add (rows, _ ("Valid:"), validity);
  if (full)
    {
      rows_add (rows, _ ("Pin:"), dict_string (cert, "pin"));
      rows_add (rows, _ ("SHA-256:"), dict_string (cert, "sha256-fingerprint"));
    }
}

static char *
describe_server (GVariant *info)
{
  const char *host = dict_string (info, "host");
  const char *server_name = dict_string (info, "server-name");
  const char *protocol = dict_string (info, "protocol");

  /* TRANSLATORS: "127.0.0.1:443 (name proxy.example.com, TLS1.3)" */
  return g_strdup_printf (_ ("%s (name %s, %s)"), host, server_name, protocol);
}

static char *
describe_ca (GVariant *info)
{
  const char *problem = dict_string (info, "ca-problem");

  g_autofree char *why = g_strstrip (g_strdup (problem));

  if (dict_boolean (info, "ca-trusted"))
    return g_strdup (_ ("yes"));
  if (*why == '\0')
    return g_strdup (_ ("no"));
  /* TRANSLATORS: "no: " and why the CA store does not accept the certificate */
  return g_strdup_printf (_ ("no: %s"), why);
}

static gboolean
cmd_pin_show (PhCtl *ctl, char **args, GError **error)
{
  g_autofree char *pin = NULL;
  g_autoptr (GVariant) chain = NULL;
  g_autoptr (GVariant) info = NULL;

  if (!ctl_connect (ctl, error)
      || !ph_agent1_call_fetch_upstream_pin_sync (ctl->agent, &pin, &chain, &info, NULL, error))
    return FALSE;

  if (ctl->json)
    {
      g_auto (PhJson) j = { .out = g_string_new (NULL) };

      json_open (&j, '{');
      json_key (&j, "pin");
      json_string (&j, pin);
      json_key (&j, "chain");
      json_variant (&j, chain);
      json_key (&j, "info");
      json_variant (&j, info);
      json_close (&j, '}');
      json_print (&j);
    }
  else
    {
      g_auto (PhRows) rows = { 0 };
      g_autoptr (GString) out = g_string_new (NULL);
      g_autofree char *server = describe_server (info);
      g_autofree char *ca = describe_ca (info);
      gsize n = g_variant_n_children (chain);
      gboolean pin_trusted = dict_boolean (info, "pin-trusted");

      rows_init (&rows, 0);
      rows_add (&rows, _ ("Cloud proxy:"), server);
      rows_add (&rows, _ ("Pin:"), pin);
      rows_add (&rows, _ ("Already trusted:"), yes_no (pin_trusted));
      rows_add (&rows, _ ("CA-trusted:"), ca);
      rows_print (&rows, out);
      for (gsize i = 0; i < n; i++)
        {
          g_autoptr (GVariant) cert = g_variant_get_child_value (chain, i);
          g_auto (PhRows) cert_rows = { 0 };

          g_string_append_c (out, '\n');
          if (i == 0)
            /* TRANSLATORS: the first certificate of the chain, the server's own */
            g_string_append_printf (out, _ ("Certificate %u (the server's own):\n"), (guint) i + 1);
          else
            g_string_append_printf (out, _ ("Certificate %u:\n"), (guint) i + 1);
          rows_init (&cert_rows, 2);
          describe_certificate (&cert_rows, cert, TRUE);
          rows_print (&cert_rows, out);
        }
      if (!pin_trusted)
        {
          g_string_append_c (out, '\n');
          g_string_append (out, _ ("To trust this key: pinholectl pin trust"));
          g_string_append_c (out, '\n');
        }
      g_print ("%s", out->str);
    }
  return TRUE;
}

/* The certificate in CHAIN whose key has PIN, if the server sent one. */
static GVariant *
chain_find_pin (GVariant *chain, const char *pin)
{
  gsize n = chain != NULL ? g_variant_n_children (chain) : 0;

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr (GVariant) cert = g_variant_get_child_value (chain, i);

      if (g_strcmp0 (dict_string (cert, "pin"), pin) == 0)
        return g_steal_pointer (&cert);
    }
  return NULL;
}

static gboolean
cmd_pin_trust (PhCtl *ctl, char **args, GError **error)
{
  const char *given = args[0];
  g_autofree char *fetched = NULL;
  g_autoptr (GVariant) chain = NULL;
  g_autoptr (GVariant) info = NULL;
  g_autoptr (GVariant) cert = NULL;
  g_autoptr (GError) fetch_error = NULL;
  g_autoptr (GString) details = g_string_new (NULL);
  g_auto (PhRows) rows = { 0 };
  const char *pin;
  int tty = -1;

  /* Refuse before contacting anyone: there is nobody to confirm with. */
  if (!ctl->yes)
    {
      g_autoptr (GError) tty_error = NULL;

      tty = tty_open (&tty_error);
      if (tty < 0)
        {
          g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                       _ ("%s; see the key with “pinholectl pin show” and trust it with "
                          "“pinholectl pin trust --yes”"),
                       tty_error->message);
          return FALSE;
        }
    }

  if (!ctl_connect (ctl, error))
    {
      if (tty >= 0)
        close (tty);
      return FALSE;
    }

  /* With a pin given (say, the next key of a rotation) the server need not
   * present it, or even be reachable: then there is less to show. */
  if (!ph_agent1_call_fetch_upstream_pin_sync (ctl->agent, &fetched, &chain, &info, NULL,
                                               &fetch_error))
    {
      if (given == NULL)
        {
          if (tty >= 0)
            close (tty);
          g_propagate_error (error, g_steal_pointer (&fetch_error));
          return FALSE;
        }
      g_dbus_error_strip_remote_error (fetch_error);
    }
  pin = given != NULL ? given : fetched;
  cert = chain_find_pin (chain, pin);

  if (info != NULL)
    {
      g_autofree char *server = describe_server (info);

      /* TRANSLATORS: %s is "127.0.0.1:443 (name proxy.example.com, TLS1.3)" */
      g_string_append_printf (details, _ ("The cloud proxy %s presents this key:\n"), server);
    }
  else
    {
      g_string_append (details, _ ("This key will be trusted:"));
      g_string_append_c (details, '\n');
    }
  rows_init (&rows, 2);
  rows_add (&rows, _ ("Pin:"), pin);
  if (cert != NULL)
    describe_certificate (&rows, cert, FALSE);
  if (info != NULL)
    {
      g_autofree char *ca = describe_ca (info);

      rows_add (&rows, _ ("CA-trusted:"), ca);
    }
  rows_print (&rows, details);
  if (fetch_error != NULL)
    g_string_append_printf (details, _ ("The cloud proxy could not be asked for its key: %s\n"),
                            fetch_error->message);
  else if (cert == NULL)
    g_string_append (details, _ ("The cloud proxy does not present this key now.\n"));
  g_print ("%s", details->str);

  if (info != NULL && g_strcmp0 (pin, fetched) == 0 && dict_boolean (info, "pin-trusted"))
    {
      if (tty >= 0)
        close (tty);
      g_print ("%s\n", _ ("This key is already trusted."));
      return TRUE;
    }

  if (!ctl->yes)
    {
      gboolean yes = FALSE;
      gboolean ok;

      /* The user must see what they confirm even when stdout goes elsewhere. */
      ok = (isatty (STDOUT_FILENO) || write_all (tty, details->str, error))
           /* TRANSLATORS: keep "[y/N]": y accepts, anything else (or Enter) declines */
           && tty_confirm (tty, _ ("Trust this key? [y/N]"), &yes, error);
      close (tty);
      if (!ok)
        return FALSE;
      if (!yes)
        {
          g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED,
                               _ ("not trusted: the question was not answered with yes"));
          return FALSE;
        }
    }

  if (!ph_agent1_call_trust_pin_sync (ctl->agent, pin, NULL, error))
    return FALSE;
  /* TRANSLATORS: %s is the pin, "sha256//…" */
  g_print (_ ("Trusted %s.\n"), pin);
  return TRUE;
}

/* Reads the password into BUF (PASSWORD_MAX bytes) and CONFIRM, and sends
 * it; the caller wipes both whatever happens. */
static gboolean
set_credentials_with (PhCtl *ctl, const char *username, char *buf, char *confirm, GError **error)
{
  gsize len = 0;

  if (ctl->password_stdin)
    {
      if (!read_line (STDIN_FILENO, buf, PASSWORD_MAX, &len, error))
        {
          g_prefix_error (error, _ ("reading the password from standard input: "));
          return FALSE;
        }
    }
  else
    {
      g_autofree char *prompt = NULL;
      gsize confirm_len = 0;
      int tty;
      gboolean ok;

      tty = tty_open (error);
      if (tty < 0)
        {
          g_prefix_error (error, "%s",
                          _ ("use --password-stdin to read the password from a pipe: "));
          return FALSE;
        }
      /* TRANSLATORS: %s is the proxy user name */
      prompt = g_strdup_printf (_ ("Password for %s: "), username);
      ok = tty_read_secret (tty, prompt, buf, PASSWORD_MAX, &len, error)
           && tty_read_secret (tty, _ ("Repeat the password: "), confirm, PASSWORD_MAX,
                               &confirm_len, error);
      close (tty);
      if (!ok)
        return FALSE;
      if (len != confirm_len || memcmp (buf, confirm, len) != 0)
        {
          g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                               _ ("the passwords do not match"));
          return FALSE;
        }
    }
  if (len == 0)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                           _ ("the password is empty; to remove the stored password use "
                              "“pinholectl clear-credentials”"));
      return FALSE;
    }
  if (!g_utf8_validate (buf, (gssize) len, NULL))
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                           _ ("the password is not valid UTF-8"));
      return FALSE;
    }
  return ph_agent1_call_set_credentials_sync (ctl->agent, username, buf, NULL, error);
}

static gboolean
cmd_set_credentials (PhCtl *ctl, char **args, GError **error)
{
  char buf[PASSWORD_MAX];
  char confirm[PASSWORD_MAX];
  gboolean ok;

  if (*args[0] == '\0')
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("the user name is empty"));
      return FALSE;
    }
  /* Connect first, so that nobody types a password for an agent that is not there. */
  if (!ctl_connect (ctl, error))
    return FALSE;
  ok = set_credentials_with (ctl, args[0], buf, confirm, error);
  ph_wipe (buf, sizeof buf);
  ph_wipe (confirm, sizeof confirm);
  if (ok)
    /* TRANSLATORS: %s is the proxy user name */
    g_print (_ ("Credentials for %s stored.\n"), args[0]);
  return ok;
}

static gboolean
cmd_clear_credentials (PhCtl *ctl, char **args, GError **error)
{
  return ctl_connect (ctl, error)
         && ph_agent1_call_clear_credentials_sync (ctl->agent, NULL, error);
}

static gboolean
cmd_get (PhCtl *ctl, char **args, GError **error)
{
  g_autofree char *value = NULL;
  gboolean locked = FALSE;

  if (!ctl_connect (ctl, error)
      || !ph_agent1_call_get_setting_sync (ctl->agent, args[0], &value, &locked, NULL, error))
    return FALSE;
  if (ctl->json)
    {
      g_auto (PhJson) j = { .out = g_string_new (NULL) };

      json_open (&j, '{');
      json_key (&j, "key");
      json_string (&j, args[0]);
      json_key (&j, "value");
      json_string (&j, value);
      json_key (&j, "locked");
      json_boolean (&j, locked);
      json_close (&j, '}');
      json_print (&j);
    }
  else
    {
      /* Only the value, so that scripts can use $(pinholectl get KEY). */
      g_print ("%s\n", value);
    }
  return TRUE;
}

static gboolean
cmd_set (PhCtl *ctl, char **args, GError **error)
{
  return ctl_connect (ctl, error)
         && ph_agent1_call_set_setting_sync (ctl->agent, args[0], args[1], NULL, error);
}

static void
table_cell (GString *out, const char *text, glong width, gboolean last)
{
  g_string_append (out, text);
  if (!last)
    g_string_append_printf (out, "%*s", (int) (width - text_width (text) + 2), "");
}

static gboolean
cmd_settings (PhCtl *ctl, char **args, GError **error)
{
  g_autoptr (GVariant) settings = NULL;
  GVariantIter iter;
  const char *key;
  const char *value;
  const char *default_value;
  gboolean locked;

  if (!ctl_connect (ctl, error)
      || !ph_agent1_call_list_settings_sync (ctl->agent, &settings, NULL, error))
    return FALSE;

  if (ctl->json)
    {
      g_auto (PhJson) j = { .out = g_string_new (NULL) };

      json_open (&j, '[');
      g_variant_iter_init (&iter, settings);
      while (g_variant_iter_next (&iter, "(&s&sb&s)", &key, &value, &locked, &default_value))
        {
          json_open (&j, '{');
          json_key (&j, "key");
          json_string (&j, key);
          json_key (&j, "value");
          json_string (&j, value);
          json_key (&j, "default");
          json_string (&j, default_value);
          json_key (&j, "locked");
          json_boolean (&j, locked);
          json_close (&j, '}');
        }
      json_close (&j, ']');
      json_print (&j);
    }
  else
    {
      g_autoptr (GString) out = g_string_new (NULL);
      /* TRANSLATORS: column headings of "pinholectl settings" */
      const char *heading[] = { _ ("KEY"), _ ("VALUE"), _ ("DEFAULT"), _ ("LOCKED") };
      glong width[3];

      for (guint c = 0; c < 3; c++)
        width[c] = text_width (heading[c]);
      g_variant_iter_init (&iter, settings);
      while (g_variant_iter_next (&iter, "(&s&sb&s)", &key, &value, &locked, &default_value))
        {
          width[0] = MAX (width[0], text_width (key));
          width[1] = MAX (width[1], text_width (value));
          width[2] = MAX (width[2], text_width (default_value));
        }
      for (guint c = 0; c < 4; c++)
        table_cell (out, heading[c], c < 3 ? width[c] : 0, c == 3);
      end_line (out, 0);
      g_variant_iter_init (&iter, settings);
      while (g_variant_iter_next (&iter, "(&s&sb&s)", &key, &value, &locked, &default_value))
        {
          gsize start = out->len;

          table_cell (out, key, width[0], FALSE);
          table_cell (out, value, width[1], FALSE);
          table_cell (out, default_value, width[2], FALSE);
          /* TRANSLATORS: in the LOCKED column of a key set by IT; unlocked keys show nothing */
          table_cell (out, locked ? _ ("locked") : "", 0, TRUE);
          end_line (out, start);
        }
      g_print ("%s", out->str);
    }
  return TRUE;
}

#ifdef G_OS_UNIX
/* Which journal the agent logs to: the system unit's or the user's. */
static gboolean
logs_is_system (PhCtl *ctl, gboolean *system, GError **error)
{
  g_autoptr (GDBusConnection) system_bus = NULL;
  g_autoptr (GDBusConnection) session_bus = NULL;
  const char *mode;

  if (ctl->system || ctl->session)
    {
      *system = ctl->system;
      return TRUE;
    }
  if (ctl->address != NULL)
    {
      if (!ctl_connect (ctl, error) || !ctl_load_properties (ctl, error))
        return FALSE;
      mode = ph_agent1_get_mode (ctl->agent);
      if (g_strcmp0 (mode, "system") != 0 && g_strcmp0 (mode, "session") != 0)
        {
          g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED,
                       _ ("the agent runs in mode “%s”, not as a systemd unit; "
                          "its log is where it was started"),
                       mode != NULL ? mode : "");
          return FALSE;
        }
      *system = g_str_equal (mode, "system");
      return TRUE;
    }
  /* The log matters most when the agent is down, so it is not required to
   * run: the session's journal only when the agent runs there. */
  system_bus = bus_with_agent (G_BUS_TYPE_SYSTEM, NULL);
  if (system_bus == NULL)
    session_bus = bus_with_agent (G_BUS_TYPE_SESSION, NULL);
  *system = session_bus == NULL;
  return TRUE;
}

static gboolean
cmd_logs (PhCtl *ctl, char **args, GError **error)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) spawn_error = NULL;
  gboolean system = TRUE;
  int wait_status = 0;

  if (ctl->lines < -1 || ctl->lines == 0)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                           _ ("-n needs a number of lines greater than 0"));
      return FALSE;
    }
  if (!logs_is_system (ctl, &system, error))
    return FALSE;

  g_ptr_array_add (argv, g_strdup ("journalctl"));
  g_ptr_array_add (argv, g_strdup ("--no-pager"));
  g_ptr_array_add (argv, g_strdup ("-o"));
  g_ptr_array_add (argv, g_strdup ("short-iso"));
  g_ptr_array_add (argv, g_strdup ("-n"));
  g_ptr_array_add (argv, g_strdup_printf ("%d", ctl->lines > 0 ? ctl->lines : DEFAULT_LOG_LINES));
  g_ptr_array_add (argv, g_strdup (system ? "-u" : "--user-unit"));
  g_ptr_array_add (argv, g_strdup (PH_AGENT_UNIT));
  if (ctl->follow)
    g_ptr_array_add (argv, g_strdup ("-f"));
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_sync (NULL, (char **) argv->pdata, NULL,
                     G_SPAWN_SEARCH_PATH | G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL, NULL,
                     &wait_status, &spawn_error))
    {
      if (g_error_matches (spawn_error, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT))
        g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED,
                             _ ("journalctl was not found: the agent logs to the systemd journal, "
                                "which this system does not seem to have"));
      else
        g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_FAILED, _ ("could not run journalctl: %s"),
                     spawn_error->message);
      return FALSE;
    }
  if (WIFEXITED (wait_status))
    ctl->exit_status = WEXITSTATUS (wait_status);
  else if (WIFSIGNALED (wait_status))
    ctl->exit_status = 128 + WTERMSIG (wait_status);
  else
    ctl->exit_status = PH_CTL_EXIT_FAILED;
  return TRUE;
}

#else
/* The service's log file (ph_service_log_path): the last lines, then with --follow what is
 * appended, read every second as `tail -f` does. Warnings are in the Event Log too. */
static gboolean
cmd_logs (PhCtl *ctl, char **args, GError **error)
{
  const char *path = ph_service_log_path ();
  g_autofree char *text = NULL;
  gsize len = 0;
  int want = ctl->lines > 0 ? ctl->lines : DEFAULT_LOG_LINES;
  const char *start;

  if (ctl->lines < -1 || ctl->lines == 0)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                           _ ("-n needs a number of lines greater than 0"));
      return FALSE;
    }
  if (!g_file_get_contents (path, &text, &len, error))
    {
      g_prefix_error (error, _ ("the service's log (administrators only; warnings are also in "
                                "Event Viewer, Application, source “Pinhole Agent”): "));
      return FALSE;
    }
  /* Back from the end (its own newline aside) to the start of the last @want lines. */
  start = text + len;
  if (start > text && start[-1] == '\n')
    start--;
  while (start > text && !(start[-1] == '\n' && --want == 0))
    start--;
  fwrite (start, 1, (gsize) (text + len - start), stdout);
  fflush (stdout);
  while (ctl->follow)
    {
      g_autofree char *now = NULL;
      gsize now_len = 0;

      g_usleep (G_USEC_PER_SEC);
      if (!g_file_get_contents (path, &now, &now_len, NULL))
        continue;
      /* Rotated: start again from the top of the new file. */
      if (now_len < len)
        len = 0;
      fwrite (now + len, 1, now_len - len, stdout);
      fflush (stdout);
      len = now_len;
    }
  return TRUE;
}

#endif

static const PhCtlCommand commands[] = {
  { "status", NULL, "", N_ ("Show the agent's state, upstream and counters"), OPT_JSON, 0, 0,
    cmd_status },
  { "enable", NULL, "", N_ ("Switch the tunnel on"), 0, 0, 0, cmd_enable },
  { "disable", NULL, "", N_ ("Switch the tunnel off"), 0, 0, 0, cmd_disable },
  { "reload", NULL, "", N_ ("Read the configuration files again"), 0, 0, 0, cmd_reload },
  { "pin", "show", "", N_ ("Show the cloud proxy's key and certificates"), OPT_JSON, 0, 0,
    cmd_pin_show },
  /* TRANSLATORS: PIN is a command-line placeholder */
  { "pin", "trust", N_ ("[PIN]"), N_ ("Trust the cloud proxy's key (asks first unless --yes)"),
    OPT_YES, 0, 1, cmd_pin_trust },
  /* TRANSLATORS: USER is a command-line placeholder */
  { "set-credentials", NULL, N_ ("USER"),
    N_ ("Store the proxy password for USER (asked on the terminal, or --password-stdin)"),
    OPT_PASSWORD_STDIN, 1, 1, cmd_set_credentials },
  { "clear-credentials", NULL, "", N_ ("Remove the stored proxy password"), 0, 0, 0,
    cmd_clear_credentials },
  /* TRANSLATORS: KEY is a command-line placeholder */
  { "get", NULL, N_ ("KEY"), N_ ("Print a setting's value, e.g. upstream.host"), OPT_JSON, 1, 1,
    cmd_get },
  /* TRANSLATORS: KEY and VALUE are command-line placeholders */
  { "set", NULL, N_ ("KEY VALUE"), N_ ("Change a setting; an empty VALUE restores the default"), 0,
    2, 2, cmd_set },
  { "settings", NULL, "", N_ ("List every setting with its value and default"), OPT_JSON, 0, 0,
    cmd_settings },
  { "logs", NULL, "", N_ ("Show the agent's log from the journal (-n N lines, -f to follow)"),
    OPT_LINES | OPT_FOLLOW, 0, 0, cmd_logs },
};

/* gettext ("") would return the catalogue's header. */
static const char *
command_arguments (const PhCtlCommand *c)
{
  return *c->arguments != '\0' ? _ (c->arguments) : "";
}

static char *
command_usage (const PhCtlCommand *c)
{
  g_autoptr (GString) usage = g_string_new (c->name);

  if (c->sub != NULL)
    g_string_append_printf (usage, " %s", c->sub);
  if (*c->arguments != '\0')
    g_string_append_printf (usage, " %s", command_arguments (c));
  return g_string_free (g_steal_pointer (&usage), FALSE);
}

static char *
commands_help (void)
{
  g_autoptr (GString) out = g_string_new (_ ("Commands:"));
  g_auto (PhRows) rows = { 0 };

  g_string_append_c (out, '\n');
  rows_init (&rows, 2);
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autofree char *usage = command_usage (&commands[i]);

      rows_add (&rows, usage, _ (commands[i].summary));
    }
  rows_print (&rows, out);
  g_string_append_c (out, '\n');
  g_string_append (out, _ ("Options for the command go after it; --json prints JSON for "
                           "status, pin show, get and settings. Put -- before a VALUE that "
                           "starts with -."));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static const char *
exit_codes_help (void)
{
  return _ ("Exit status:\n"
            "  0  success\n"
            "  1  the agent reported a failure not listed below (or a question was declined)\n"
            "  2  usage error (unknown command, missing argument, no terminal to ask on)\n"
            "  3  the agent is not reachable (not running, or no bus)\n"
            "  4  permission denied\n"
            "  5  locked by the administrator\n"
            "  6  invalid setting or unknown key\n"
            "  7  the cloud proxy could not be reached or verified\n"
            "  8  not configured, or no credentials stored\n"
            "\n"
            "Passwords are never taken from the command line or the environment.");
}

static gboolean
check_options (PhCtl *ctl, const PhCtlCommand *c, const char *name, GError **error)
{
  const struct
  {
    PhCtlOpt opt;
    gboolean given;
    const char *flag;
  } used[] = {
    { OPT_JSON, ctl->json, "--json" },
    { OPT_YES, ctl->yes, "--yes" },
    { OPT_PASSWORD_STDIN, ctl->password_stdin, "--password-stdin" },
    { OPT_LINES, ctl->lines != -1, "-n" },
    { OPT_FOLLOW, ctl->follow, "--follow" },
  };

  if ((ctl->system ? 1 : 0) + (ctl->session ? 1 : 0) + (ctl->address != NULL ? 1 : 0) > 1)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                           _ ("--system, --session and --address exclude each other"));
      return FALSE;
    }
  for (guint i = 0; i < G_N_ELEMENTS (used); i++)
    {
      if (used[i].given && (c->options & used[i].opt) == 0)
        {
          /* TRANSLATORS: "“--json” does not apply to “enable”" */
          g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("“%s” does not apply to “%s”"),
                       used[i].flag, name);
          return FALSE;
        }
    }
  return TRUE;
}

/* Runs the command in ARGS (program name first); returns the exit status.
 * BAD_COMMAND_LINE tells a mistyped command line from a failure. */
static int
run (PhCtl *ctl, char **args, gboolean *bad_command_line, GError **error)
{
  guint argc = g_strv_length (args);
  const PhCtlCommand *command = NULL;
  g_autofree char *name = NULL;
  guint first_arg = 2;
  guint n_args;

  /* GOptionContext leaves the "--" that protects a VALUE such as "-1". */
  for (guint i = 1; i < argc; i++)
    {
      if (g_str_equal (args[i], "--"))
        {
          g_free (args[i]);
          memmove (&args[i], &args[i + 1], (argc - i) * sizeof (char *));
          argc--;
          break;
        }
    }
  if (argc < 2)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("no command given"));
      return PH_CTL_EXIT_USAGE;
    }
  /* Everything goes over D-Bus as a string, which must be UTF-8. */
  for (guint i = 1; i < argc; i++)
    {
      if (!g_utf8_validate (args[i], -1, NULL))
        {
          g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                       _ ("argument %u is not valid UTF-8"), i);
          return PH_CTL_EXIT_USAGE;
        }
    }

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      if (!g_str_equal (commands[i].name, args[1]))
        continue;
      if (commands[i].sub == NULL)
        {
          command = &commands[i];
          break;
        }
      if (argc >= 3 && g_str_equal (commands[i].sub, args[2]))
        {
          command = &commands[i];
          first_arg = 3;
          break;
        }
    }
  if (command == NULL)
    {
      if (g_str_equal (args[1], "pin"))
        g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                             _ ("“pin” needs “show” or “trust”"));
      else
        g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("unknown command “%s”"), args[1]);
      return PH_CTL_EXIT_USAGE;
    }

  name = command->sub != NULL ? g_strdup_printf ("%s %s", command->name, command->sub)
                              : g_strdup (command->name);
  n_args = argc - first_arg;
  if (n_args < command->min_args || n_args > command->max_args)
    {
      /* Never echo the arguments: a password typed there by mistake would
       * end up in the terminal's scrollback twice. */
      g_autofree char *usage = command_usage (command);

      if (command->func == cmd_set_credentials && n_args > command->max_args)
        {
          g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                               _ ("set-credentials takes only the user name: the password is "
                                  "asked for on the terminal, or read with --password-stdin"));
          return PH_CTL_EXIT_USAGE;
        }
      g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                   n_args < command->min_args ? _ ("missing argument; usage: pinholectl %s")
                                              : _ ("too many arguments; usage: pinholectl %s"),
                   usage);
      return PH_CTL_EXIT_USAGE;
    }
  if (!check_options (ctl, command, name, error))
    return PH_CTL_EXIT_USAGE;

  *bad_command_line = FALSE;
  ctl->exit_status = PH_CTL_EXIT_OK;
  if (!command->func (ctl, args + first_arg, error))
    return exit_code_for_error (*error);
  return ctl->exit_status;
}

int
main (int argc, char **argv)
{
  g_auto (PhCtl) ctl = { .lines = -1 };
  g_autoptr (GError) error = NULL;
  g_autoptr (GOptionContext) context = NULL;
  g_auto (GStrv) args = NULL;
  g_autofree char *summary = NULL;
  gboolean bad_command_line = TRUE;
  int status;
  const GOptionEntry entries[] = {
#ifdef G_OS_UNIX
    { "system", 0, 0, G_OPTION_ARG_NONE, &ctl.system, N_ ("Talk to the system service"), NULL },
    { "session", 0, 0, G_OPTION_ARG_NONE, &ctl.session, N_ ("Talk to the per-user agent"), NULL },
#endif
    { "address", 0, 0, G_OPTION_ARG_STRING, &ctl.address,
      N_ ("Talk to the agent at this D-Bus address (a private bus or the agent itself)"),
      N_ ("ADDRESS") },
    { "version", 0, 0, G_OPTION_ARG_NONE, &ctl.version, N_ ("Print the version and exit"), NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &ctl.json,
      N_ ("Print JSON (status, pin show, get, settings)"), NULL },
    { "yes", 'y', 0, G_OPTION_ARG_NONE, &ctl.yes,
      N_ ("Do not ask before trusting a key (pin trust)"), NULL },
    { "password-stdin", 0, 0, G_OPTION_ARG_NONE, &ctl.password_stdin,
      N_ ("Read the password as one line from standard input (set-credentials)"), NULL },
    { "lines", 'n', 0, G_OPTION_ARG_INT, &ctl.lines, N_ ("Show the last N lines (logs)"),
      N_ ("N") },
    { "follow", 'f', 0, G_OPTION_ARG_NONE, &ctl.follow, N_ ("Keep showing new lines (logs)"),
      NULL },
    { NULL },
  };

  setlocale (LC_ALL, "");
  ph_paths_bind_textdomain (GETTEXT_PACKAGE);
  textdomain (GETTEXT_PACKAGE);
  g_set_prgname ("pinholectl");
  /* Registers org.pinhole.Error.* so that the agent's errors come back as PH_ERROR codes. */
  ph_error_quark ();

  /* TRANSLATORS: the command-line synopsis after "pinholectl" */
  context = g_option_context_new (_ ("COMMAND [ARGUMENTS…]"));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  summary = commands_help ();
  g_option_context_set_summary (context, summary);
  g_option_context_set_description (context, exit_codes_help ());

#ifdef G_OS_WIN32
  /* The command line as UTF-16 gave it, not in the ANSI code page. */
  args = g_win32_get_command_line ();
#else
  args = g_strdupv (argv);
#endif
  if (!g_option_context_parse_strv (context, &args, &error))
    {
      g_printerr ("pinholectl: %s\n", error->message);
      g_printerr (_ ("Try “pinholectl --help”.\n"));
      return PH_CTL_EXIT_USAGE;
    }
  if (ctl.version)
    {
      g_print ("pinholectl %s\n", PH_VERSION);
      return PH_CTL_EXIT_OK;
    }
  if (g_strv_length (args) == 2 && g_str_equal (args[1], "help"))
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);

      g_print ("%s", help);
      return PH_CTL_EXIT_OK;
    }

  status = run (&ctl, args, &bad_command_line, &error);
  if (error != NULL)
    {
      g_dbus_error_strip_remote_error (error);
      g_printerr ("pinholectl: %s\n", error->message);
      if (bad_command_line)
        g_printerr (_ ("Try “pinholectl --help”.\n"));
    }
  return status;
}
