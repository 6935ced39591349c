/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ktls-unix.c: whether kernel TLS can carry the connection to the cloud
 * proxy. GnuTLS 3.7 decides it inside the handshake, for every session of
 * the process at once: only when it was built with kTLS, its system
 * configuration says "[global] ktls = true", the session reads and writes
 * through its own descriptor functions (gnutls_transport_set_int), and
 * the kernel has the "tls" TCP upper layer. The agent cannot turn it on
 * for one session; it can tell whether it will happen, and why not.
 *
 * Where it does happen (never tried: Debian 12's GnuTLS is built without
 * it and the development machine's kernel lacks CONFIG_TLS), the stream
 * keeps GnuTLS's own reads and the relay its copying path; still to do:
 * GnuTLS 3.7.9 drops TLS 1.3 post-handshake messages on a kTLS session,
 * so its tickets never arrive (no resumption) and a server's KeyUpdate
 * would break the connection, and its own automatic rekeying cannot reach
 * the kernel (GNUTLS_NO_AUTO_REKEY for such sessions); and the gain of
 * kTLS for a relay is splice() between the two sockets of a tunnel, a
 * new path in ph-relay.c with a pipe per busy tunnel. */
#define G_LOG_DOMAIN "pinhole-tls"

#include "ph-ktls.h"

#include <errno.h>
#include <string.h>
#include <gio/gio.h>
#include <gio/gnetworking.h>
#include <glib/gi18n.h>
#include <gnutls/gnutls.h>
#include <gnutls/socket.h>

/* GnuTLS names kTLS among its "hardware-features" when built with it;
 * Debian 12's 3.7.9 says "padlock pkcs11". */
static gboolean
gnutls_built_with_ktls (void)
{
  for (const gnutls_library_config_st *c = gnutls_get_library_config (); c->name != NULL; c++)
    if (g_str_equal (c->name, "hardware-features"))
      {
        g_auto (GStrv) words = g_strsplit (c->value, " ", -1);
        return g_strv_contains ((const char *const *) words, "ktls");
      }
  return FALSE;
}

/* "ktls = true" in the [global] section of GnuTLS's system configuration,
 * read as GnuTLS reads it (keys and values are case-insensitive). */
static gboolean
gnutls_config_enables_ktls (const char *path)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  gboolean in_global = FALSE;
  gboolean enabled = FALSE;

  if (path == NULL || !g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      char *eq;

      if (*line == '#' || *line == ';' || *line == '\0')
        continue;
      if (*line == '[')
        {
          in_global = g_ascii_strncasecmp (line, "[global]", 8) == 0;
          continue;
        }
      eq = strchr (line, '=');
      if (!in_global || eq == NULL)
        continue;
      *eq = '\0';
      if (g_ascii_strcasecmp (g_strstrip (line), "ktls") == 0)
        enabled = g_ascii_strcasecmp (g_strstrip (eq + 1), "true") == 0;
    }
  return enabled;
}

/* Asks the kernel for the "tls" upper layer on a socket that is not
 * connected: ENOENT when no such layer exists (the kernel loads the module
 * on demand first), ENOTCONN when it exists but wants an established
 * connection, which is all this asks. */
static gboolean
kernel_has_tls_ulp (char **why)
{
#ifdef TCP_ULP
  g_autoptr (GSocket) socket
      = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  int saved;

  if (socket == NULL)
    {
      *why = g_strdup (_ ("no socket to ask the kernel with"));
      return FALSE;
    }
  if (setsockopt (g_socket_get_fd (socket), IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") == 0)
    return TRUE;
  saved = errno;
  if (saved == ENOTCONN || saved == EEXIST)
    return TRUE;
  if (saved == ENOENT)
    *why = g_strdup (_ ("the kernel has no TLS module (no “tls” TCP upper layer: CONFIG_TLS)"));
  else
    /* TRANSLATORS: %s is the system's error text */
    *why = g_strdup_printf (_ ("the kernel refused its TLS layer (%s)"), g_strerror (saved));
  return FALSE;
#else
  *why = g_strdup (_ ("this system's kernel has no TLS layer"));
  return FALSE;
#endif
}

static char *
find_reasons (void)
{
  g_autoptr (GPtrArray) reasons = g_ptr_array_new_with_free_func (g_free);
  const char *config = gnutls_get_system_config_file ();
  char *why = NULL;

  if (!gnutls_built_with_ktls ())
    g_ptr_array_add (reasons,
                     /* TRANSLATORS: %s is GnuTLS's version */
                     g_strdup_printf (_ ("GnuTLS %s was built without kernel TLS"),
                                      gnutls_check_version (NULL)));
  else if (!gnutls_config_enables_ktls (config))
    g_ptr_array_add (reasons,
                     /* TRANSLATORS: %s is the path of GnuTLS's system configuration;
                      * "[global] ktls = true" is what to write in it: keep it */
                     g_strdup_printf (_ ("%s does not say “[global] ktls = true”"),
                                      config != NULL ? config : "/etc/gnutls/config"));
  if (!kernel_has_tls_ulp (&why))
    g_ptr_array_add (reasons, why);
  if (reasons->len == 0)
    return NULL;
  g_ptr_array_add (reasons, NULL);
  return g_strjoinv ("; ", (char **) reasons->pdata);
}

const char *
ph_ktls_get_unavailable_reason (void)
{
  static gsize once;
  static char *reason;

  if (g_once_init_enter (&once))
    {
      reason = find_reasons ();
      g_once_init_leave (&once, 1);
    }
  return reason;
}

PhKtlsDirections
ph_ktls_get_directions (gnutls_session_t session)
{
  gnutls_transport_ktls_enable_flags_t on = gnutls_transport_is_ktls_enabled (session);
  PhKtlsDirections dirs = PH_KTLS_NONE;

  if (on & GNUTLS_KTLS_RECV)
    dirs |= PH_KTLS_RX;
  if (on & GNUTLS_KTLS_SEND)
    dirs |= PH_KTLS_TX;
  return dirs;
}
