/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-capture-nft.c: the capture rules on Linux, written as nft's own language and handed to nft
 * on its standard input (never in argv, never in a file), so that one table, "inet pinhole", is
 * created, replaced or deleted in one transaction and nothing else of nftables is touched.
 *
 * The table, for capture=local (this machine's own connections; UID, MARK, PORTS and LISTENER
 * filled in):
 *
 *   table inet pinhole {}
 *   delete table inet pinhole
 *   table inet pinhole {
 *     chain output {
 *       type nat hook output priority -100; policy accept;
 *       meta skuid UID return              # the agent's own connections: no loop
 *       meta mark MARK return              # its marked sockets ([transparent] mark=; not if 0)
 *       ip daddr 127.0.0.0/8 return        # loopback, then any address of this machine
 *       ip6 daddr ::1 return
 *       fib daddr type local return
 *       meta l4proto tcp th dport { PORTS } redirect to :LISTENER
 *     }
 *     chain output-udp {
 *       type filter hook output priority filter; policy accept;
 *       (the same five returns)
 *       udp dport { PORTS } reject         # QUIC: refused, so browsers fall back to TCP
 *     }
 *   }
 *
 * and for capture=gateway IFACE (the LAN's connections the machine forwards):
 *
 *     chain prerouting {
 *       type nat hook prerouting priority dstnat; policy accept;
 *       iifname "IFACE" meta l4proto tcp th dport { PORTS } fib daddr type != local
 *           redirect to :LISTENER
 *     }
 *     chain forward {
 *       type filter hook forward priority filter; policy accept;
 *       iifname "IFACE" udp dport { PORTS } reject
 *     }
 *
 * UDP to the captured ports is refused (an ICMP port unreachable, at once): HTTP/3 (QUIC) would
 * otherwise go around the tunnel, and browsers that hear the refusal use TCP, which is captured.
 *
 * Both rules start with "meta nfproto ipv4" (or ipv6) when the transparent listeners take one
 * family only: a connection of the other is then left alone instead of being sent to a port
 * where nothing listens.
 *
 * Connections to the gateway itself (its DNS, its web page) are left alone. The first two lines
 * make the table if it is missing so that the delete cannot fail: an existing table is replaced
 * atomically, and removal is the same two lines alone. */
#define G_LOG_DOMAIN "pinhole-capture"

#include "ph-capture.h"

#include <string.h>
#include <unistd.h>
#include <glib/gi18n.h>

#define TABLE_RESET "table " PH_CAPTURE_TABLE " {}\ndelete table " PH_CAPTURE_TABLE "\n"

/* Checked again here, since the name goes into the ruleset between quotes. */
static gboolean
iface_ok (const char *iface)
{
  gsize n = strlen (iface);

  if (n == 0 || n > 15)
    return FALSE;
  for (const char *c = iface; *c; c++)
    if (!(g_ascii_isalnum (*c) || strchr ("-_.@", *c) != NULL))
      return FALSE;
  return TRUE;
}

/* What capture=local leaves alone: the agent's own connections (its user, its mark) and those to
 * this machine. */
static void
append_local_exclusions (GString *out, guint32 agent_uid, guint32 mark)
{
  g_string_append_printf (out, "    meta skuid %u return\n", agent_uid);
  if (mark != 0)
    g_string_append_printf (out, "    meta mark %u return\n", mark);
  g_string_append (out, "    ip daddr 127.0.0.0/8 return\n"
                        "    ip6 daddr ::1 return\n"
                        "    fib daddr type local return\n");
}

char *
ph_capture_ruleset (const char *gateway_iface, const guint16 *ports, guint n_ports,
                    guint16 listener_port, PhCaptureFamilies families, guint32 agent_uid,
                    guint32 mark)
{
  g_autoptr (GString) set = g_string_new (NULL);
  const char *family = "";
  GString *out;

  g_return_val_if_fail (n_ports > 0 && listener_port > 0, NULL);
  g_return_val_if_fail (gateway_iface == NULL || iface_ok (gateway_iface), NULL);
  g_return_val_if_fail ((families & (PH_CAPTURE_IPV4 | PH_CAPTURE_IPV6)) != 0, NULL);

  if (!(families & PH_CAPTURE_IPV6))
    family = "meta nfproto ipv4 ";
  else if (!(families & PH_CAPTURE_IPV4))
    family = "meta nfproto ipv6 ";

  for (guint i = 0; i < n_ports; i++)
    g_string_append_printf (set, "%s%u", i > 0 ? ", " : "", ports[i]);
  out = g_string_new (TABLE_RESET);
  g_string_append (out, "table " PH_CAPTURE_TABLE " {\n");
  if (gateway_iface != NULL)
    {
      g_string_append (out, "  chain prerouting {\n"
                            "    type nat hook prerouting priority dstnat; policy accept;\n");
      g_string_append_printf (out,
                              "    iifname \"%s\" %smeta l4proto tcp th dport { %s } "
                              "fib daddr type != local redirect to :%u\n",
                              gateway_iface, family, set->str, listener_port);
      g_string_append (out, "  }\n"
                            "  chain forward {\n"
                            "    type filter hook forward priority filter; policy accept;\n");
      g_string_append_printf (out, "    iifname \"%s\" %sudp dport { %s } reject\n", gateway_iface,
                              family, set->str);
    }
  else
    {
      g_string_append (out, "  chain output {\n"
                            "    type nat hook output priority -100; policy accept;\n");
      append_local_exclusions (out, agent_uid, mark);
      g_string_append_printf (out, "    %smeta l4proto tcp th dport { %s } redirect to :%u\n",
                              family, set->str, listener_port);
      g_string_append (out, "  }\n"
                            "  chain output-udp {\n"
                            "    type filter hook output priority filter; policy accept;\n");
      append_local_exclusions (out, agent_uid, mark);
      g_string_append_printf (out, "    %sudp dport { %s } reject\n", family, set->str);
    }
  g_string_append (out, "  }\n}\n");
  return g_string_free (out, FALSE);
}

/* nft from PATH, else where Debian and others put it (a service's PATH may lack sbin). */
static char *
find_nft (GError **error)
{
  static const char *const places[] = { "/usr/sbin/nft", "/sbin/nft" };
  char *path = g_find_program_in_path ("nft");

  if (path != NULL)
    return path;
  for (gsize i = 0; i < G_N_ELEMENTS (places); i++)
    if (g_file_test (places[i], G_FILE_TEST_IS_EXECUTABLE))
      return g_strdup (places[i]);
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                       /* TRANSLATORS: nft is a program's name; nftables a Debian package's */
                       _ ("nft not found: install nftables"));
  return NULL;
}

/* Runs nft with @args, @input on its standard input; its output in @out. A failure carries the
 * first line of what nft said. */
static gboolean
run_nft (const char *const *args, const char *input, char **out, GError **error)
{
  g_autofree char *nft = find_nft (error);
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GSubprocess) proc = NULL;
  g_autofree char *stdout_text = NULL;
  g_autofree char *stderr_text = NULL;
  GSubprocessFlags flags = G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE;

  if (nft == NULL)
    return FALSE;
  g_ptr_array_add (argv, nft);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);
  if (input != NULL)
    flags |= G_SUBPROCESS_FLAGS_STDIN_PIPE;
  proc = g_subprocess_newv ((const char *const *) argv->pdata, flags, error);
  if (proc == NULL)
    return FALSE;
  if (!g_subprocess_communicate_utf8 (proc, input, NULL, &stdout_text, &stderr_text, error))
    return FALSE;
  if (!g_subprocess_get_successful (proc))
    {
      g_auto (GStrv) lines = g_strsplit (stderr_text != NULL ? stderr_text : "", "\n", -1);
      const char *said = NULL;

      for (guint i = 0; lines[i] != NULL && said == NULL; i++)
        if (*g_strstrip (lines[i]) != '\0')
          said = lines[i];
      if (said != NULL)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "nft: %s", said);
      else
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                     /* TRANSLATORS: nft is a program's name */
                     _ ("nft failed without a message"));
      return FALSE;
    }
  if (out != NULL)
    *out = g_steal_pointer (&stdout_text);
  return TRUE;
}

gboolean
ph_capture_apply (const char *gateway_iface, const guint16 *ports, guint n_ports,
                  guint16 listener_port, PhCaptureFamilies families, guint32 mark, GError **error)
{
  static const char *const args[] = { "-f", "-", NULL };
  g_autofree char *ruleset = NULL;

  if (n_ports == 0 || listener_port == 0 || (families & (PH_CAPTURE_IPV4 | PH_CAPTURE_IPV6)) == 0
      || (gateway_iface != NULL && !iface_ok (gateway_iface)))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           /* TRANSLATORS: the capture rules could not be written */
                           _ ("no ports, no listener port or a bad interface name to capture"));
      return FALSE;
    }
  ruleset = ph_capture_ruleset (gateway_iface, ports, n_ports, listener_port, families, getuid (),
                                mark);
  return run_nft (args, ruleset, NULL, error);
}

gboolean
ph_capture_remove (GError **error)
{
  static const char *const args[] = { "-f", "-", NULL };

  return run_nft (args, TABLE_RESET, NULL, error);
}

gboolean
ph_capture_exists (gboolean *exists, GError **error)
{
  static const char *const args[] = { "list", "tables", "inet", NULL };
  g_autofree char *out = NULL;
  g_auto (GStrv) lines = NULL;

  *exists = FALSE;
  if (!run_nft (args, NULL, &out, error))
    return FALSE;
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_equal (g_strstrip (lines[i]), "table " PH_CAPTURE_TABLE))
      *exists = TRUE;
  return TRUE;
}
