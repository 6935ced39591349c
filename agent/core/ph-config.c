/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-config.c: defaults in one table, GKeyFile loading with file:line
 * reporting of every problem, and checks that span several keys. */
#define G_LOG_DOMAIN "pinhole-config"

#include "ph-config.h"
#include "ph-error.h"
#include "ph-file.h"
#include "ph-host-list.h"
#include "ph-wipe.h"

#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>
#include <glib/gi18n.h>

struct _PhConfig
{
  GPtrArray *listen; /* of GInetSocketAddress */
  GPtrArray *allow;  /* of GInetAddressMask */
  GStrv socks_users; /* names; their passwords are in the secret store */
  /* socks_users' passwords, name → password, read from the secret store; wiped on free */
  GHashTable *socks_passwords;

  GPtrArray *transparent; /* of GInetSocketAddress; empty: no transparent listener */
  guint mark;             /* on the agent's own outgoing sockets; 0: none */
  GArray *capture_ports;  /* of guint16 */
  PhCaptureMode capture;
  char *capture_interface; /* capture=gateway IFACE */

  char *host;         /* the first proxy's, for messages and the secret store */
  GPtrArray *proxies; /* of PhProxyEntry, upstream.host in order; empty: none */
  guint port;
  char *server_name; /* as set; NULL: each proxy's own name */
  PhFailover failover;
  PhHttp2 http2;
  guint h2_connections;
  GPtrArray *pins; /* of PhPin */
  PhVerifyMode verify;
  char *ca_file;
  PhKtlsMode ktls;
  char *username;
  char *password_file;
  char *password; /* read from password_file; wiped on free */
  guint connect_timeout_ms;
  guint handshake_timeout_ms;
  guint response_timeout_ms;
  guint warm;
  guint idle_connections;
  guint idle_lifetime_ms;

  guint idle_timeout_ms;
  guint head_timeout_ms;
  guint max_tunnels; /* PH_CONFIG_MAX_TUNNELS_AUTO: the listener derives it */

  PhHostList *direct;
  PhHostList *block;
  gboolean resolve_for_cidr;
  PhUnreachablePolicy when_unreachable;
  char *portal_check; /* NULL: no captive-portal check */
  guint portal_minutes;
  PhPortalPolicy portal;
  PhSystemProxyMode system_proxy_mode;
  GStrv machine_proxy; /* [system-proxy] machine=: consumer names, no repeats; NULL: none */
  char *doctor_target; /* "host:port" ("[v6]:port"); NULL: each proxy's own name:443 */

  PhLogLevel log_level;

  /* Where the values came from, for the control interface. */
  GHashTable *values; /* "group.key" -> the value a file set (after layering) */
  GHashTable *locked; /* set of "group.key" set by a managed drop-in */
};

struct _PhConfigFile
{
  char *path;
  char *data;        /* used instead of reading @path when set */
  gboolean managed;  /* an IT drop-in: the keys it sets are locked */
  gboolean optional; /* a missing file is an empty layer */
};

/* One entry of upstream.host: "NAME[:PORT] [server-name=NAME]". */
typedef struct
{
  char *host;
  guint port;        /* 0: upstream.port */
  char *server_name; /* NULL: upstream.server-name, else host */
} PhProxyEntry;

static void
proxy_entry_free (PhProxyEntry *e)
{
  g_free (e->host);
  g_free (e->server_name);
  g_free (e);
}

typedef struct _PhConfigKey PhKeyDef;
typedef gboolean (*PhKeyParse) (PhConfig *cfg, const PhKeyDef *def, const char *value,
                                GError **error);

struct _PhConfigKey
{
  const char *group;
  const char *key;
  const char *fallback; /* parsed by the same function as a file's value */
  PhKeyParse parse;
  gsize offset; /* for the generic parsers */
  guint min, max;
  /* For people (ph_config_key_get_summary): a title, and what it does in a few sentences. */
  const char *summary;
  const char *explain;
};

#define FIELD(f) G_STRUCT_OFFSET (PhConfig, f)
#define FIELD_PTR(cfg, def, type) ((type *) ((guint8 *) (cfg) + (def)->offset))

static gboolean parse_listen (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_allow (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_host (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_proxies (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_string (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_uint (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_duration (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_uint_or_auto (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_pins (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_verify (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_ktls (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_level (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_host_list (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_bool (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_choice (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_portal_check (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_doctor_target (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_names (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_ports (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_capture (PhConfig *, const PhKeyDef *, const char *, GError **);
static gboolean parse_machine (PhConfig *, const PhKeyDef *, const char *, GError **);

#define DAY_MS (24u * 3600u * 1000u)

/* Every key the agent knows, with its default, and what it is for in words people read (the
 * Group Policy templates are made from these: installer/windows/policy/). */
static const PhKeyDef key_defs[] = {
  { "listener", "address", "127.0.0.1:3128;[::1]:3128", parse_listen, FIELD (listen), 1,
    .summary = N_ ("Listen addresses"),
    .explain = N_ ("Where the local proxy listens for browsers and other programs (HTTP and "
                   "SOCKS5): IPv4:PORT or [IPv6]:PORT. An address that is not loopback serves "
                   "other machines and needs the allowed client networks.") },
  { "listener", "allow", "", parse_allow, .summary = N_ ("Allowed client networks"),
    .explain = N_ ("Networks whose clients may use a listen address that is not loopback, such "
                   "as 192.168.1.0/24 or fd00::/8. Empty: loopback clients only.") },
  /* SOCKS5 clients that are not on loopback sign in as one of these (RFC 1929). */
  { "listener", "socks-users", "", parse_names, FIELD (socks_users), .summary = N_ ("SOCKS5 users"),
    .explain = N_ ("The user names that SOCKS5 clients which are not on loopback sign in as. "
                   "Their passwords are set with “pinholectl socks-user add” and kept in the "
                   "credential store, never in the configuration. Empty: no sign-in.") },
  /* The transparent listener (ph-server.h) and the nftables rules that feed it (ph-capture.h). */
  { "transparent", "address", "", parse_listen, FIELD (transparent), 0,
    .summary = N_ ("Transparent listen addresses"),
    .explain = N_ ("Where the connections that the capture rules redirect arrive; each is "
                   "carried to the destination its TLS SNI or HTTP Host names. Empty: none. "
                   "Linux only.") },
  { "transparent", "mark", "28776", parse_uint, FIELD (mark), 0, G_MAXINT32,
    .summary = N_ ("Mark of the agent's own connections"),
    .explain = N_ ("The firewall mark on the agent's outgoing connections, which the capture "
                   "rules leave alone. 0: none. Linux only.") },
  { "transparent", "ports", "80,443", parse_ports, .summary = N_ ("Captured TCP ports"),
    .explain = N_ ("The TCP ports whose connections the capture rules redirect to the "
                   "transparent listener. Linux only.") },
  { "transparent", "capture", "off", parse_capture, .summary = N_ ("Transparent capture"),
    .explain = N_ ("Which connections nftables rules send to the transparent listener: off; "
                   "local (every program of this machine but the agent); or gateway IFACE "
                   "(what the LAN interface IFACE forwards). Linux only.") },
  { "upstream", "host", "", parse_proxies, .summary = N_ ("Cloud proxies"),
    .explain = N_ ("The cloud HTTPS proxies, in order of preference: NAME, NAME:PORT or "
                   "[IPv6]:PORT, each optionally followed by server-name=NAME. Until one is "
                   "set, the agent runs unconfigured.") },
  { "upstream", "port", "443", parse_uint, FIELD (port), 1, 65535,
    .summary = N_ ("Cloud proxy port"),
    .explain = N_ ("The TLS port of a cloud proxy whose entry names none.") },
  { "upstream", "server-name", "", parse_host, FIELD (server_name),
    .summary = N_ ("Cloud proxy server name"),
    .explain = N_ ("The name sent in TLS SNI and checked in the certificate. Empty: each "
                   "proxy's own host name.") },
  { "upstream", "failover", "priority", parse_choice, FIELD (failover),
    .summary = N_ ("Failover between cloud proxies"),
    .explain = N_ ("Which cloud proxy new connections go to when there are several: priority "
                   "(the first healthy one in order) or round-robin (every healthy one in "
                   "turn).") },
  { "upstream", "http2", "auto", parse_choice, FIELD (http2),
    .summary = N_ ("HTTP/2 to the cloud proxy"),
    .explain = N_ ("Whether tunnels (CONNECT) and plain http:// requests go as streams of one "
                   "HTTP/2 connection per cloud proxy: auto (the default: offer h2 by ALPN and "
                   "use it when the proxy picks it, as nghttpx does; HTTP/1.1 otherwise, as "
                   "with stunnel), off (HTTP/1.1, one connection per tunnel) or require (a "
                   "proxy that does not pick h2 fails the request). An agent built without "
                   "libnghttp2 treats auto as off and fails require at connect.") },
  { "upstream", "h2-connections", "1", parse_uint, FIELD (h2_connections), 1, 16,
    .summary = N_ ("HTTP/2 connections per cloud proxy"),
    .explain = N_ ("How many HTTP/2 connections to one cloud proxy its streams are spread "
                   "over: a new one is made while a stream arrives and every open one carries "
                   "some. 1 (the default) is the fewest sessions on the office firewall.") },
  { "upstream", "pins", "", parse_pins, .summary = N_ ("Pinned public keys"),
    .explain = N_ ("SHA-256 pins of the cloud proxy's public key (SPKI), each written "
                   "sha256//BASE64; list several to rotate keys.") },
  { "upstream", "verify", "", parse_verify, .summary = N_ ("Server verification"),
    .explain = N_ ("How the cloud proxy is checked before any credential is sent to it: pin "
                   "(its key matches a pin), ca (its certificate chains to a trusted CA and "
                   "names the server) or pin+ca (both). Not set: pin when pins are set, else "
                   "ca.") },
  { "upstream", "ca-file", "", parse_string, FIELD (ca_file), .summary = N_ ("Extra CA bundle"),
    .explain = N_ ("A PEM file of CA certificates trusted for the ca and pin+ca checks, "
                   "besides the system's.") },
  { "upstream", "ktls", "auto", parse_ktls, .summary = N_ ("Kernel TLS"),
    .explain = N_ ("Whether the kernel may run the cipher of the connections to the cloud "
                   "proxy: auto (where it can), on (required) or off. Linux only.") },
  { "upstream", "username", "", parse_string, FIELD (username),
    .summary = N_ ("Cloud proxy user name"),
    .explain = N_ ("The user name the agent signs in to the cloud proxy with. The password is "
                   "never in the configuration: it is kept in the credential store, or read "
                   "from the password file.") },
  { "upstream", "password-file", "", parse_string, FIELD (password_file),
    .summary = N_ ("Password file"),
    .explain = N_ ("The path of a file that holds only the cloud proxy's password and that "
                   "nobody but the agent may read: instead of the credential store, for "
                   "machines nobody signs in to.") },
  { "upstream", "connect-timeout", "10s", parse_duration, FIELD (connect_timeout_ms), 100, DAY_MS,
    .summary = N_ ("Connect timeout"),
    .explain = N_ ("How long opening the TCP connection to a cloud proxy may take.") },
  { "upstream", "handshake-timeout", "10s", parse_duration, FIELD (handshake_timeout_ms), 100,
    DAY_MS, .summary = N_ ("TLS handshake timeout"),
    .explain = N_ ("How long the TLS handshake with a cloud proxy may take.") },
  { "upstream", "response-timeout", "60s", parse_duration, FIELD (response_timeout_ms), 100, DAY_MS,
    .summary = N_ ("Response timeout"),
    .explain = N_ ("How long a cloud proxy has to answer a CONNECT or a plain request.") },
  /* The ceiling of the warm pool, which follows demand below it. Measured on loopback, 2 cores,
   * quiet, 3 interleaved pairs (tests/bench --quick), warm=2 against 8: sequential new-tunnel
   * p50 4.26 / 4.39 ms and p99 16.0 / 16.2 ms (medians), new tunnels/s at c=32 207 / 218, plain
   * requests/s on new connections 5,685 / 5,174; of 330 sequential tunnels 107 waited for a new
   * connection at 2, 34 at 8, yet p90 stayed at 13 ms (the cloud end's own delay on a young
   * connection). No clear gain near the cloud; a cloud far away (a handshake of tens of ms) is
   * where a higher ceiling pays. */
  { "upstream", "warm", "2", parse_uint, FIELD (warm), 0, 64, .summary = N_ ("Warm connections"),
    .explain = N_ ("The most verified TLS connections kept ready, so that a new tunnel does not "
                   "wait for a handshake (0: none). Raise it when the cloud proxy is far "
                   "away.") },
  { "upstream", "idle-connections", "64", parse_uint, FIELD (idle_connections), 0, 4096,
    .summary = N_ ("Idle connections kept"),
    .explain = N_ ("The most connections of plain http:// requests kept open to the cloud "
                   "proxy for the next request, shared by every client (0: none).") },
  /* Shorter than Squid's pconn_timeout (1 min) and nghttpx's (1 min), so the proxy rarely closes
   * one as it is reused; Apache's KeepAliveTimeout (5 s) is shorter, and the idle probe and the
   * retry rule cover that. */
  { "upstream", "idle-lifetime", "50s", parse_duration, FIELD (idle_lifetime_ms), 1000, DAY_MS,
    .summary = N_ ("Idle connection lifetime"),
    .explain = N_ ("How long a connection kept open stays idle before it is closed; keep it "
                   "below the cloud proxy's own limit (Squid's is 1 min).") },
  { "tunnel", "idle-timeout", "300s", parse_duration, FIELD (idle_timeout_ms), 1000, 7 * DAY_MS,
    .summary = N_ ("Idle tunnel timeout"),
    .explain = N_ ("A tunnel with no traffic either way for this long is closed.") },
  { "tunnel", "head-timeout", "10s", parse_duration, FIELD (head_timeout_ms), 100, 3600 * 1000,
    .summary = N_ ("Request head timeout"),
    .explain = N_ ("How long a client has to send a complete request head.") },
  { "tunnel", "max-tunnels", "auto", parse_uint_or_auto, FIELD (max_tunnels), 1, 1000000,
    .summary = N_ ("Maximum open tunnels"),
    .explain = N_ ("Open tunnels at most; more are refused with 503. auto: as many as the "
                   "system's limit on open files allows.") },
  /* Routes (ph-route.h): one direct list for the agent, the PAC and the desktop's exceptions;
   * a block list; what happens while the cloud proxy cannot be reached; captive portals. */
  { "route", "direct", "", parse_host_list, FIELD (direct), .summary = N_ ("Direct destinations"),
    .explain = N_ ("Destinations reached directly, never through the cloud proxy: names, "
                   "*.suffix, .suffix, addresses, networks such as 10.0.0.0/8, and <local> "
                   "(names without a dot). Also the PAC file's DIRECT and the system proxy's "
                   "exceptions.") },
  { "route", "block", "", parse_host_list, FIELD (block), .summary = N_ ("Blocked destinations"),
    .explain = N_ ("Destinations refused with 403, in the same forms as the direct ones; read "
                   "before them.") },
  { "route", "resolve-for-cidr", "false", parse_bool, FIELD (resolve_for_cidr),
    .summary = N_ ("Resolve names for network rules"),
    .explain = N_ ("Whether names are resolved to match the network rules (such as "
                   "10.0.0.0/8) of the direct and blocked destinations; the local resolver "
                   "then sees every site visited.") },
  { "route", "when-unreachable", "block", parse_choice, FIELD (when_unreachable),
    .summary = N_ ("When the cloud proxy cannot be reached"),
    .explain = N_ ("While no cloud proxy answers (TCP or TLS): block (requests are refused) or "
                   "direct (they go directly). A pin mismatch, an untrusted certificate or "
                   "rejected credentials never go directly.") },
  { "route", "portal-check", "", parse_portal_check, .summary = N_ ("Captive portal check"),
    .explain = N_ ("An http:// URL that answers 204 on an open network, checked directly when "
                   "the cloud proxy cannot be reached: a redirect or a page means a captive "
                   "portal. Empty: no check.") },
  { "route", "portal-minutes", "5", parse_uint, FIELD (portal_minutes), 1, 24 * 60,
    .summary = N_ ("Minutes behind a captive portal"),
    .explain = N_ ("How many minutes requests go directly behind a captive portal (with "
                   "allow) before the check runs again.") },
  { "route", "portal", "allow", parse_choice, FIELD (portal),
    .summary = N_ ("Behind a captive portal"),
    .explain = N_ ("allow: requests go directly for a while, so that the browser can reach "
                   "the sign-in page; block: they stay refused.") },
  /* Read by the tray: the system proxy names the agent (manual) or its PAC (pac). */
  { "system-proxy", "mode", "manual", parse_choice, FIELD (system_proxy_mode),
    .summary = N_ ("System proxy mode"),
    .explain = N_ ("What the tray sets the system proxy to: manual (the agent's address, with "
                   "the direct destinations as exceptions) or pac (the agent's PAC file).") },
  /* Applied by the system service: the machine-wide consumers pointed at the agent while the
   * tunnel is on (ph-machine-proxy.h). Opt-in. */
  { "system-proxy", "machine", "", parse_machine, .summary = N_ ("Machine-wide proxy"),
    .explain = N_ ("The machine-wide consumers pointed at the agent while the tunnel is on: "
                   "winhttp (WinHTTP's default proxy) on Windows; environment, systemd, apt "
                   "and docker on Linux, where the others are skipped.") },
  /* The doctor's authentication probe (ph-doctor.h): a CONNECT the proxy allows. */
  { "doctor", "target", "", parse_doctor_target, .summary = N_ ("Diagnosis sign-in target"),
    .explain = N_ ("The HOST:PORT that the diagnosis asks each cloud proxy to connect to, "
                   "with the stored credentials. Empty: the proxy's own name, port 443.") },
  { "log", "level", "info", parse_level, .summary = N_ ("Log level"),
    .explain = N_ ("How much the agent logs: error, warning, info or debug. Credentials are "
                   "never logged.") },
};

/* The words of each choice key, in the order of its enum, NULL-terminated. */
static const struct
{
  const char *key;
  const char *words[4];
} choices[] = {
  { "upstream.failover", { "priority", "round-robin" } },
  { "upstream.http2", { "auto", "off", "require" } },
  { "route.when-unreachable", { "block", "direct" } },
  { "route.portal", { "allow", "block" } },
  { "system-proxy.mode", { "manual", "pac" } },
};

/* Problems found while loading; all are reported, not just the first.
 * @path is the file being read, or NULL once every layer is in. */
typedef struct
{
  GString *text;
  const char *path;
} PhProblems;

static void G_GNUC_PRINTF (6, 7)
    problem_in (PhProblems *p, const char *path, guint line, const char *group, const char *key,
                const char *fmt, ...)
{
  va_list args;
  g_autofree char *msg = NULL;

  va_start (args, fmt);
  msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  if (p->text->len > 0)
    g_string_append_c (p->text, '\n');
  g_string_append_printf (p->text, "%s:%u: ", path, line);
  if (group != NULL)
    g_string_append_printf (p->text, "[%s] ", group);
  if (key != NULL)
    g_string_append_printf (p->text, "%s: ", key);
  g_string_append (p->text, msg);
}

#define problem(p, line, group, key, ...) problem_in (p, (p)->path, line, group, key, __VA_ARGS__)

static char **
split_list (const char *value)
{
  g_auto (GStrv) parts = g_strsplit_set (value, ";,", -1);
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();

  for (guint i = 0; parts[i] != NULL; i++)
    {
      char *item = g_strstrip (parts[i]);
      if (*item != '\0')
        g_strv_builder_add (out, item);
    }
  return g_strv_builder_end (out);
}

GInetSocketAddress *
ph_config_parse_listen_address (const char *text, GError **error)
{
  g_autofree char *host = NULL;
  g_autoptr (GInetAddress) addr = NULL;
  const char *port_str;
  guint64 port = 0;

  if (text[0] == '[')
    {
      const char *close = strchr (text, ']');
      if (close == NULL || close[1] != ':')
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                       /* TRANSLATORS: %s is what the user wrote; [IPv6]:PORT is the form
                        * expected, e.g. [::1]:3128 (translate PORT if you like, keep the
                        * brackets and the colon) */
                       _ ("“%s”: expected [IPv6]:PORT"), text);
          return NULL;
        }
      host = g_strndup (text + 1, close - text - 1);
      port_str = close + 2;
    }
  else
    {
      const char *colon = strrchr (text, ':');
      if (colon == NULL || strchr (text, ':') != colon)
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                       /* TRANSLATORS: %s is what the user wrote; IPv4:PORT and [IPv6]:PORT
                        * are the forms expected, e.g. 127.0.0.1:3128 or [::1]:3128 */
                       _ ("“%s”: expected IPv4:PORT or [IPv6]:PORT"), text);
          return NULL;
        }
      host = g_strndup (text, colon - text);
      port_str = colon + 1;
    }
  addr = g_inet_address_new_from_string (host);
  if (addr == NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: %s is the host part of a listener address */
                   _ ("“%s” is not an IP address (listeners bind to addresses, not names)"), host);
      return NULL;
    }
  if (!g_ascii_string_to_unsigned (port_str, 10, 1, 65535, &port, NULL))
    {
      /* TRANSLATORS: %s is the port part of a listener address */
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG, _ ("“%s” is not a port (1-65535)"),
                   port_str);
      return NULL;
    }
  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (addr, (guint16) port));
}

static gboolean
parse_listen (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_auto (GStrv) items = split_list (value);
  g_autoptr (GPtrArray) list = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; items[i] != NULL; i++)
    {
      GInetSocketAddress *sa = ph_config_parse_listen_address (items[i], error);
      if (sa == NULL)
        return FALSE;
      g_ptr_array_add (list, sa);
    }
  if (list->len < def->min)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                           /* TRANSLATORS: said of [listener] address= when it lists none */
                           _ ("needs at least one address"));
      return FALSE;
    }
  g_clear_pointer (FIELD_PTR (cfg, def, GPtrArray *), g_ptr_array_unref);
  *FIELD_PTR (cfg, def, GPtrArray *) = g_steal_pointer (&list);
  return TRUE;
}

static gboolean
parse_allow (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_auto (GStrv) items = split_list (value);
  g_autoptr (GPtrArray) list = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; items[i] != NULL; i++)
    {
      g_autoptr (GError) local = NULL;
      GInetAddressMask *mask = g_inet_address_mask_new_from_string (items[i], &local);
      if (mask == NULL)
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                       /* TRANSLATORS: %s is one item of [listener] allow= */
                       _ ("“%s” is not a network (expected e.g. 192.168.1.0/24 or fd00::/8)"),
                       items[i]);
          return FALSE;
        }
      g_ptr_array_add (list, mask);
    }
  g_clear_pointer (&cfg->allow, g_ptr_array_unref);
  cfg->allow = g_steal_pointer (&list);
  return TRUE;
}

static gboolean
valid_hostname (const char *host)
{
  gsize len = strlen (host);

  if (len == 0 || len > 253)
    return FALSE;
  for (const char *p = host; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.' && *p != ':' && *p != '_')
      return FALSE;
  return TRUE;
}

static gboolean
parse_host (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  char **field = FIELD_PTR (cfg, def, char *);
  g_autofree char *host = g_strdup (value);

  /* Accept a bracketed IPv6 literal as users often write it. */
  if (host[0] == '[' && host[strlen (host) - 1] == ']')
    {
      host[strlen (host) - 1] = '\0';
      memmove (host, host + 1, strlen (host));
    }
  if (*host != '\0' && !valid_hostname (host))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: %s is the value of upstream.host or upstream.server-name */
                   _ ("“%s” is not a host name or address"), value);
      return FALSE;
    }
  g_free (*field);
  *field = *host ? g_steal_pointer (&host) : NULL;
  return TRUE;
}

/* "NAME", "NAME:PORT", "[V6]:PORT" or a bare IPv6 address, into @host and @port (0: none). */
static gboolean
split_host_port (const char *text, char **host, guint *port)
{
  const char *colon = strrchr (text, ':');
  guint64 n = 0;

  *port = 0;
  if (text[0] == '[')
    {
      const char *close = strchr (text, ']');
      if (close == NULL || (close[1] != '\0' && close[1] != ':'))
        return FALSE;
      *host = g_strndup (text + 1, close - text - 1);
      if (close[1] == '\0')
        return TRUE;
      colon = close + 1;
    }
  else if (colon == NULL || strchr (text, ':') != colon)
    {
      /* No port; several colons: an IPv6 address without brackets. */
      *host = g_strdup (text);
      return TRUE;
    }
  else
    *host = g_strndup (text, colon - text);
  if (!g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &n, NULL))
    return FALSE;
  *port = (guint) n;
  return TRUE;
}

/* upstream.host: one or more cloud proxies, ";" or "," between them, each "NAME[:PORT]" with
 * an optional " server-name=NAME" (otherwise upstream.server-name, else NAME itself). */
static gboolean
parse_proxies (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_autoptr (GPtrArray) proxies
      = g_ptr_array_new_with_free_func ((GDestroyNotify) proxy_entry_free);
  g_auto (GStrv) items = g_regex_split_simple ("[;,]", value, 0, 0);

  for (guint i = 0; items[i] != NULL; i++)
    {
      g_autofree char *item = g_strstrip (g_strdup (items[i]));
      g_auto (GStrv) words = NULL;
      g_autofree char *host = NULL;
      PhProxyEntry *e;
      guint port = 0;
      guint w = 0;

      if (*item == '\0')
        continue;
      words = g_regex_split_simple ("\\s+", item, 0, 0);
      if (!split_host_port (words[0], &host, &port) || !valid_hostname (host)
          || (strchr (host, ':') != NULL && !g_hostname_is_ip_address (host)))
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                       /* TRANSLATORS: %s is one entry of upstream.host */
                       _ ("“%s” is not a cloud proxy (expected NAME, NAME:PORT or [IPv6]:PORT, "
                          "optionally followed by server-name=NAME)"),
                       item);
          return FALSE;
        }
      e = g_new0 (PhProxyEntry, 1);
      e->host = g_steal_pointer (&host);
      e->port = port;
      g_ptr_array_add (proxies, e);
      for (w = 1; words[w] != NULL; w++)
        {
          const char *sni = g_str_has_prefix (words[w], "server-name=") ? words[w] + 12 : NULL;
          if (sni == NULL || !valid_hostname (sni) || e->server_name != NULL)
            {
              g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                           /* TRANSLATORS: %s is a word after a proxy in upstream.host */
                           _ ("“%s” is not an option of a cloud proxy (expected server-name=NAME)"),
                           words[w]);
              return FALSE;
            }
          e->server_name = g_strdup (sni);
        }
    }
  g_clear_pointer (&cfg->proxies, g_ptr_array_unref);
  cfg->proxies = g_steal_pointer (&proxies);
  g_clear_pointer (&cfg->host, g_free);
  if (cfg->proxies->len > 0)
    cfg->host = g_strdup (((PhProxyEntry *) g_ptr_array_index (cfg->proxies, 0))->host);
  return TRUE;
}

static gboolean
parse_string (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  char **field = FIELD_PTR (cfg, def, char *);

  g_free (*field);
  *field = *value ? g_strdup (value) : NULL;
  return TRUE;
}

static gboolean
parse_uint (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  guint64 v = 0;
  g_autoptr (GError) local = NULL;

  if (!g_ascii_string_to_unsigned (value, 10, def->min, def->max, &v, &local))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: the value the user wrote, then the smallest and the
                    * largest allowed */
                   _ ("“%s” is not a whole number from %u to %u"), value, def->min, def->max);
      return FALSE;
    }
  *FIELD_PTR (cfg, def, guint) = (guint) v;
  return TRUE;
}

/* A limit that "auto" leaves to whoever knows the resources it costs. */
static gboolean
parse_uint_or_auto (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  guint64 v = 0;

  if (g_strcmp0 (value, "auto") == 0)
    {
      *FIELD_PTR (cfg, def, guint) = PH_CONFIG_MAX_TUNNELS_AUTO;
      return TRUE;
    }
  if (!g_ascii_string_to_unsigned (value, 10, def->min, def->max, &v, NULL))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: the value the user wrote, then the smallest and the
                    * largest allowed; keep “auto” as it is, the file takes that word */
                   _ ("“%s” is not “auto” or a whole number from %u to %u"), value, def->min,
                   def->max);
      return FALSE;
    }
  *FIELD_PTR (cfg, def, guint) = (guint) v;
  return TRUE;
}

gboolean
ph_config_parse_duration (const char *text, guint *ms, GError **error)
{
  static const struct
  {
    const char *suffix;
    double factor;
  } units[] = { { "ms", 1 }, { "s", 1000 }, { "min", 60000 }, { "h", 3600000 }, { "", 1000 } };
  char *end = NULL;
  double v;

  /* Digits and one dot: strtod alone would take 0x10 and 1e3. */
  errno = 0;
  v = g_ascii_isdigit (text[0]) && strspn (text, "0123456789.") == strcspn (text, "mshi")
          ? g_ascii_strtod (text, &end)
          : -1;
  for (gsize i = 0; v >= 0 && errno == 0 && i < G_N_ELEMENTS (units); i++)
    if (g_strcmp0 (end, units[i].suffix) == 0 && v * units[i].factor <= G_MAXUINT)
      {
        *ms = (guint) (v * units[i].factor);
        return TRUE;
      }
  g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
               /* TRANSLATORS: %s is the value the user wrote; the examples are what the
                * configuration file accepts, so keep 30, 30s, 500ms and 5min as they are */
               _ ("“%s” is not a duration (e.g. 30, 30s, 500ms, 5min)"), text);
  return FALSE;
}

static gboolean
parse_duration (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  guint ms = 0;

  if (!ph_config_parse_duration (value, &ms, error))
    return FALSE;
  if (ms < def->min || ms > def->max)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: the duration the user wrote, then the shortest and the
                    * longest allowed in seconds; "s" is the unit as the file writes it */
                   _ ("%s is out of range (%gs to %gs)"), value, def->min / 1000.0,
                   def->max / 1000.0);
      return FALSE;
    }
  *FIELD_PTR (cfg, def, guint) = ms;
  return TRUE;
}

static gboolean
parse_pins (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_auto (GStrv) items = split_list (value);
  g_autoptr (GPtrArray) pins = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_pin_free);

  for (guint i = 0; items[i] != NULL; i++)
    {
      PhPin *pin = ph_pin_parse (items[i], error);
      if (pin == NULL)
        return FALSE;
      g_ptr_array_add (pins, pin);
    }
  g_clear_pointer (&cfg->pins, g_ptr_array_unref);
  cfg->pins = g_steal_pointer (&pins);
  return TRUE;
}

/* The words of the keys whose parsers below compare them one by one, for
 * ph_config_key_get_words (tests/test-config.c checks that each parser takes them). */
static const char *const verify_words[] = { "pin", "ca", "pin+ca", NULL };
static const char *const ktls_words[] = { "auto", "on", "off", NULL };
static const char *const level_words[] = { "error", "warning", "info", "debug", NULL };

/* -1 until set: the default depends on whether pins are set. */
#define VERIFY_AUTO ((PhVerifyMode) -1)

static gboolean
parse_verify (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  if (*value == '\0')
    cfg->verify = VERIFY_AUTO;
  else if (g_strcmp0 (value, "pin") == 0)
    cfg->verify = PH_VERIFY_PIN;
  else if (g_strcmp0 (value, "ca") == 0)
    cfg->verify = PH_VERIFY_CA;
  else if (g_strcmp0 (value, "pin+ca") == 0)
    cfg->verify = PH_VERIFY_PIN_AND_CA;
  else
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: pin, ca and pin+ca are the values upstream.verify takes:
                    * keep them */
                   _ ("“%s” is not one of pin, ca, pin+ca"), value);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_ktls (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  if (g_strcmp0 (value, "auto") == 0)
    cfg->ktls = PH_KTLS_AUTO;
  else if (g_strcmp0 (value, "on") == 0)
    cfg->ktls = PH_KTLS_ON;
  else if (g_strcmp0 (value, "off") == 0)
    cfg->ktls = PH_KTLS_OFF;
  else
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: auto, on and off are the values upstream.ktls takes:
                    * keep them */
                   _ ("“%s” is not one of auto, on, off"), value);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_level (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  if (!ph_log_level_from_string (value, &cfg->log_level))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: error, warning, info and debug are the values log.level
                    * takes: keep them */
                   _ ("“%s” is not one of error, warning, info, debug"), value);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_host_list (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  PhHostList *list = ph_host_list_parse (value, error);
  PhHostList **field = FIELD_PTR (cfg, def, PhHostList *);

  if (list == NULL)
    return FALSE;
  g_clear_pointer (field, ph_host_list_free);
  *field = list;
  return TRUE;
}

static gboolean
parse_bool (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  gboolean *field = FIELD_PTR (cfg, def, gboolean);

  if (g_strcmp0 (value, "true") == 0)
    *field = TRUE;
  else if (g_strcmp0 (value, "false") == 0)
    *field = FALSE;
  else
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: true and false are the values the key takes: keep them */
                   _ ("“%s” is not true or false"), value);
      return FALSE;
    }
  return TRUE;
}

static gboolean
parse_choice (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_autofree char *name = g_strdup_printf ("%s.%s", def->group, def->key);
  g_autofree char *expected = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (choices); i++)
    {
      if (strcmp (choices[i].key, name) != 0)
        continue;
      for (guint w = 0; w < G_N_ELEMENTS (choices[i].words) && choices[i].words[w]; w++)
        if (g_strcmp0 (value, choices[i].words[w]) == 0)
          {
            *FIELD_PTR (cfg, def, int) = (int) w;
            return TRUE;
          }
      expected = g_strjoinv (", ", (char **) choices[i].words);
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: %s: the value; %s: the words the key takes, which stay */
                   _ ("“%s” is not one of %s"), value, expected);
      return FALSE;
    }
  g_return_val_if_reached (FALSE);
}

/* An http:// URL that a network without a portal answers with 204. */
static gboolean
parse_portal_check (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_autoptr (GUri) uri = NULL;

  if (*value != '\0')
    {
      uri = g_uri_parse (value, G_URI_FLAGS_NONE, NULL);
      if (uri == NULL || g_strcmp0 (g_uri_get_scheme (uri), "http") != 0
          || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                       /* TRANSLATORS: %s is the value of [route] portal-check= */
                       _ ("“%s” is not an http:// URL (a portal can only answer plain HTTP)"),
                       value);
          return FALSE;
        }
    }
  g_clear_pointer (&cfg->portal_check, g_free);
  cfg->portal_check = *value != '\0' ? g_strdup (value) : NULL;
  return TRUE;
}

/* [doctor] target: HOST:PORT ([IPv6]:PORT), kept in authority form. */
static gboolean
parse_doctor_target (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_autofree char *host = NULL;
  guint port = 0;

  g_clear_pointer (&cfg->doctor_target, g_free);
  if (*value == '\0')
    return TRUE;
  if (!split_host_port (value, &host, &port) || port == 0 || *host == '\0' || !valid_hostname (host)
      || (strchr (host, ':') != NULL && !g_hostname_is_ip_address (host)))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: %s is the value of [doctor] target= */
                   _ ("“%s” is not a HOST:PORT (or [IPv6]:PORT)"), value);
      return FALSE;
    }
  cfg->doctor_target = g_strdup_printf (strchr (host, ':') ? "[%s]:%u" : "%s:%u", host, port);
  return TRUE;
}

static void
config_clear (PhConfig *cfg)
{
  g_clear_pointer (&cfg->socks_users, g_strfreev);
  g_clear_pointer (&cfg->socks_passwords, g_hash_table_unref);
  g_clear_pointer (&cfg->machine_proxy, g_strfreev);
  g_clear_pointer (&cfg->transparent, g_ptr_array_unref);
  g_clear_pointer (&cfg->capture_ports, g_array_unref);
  g_clear_pointer (&cfg->capture_interface, g_free);
  g_clear_pointer (&cfg->direct, ph_host_list_free);
  g_clear_pointer (&cfg->block, ph_host_list_free);
  g_clear_pointer (&cfg->portal_check, g_free);
  g_clear_pointer (&cfg->doctor_target, g_free);
  g_clear_pointer (&cfg->listen, g_ptr_array_unref);
  g_clear_pointer (&cfg->allow, g_ptr_array_unref);
  g_clear_pointer (&cfg->host, g_free);
  g_clear_pointer (&cfg->proxies, g_ptr_array_unref);
  g_clear_pointer (&cfg->server_name, g_free);
  g_clear_pointer (&cfg->pins, g_ptr_array_unref);
  g_clear_pointer (&cfg->ca_file, g_free);
  g_clear_pointer (&cfg->username, g_free);
  g_clear_pointer (&cfg->password_file, g_free);
  if (cfg->password != NULL)
    ph_wipe (cfg->password, strlen (cfg->password));
  g_clear_pointer (&cfg->password, g_free);
  g_clear_pointer (&cfg->values, g_hash_table_unref);
  g_clear_pointer (&cfg->locked, g_hash_table_unref);
}

static PhConfig *
config_new_defaults (void)
{
  PhConfig *cfg = g_atomic_rc_box_new0 (PhConfig);

  cfg->values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  cfg->locked = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (key_defs); i++)
    {
      g_autoptr (GError) error = NULL;
      if (!key_defs[i].parse (cfg, &key_defs[i], key_defs[i].fallback, &error))
        g_critical ("default of [%s] %s: %s", key_defs[i].group, key_defs[i].key, error->message);
    }
  return cfg;
}

PhConfig *
ph_config_ref (PhConfig *config)
{
  return g_atomic_rc_box_acquire (config);
}

void
ph_config_unref (PhConfig *config)
{
  g_atomic_rc_box_release_full (config, (GDestroyNotify) config_clear);
}

static const PhKeyDef *
find_key (const char *group, const char *key)
{
  for (gsize i = 0; i < G_N_ELEMENTS (key_defs); i++)
    if (g_str_equal (key_defs[i].group, group) && g_str_equal (key_defs[i].key, key))
      return &key_defs[i];
  return NULL;
}

/* A list of names (user names): letters, digits and . _ - only, at most 255 bytes each. */
static gboolean
parse_names (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_auto (GStrv) items = split_list (value);

  for (guint i = 0; items[i] != NULL; i++)
    {
      gboolean ok = strlen (items[i]) <= 255;
      for (const char *c = items[i]; ok && *c; c++)
        ok = g_ascii_isalnum (*c) || *c == '.' || *c == '_' || *c == '-' || *c == '@';
      if (!ok)
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                       /* TRANSLATORS: %s is one item of a list of user names */
                       _ ("“%s” is not a user name (letters, digits, “.”, “_”, “-”, “@”)"),
                       items[i]);
          return FALSE;
        }
    }
  g_clear_pointer (FIELD_PTR (cfg, def, GStrv), g_strfreev);
  *FIELD_PTR (cfg, def, GStrv) = g_steal_pointer (&items);
  return TRUE;
}

/* [transparent] ports: TCP ports, at least one. */
static gboolean
parse_ports (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_auto (GStrv) items = split_list (value);
  g_autoptr (GArray) ports = g_array_new (FALSE, FALSE, sizeof (guint16));

  for (guint i = 0; items[i] != NULL; i++)
    {
      guint64 v = 0;
      guint16 port;
      if (!g_ascii_string_to_unsigned (items[i], 10, 1, 65535, &v, NULL))
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                       /* TRANSLATORS: %s is one item of [transparent] ports= */
                       _ ("“%s” is not a port (1 to 65535)"), items[i]);
          return FALSE;
        }
      port = (guint16) v;
      g_array_append_val (ports, port);
    }
  if (ports->len == 0)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                           /* TRANSLATORS: said of [transparent] ports= when it lists none */
                           _ ("needs at least one port"));
      return FALSE;
    }
  g_clear_pointer (&cfg->capture_ports, g_array_unref);
  cfg->capture_ports = g_steal_pointer (&ports);
  return TRUE;
}

/* The words of [system-proxy] machine=: ph-machine-proxy.h's consumers on Linux, then on
 * Windows. Every system accepts them all, so that one file serves both: another system's are
 * skipped there (and shown as such by pinholectl system-proxy status). */
static const char *const machine_words[]
    = { "environment", "systemd", "apt", "docker", "winhttp", NULL };

/* [system-proxy] machine: a list of machine_words (",", ";" or blanks between), each at most
 * once. */
static gboolean
parse_machine (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_auto (GStrv) items = g_strsplit_set (value, ";, \t", -1);
  g_autoptr (GStrvBuilder) out = g_strv_builder_new ();
  g_autoptr (GPtrArray) seen = g_ptr_array_new ();

  for (guint i = 0; items[i] != NULL; i++)
    {
      if (*items[i] == '\0')
        continue;
      if (!g_strv_contains (machine_words, items[i]))
        {
          g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                       /* TRANSLATORS: %s is one item of [system-proxy] machine=; the five words
                        * are words of the file (keep them) */
                       _ ("“%s” is not environment, systemd, apt, docker or winhttp"), items[i]);
          return FALSE;
        }
      if (g_ptr_array_find_with_equal_func (seen, items[i], g_str_equal, NULL))
        continue;
      g_ptr_array_add (seen, items[i]);
    }
  /* In the table's order, whatever the file's. */
  for (guint w = 0; machine_words[w] != NULL; w++)
    if (g_ptr_array_find_with_equal_func (seen, machine_words[w], g_str_equal, NULL))
      g_strv_builder_add (out, machine_words[w]);
  g_clear_pointer (&cfg->machine_proxy, g_strfreev);
  cfg->machine_proxy = g_strv_builder_end (out);
  return TRUE;
}

/* [transparent] capture: "off", "local" or "gateway IFACE". */
static gboolean
parse_capture (PhConfig *cfg, const PhKeyDef *def, const char *value, GError **error)
{
  g_autofree char *iface = NULL;
  PhCaptureMode mode;

  if (!ph_capture_mode_parse (value, &mode, &iface))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: %s is the value; off, local and gateway are words of the file
                    * (keep them), IFACE is a network interface's name */
                   _ ("“%s” is not off, local or gateway IFACE"), value);
      return FALSE;
    }
  cfg->capture = mode;
  g_free (cfg->capture_interface);
  cfg->capture_interface = g_steal_pointer (&iface);
  return TRUE;
}

gboolean
ph_capture_mode_parse (const char *text, PhCaptureMode *mode, char **iface)
{
  g_auto (GStrv) words = g_strsplit_set (text, " \t", -1);
  g_autoptr (GStrvBuilder) b = g_strv_builder_new ();
  g_auto (GStrv) w = NULL;

  for (guint i = 0; words[i] != NULL; i++)
    if (*words[i] != '\0')
      g_strv_builder_add (b, words[i]);
  w = g_strv_builder_end (b);
  *iface = NULL;
  if (g_strv_length (w) == 1 && g_str_equal (w[0], "off"))
    *mode = PH_CAPTURE_OFF;
  else if (g_strv_length (w) == 1 && g_str_equal (w[0], "local"))
    *mode = PH_CAPTURE_LOCAL;
  else if (g_strv_length (w) == 2 && g_str_equal (w[0], "gateway")
           && ph_capture_interface_valid (w[1]))
    {
      *mode = PH_CAPTURE_GATEWAY;
      *iface = g_strdup (w[1]);
    }
  else
    return FALSE;
  return TRUE;
}

/* A Linux interface name: 1 to 15 bytes, no "/", blank, quote or control. Checked here because it
 * goes into an nftables rule. */
gboolean
ph_capture_interface_valid (const char *iface)
{
  gsize n = strlen (iface);

  if (n == 0 || n > 15 || g_str_equal (iface, ".") || g_str_equal (iface, ".."))
    return FALSE;
  for (const char *c = iface; *c; c++)
    if (!(g_ascii_isalnum (*c) || *c == '-' || *c == '_' || *c == '.' || *c == '@'))
      return FALSE;
  return TRUE;
}

static gboolean
known_group (const char *group)
{
  for (gsize i = 0; i < G_N_ELEMENTS (key_defs); i++)
    if (g_str_equal (key_defs[i].group, group))
      return TRUE;
  return FALSE;
}

static gboolean index_line (GHashTable *lines, char **group_p, char *row, guint lineno,
                            PhProblems *p);

/* Line numbers, which GKeyFile does not keep: "group\nkey" -> line, and
 * "group" -> line of its header. Lines GKeyFile would reject are reported
 * and left out of @clean, so the values of the others are checked too. */
static GHashTable *
index_lines (const char *data, PhProblems *p, GString *clean)
{
  GHashTable *lines = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_auto (GStrv) rows = g_strsplit (data, "\n", -1);
  g_autofree char *group = NULL;

  for (guint i = 0; rows[i] != NULL; i++)
    {
      g_autofree char *original = g_strdup (rows[i]);
      char *row = g_strstrip (rows[i]);
      gboolean keep = *row == '\0' || *row == '#' || index_line (lines, &group, row, i + 1, p);

      g_string_append (clean, keep ? original : "#");
      g_string_append_c (clean, '\n');
    }
  return lines;
}

/* Returns whether GKeyFile may see the line. */
static gboolean
index_line (GHashTable *lines, char **group_p, char *row, guint lineno, PhProblems *p)
{
  char *eq;

  if (*row == '[')
    {
      g_autofree char *group = NULL;

      if (row[strlen (row) - 1] != ']' || strlen (row) < 3)
        {
          /* TRANSLATORS: %s is the line as written; [group] is the form of a
           * section header in the file, such as [upstream] */
          problem (p, lineno, NULL, NULL, _ ("“%s” is not a valid [group] header"), row);
          return FALSE;
        }
      group = g_strndup (row + 1, strlen (row) - 2);
      g_free (*group_p);
      *group_p = g_strdup (group);
      if (g_hash_table_contains (lines, group))
        /* TRANSLATORS: a [group] of the file; %u is a line number */
        problem (p, lineno, group, NULL, _ ("group appears twice (first on line %u)"),
                 GPOINTER_TO_UINT (g_hash_table_lookup (lines, group)));
      else
        g_hash_table_insert (lines, g_steal_pointer (&group), GUINT_TO_POINTER (lineno));
      return TRUE;
    }
  eq = strchr (row, '=');
  if (eq == NULL)
    {
      /* TRANSLATORS: %s is the line as written; key=value, [group] and # are the
       * forms of lines in the file: keep them */
      problem (p, lineno, *group_p, NULL, _ ("“%s” is not key=value, a [group] or a # comment"),
               row);
      return FALSE;
    }
  *eq = '\0';
  g_strchomp (row);
  if (*group_p == NULL)
    {
      /* TRANSLATORS: [group] is the form of a section header, such as [upstream] */
      problem (p, lineno, NULL, row, _ ("key before any [group]"));
      return FALSE;
    }
  {
    char *id = g_strconcat (*group_p, "\n", row, NULL);
    guint first = GPOINTER_TO_UINT (g_hash_table_lookup (lines, id));
    if (first != 0)
      {
        /* TRANSLATORS: said of a key; %u is a line number */
        problem (p, lineno, *group_p, row, _ ("set twice (first on line %u)"), first);
        g_free (id);
        return FALSE;
      }
    g_hash_table_insert (lines, id, GUINT_TO_POINTER (lineno));
  }
  return TRUE;
}

static guint
line_of (GHashTable *lines, const char *group, const char *key)
{
  g_autofree char *id = key ? g_strconcat (group, "\n", key, NULL) : g_strdup (group);
  return GPOINTER_TO_UINT (g_hash_table_lookup (lines, id));
}

static gboolean
read_password_file (const char *path, char **out, GError **error)
{
  GStatBuf st;
  g_autofree char *contents = NULL;
  gsize len = 0;

  if (g_stat (path, &st) != 0)
    {
      /* TRANSLATORS: the password file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG, _ ("cannot read “%s”: %s"), path,
                   g_strerror (errno));
      return FALSE;
    }
  if (!ph_file_check_private (path, &st, error))
    return FALSE;
  if (!g_file_get_contents (path, &contents, &len, error))
    return FALSE;
  while (len > 0 && (contents[len - 1] == '\n' || contents[len - 1] == '\r'))
    contents[--len] = '\0';
  if (len == 0 || strlen (contents) != len)
    {
      ph_wipe (contents, len);
      /* TRANSLATORS: %s is the password file's path */
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG, _ ("“%s” holds no usable password"),
                   path);
      return FALSE;
    }
  *out = g_steal_pointer (&contents);
  return TRUE;
}

static gboolean
is_loopback_listener (GInetSocketAddress *sa)
{
  return g_inet_address_get_is_loopback (g_inet_socket_address_get_address (sa));
}

/* Where the value in force of a key came from. */
typedef struct
{
  const char *path; /* owned by the layer list */
  guint line;
} PhOrigin;

static PhOrigin *
origin_of (GHashTable *origins, const char *group, const char *key)
{
  g_autofree char *id = g_strconcat (group, ".", key, NULL);
  return g_hash_table_lookup (origins, id);
}

/* Reports a whole-config problem at the line that set @key (or, failing
 * that, @fallback_key), else at the first layer. */
static void G_GNUC_PRINTF (6, 7)
    problem_whole (PhProblems *p, GHashTable *origins, const char *group, const char *key,
                   const char *fallback_key, const char *fmt, ...)
{
  PhOrigin *o = origin_of (origins, group, key);
  va_list args;
  g_autofree char *msg = NULL;

  if (o == NULL && fallback_key != NULL)
    o = origin_of (origins, group, fallback_key);
  va_start (args, fmt);
  msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  problem_in (p, o ? o->path : p->path, o ? o->line : 0, group, key, "%s", msg);
}

/* Checks that involve several keys, once every file is read. A missing
 * host or pin is not one: the agent runs unconfigured until the control
 * interface supplies them (see ph_config_get_unready_reason). */
static void
check_whole (PhConfig *cfg, GHashTable *origins, PhProblems *p)
{
  if (cfg->verify == VERIFY_AUTO)
    cfg->verify = (cfg->pins && cfg->pins->len > 0) ? PH_VERIFY_PIN : PH_VERIFY_CA;

  if (cfg->password_file != NULL)
    {
      g_autoptr (GError) error = NULL;
      if (cfg->username == NULL)
        problem_whole (p, origins, "upstream", "username", "password-file",
                       /* TRANSLATORS: password-file= and username= are keys of the
                        * [upstream] group: keep them */
                       _ ("password-file= is set but no username="));
      else if (!read_password_file (cfg->password_file, &cfg->password, &error))
        problem_whole (p, origins, "upstream", "password-file", NULL, "%s", error->message);
    }

  for (guint i = 0; i < cfg->listen->len + cfg->transparent->len; i++)
    {
      gboolean transparent = i >= cfg->listen->len;
      GInetSocketAddress *sa = transparent
                                   ? g_ptr_array_index (cfg->transparent, i - cfg->listen->len)
                                   : g_ptr_array_index (cfg->listen, i);
      if (!is_loopback_listener (sa) && cfg->allow->len == 0)
        {
          g_autofree char *s = g_inet_address_to_string (g_inet_socket_address_get_address (sa));
          problem_whole (p, origins, transparent ? "transparent" : "listener", "address", NULL,
                         /* TRANSLATORS: %s is an IP address the agent listens on;
                          * [listener] allow= is a key of the file: keep it and the example */
                         _ ("%s is not a loopback address and [listener] allow= is empty: list "
                            "the client networks to serve in allow= (e.g. "
                            "allow=192.168.1.0/24)"),
                         s);
        }
    }

  if (cfg->capture != PH_CAPTURE_OFF)
    {
      gboolean loopback = FALSE, other = FALSE;

      for (guint i = 0; i < cfg->transparent->len; i++)
        {
          GInetAddress *a
              = g_inet_socket_address_get_address (g_ptr_array_index (cfg->transparent, i));
          if (g_inet_address_get_is_any (a))
            loopback = other = TRUE;
          else if (g_inet_address_get_is_loopback (a))
            loopback = TRUE;
          else
            other = TRUE;
        }
      if (cfg->transparent->len == 0)
        problem_whole (p, origins, "transparent", "capture", NULL,
                       /* TRANSLATORS: capture= and address= are keys of the [transparent]
                        * group: keep them and the example */
                       _ ("capture= needs a transparent listener: set address= (e.g. "
                          "address=127.0.0.1:3129)"));
      else if (cfg->capture == PH_CAPTURE_LOCAL && !loopback)
        problem_whole (p, origins, "transparent", "capture", NULL,
                       /* TRANSLATORS: capture=local and address= are words of the file:
                        * keep them and the example */
                       _ ("capture=local redirects to loopback, and address= lists no loopback "
                          "address (e.g. address=127.0.0.1:3129)"));
      else if (cfg->capture == PH_CAPTURE_GATEWAY && !other)
        problem_whole (p, origins, "transparent", "capture", NULL,
                       /* TRANSLATORS: capture=gateway and address= are words of the file:
                        * keep them and the example */
                       _ ("capture=gateway redirects the LAN's connections to the interface's "
                          "own address, and address= lists only loopback (e.g. "
                          "address=0.0.0.0:3129)"));
    }
}

/* Reads one layer into @cfg, reporting its problems against its path. */
static void
load_layer (PhConfig *cfg, PhConfigFile *file, GHashTable *origins, PhProblems *p)
{
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GHashTable) lines = NULL;
  g_autofree char *owned = NULL;
  g_auto (GStrv) groups = NULL;
  g_autoptr (GError) local = NULL;
  g_autoptr (GString) clean = g_string_new (NULL);
  const char *data = file->data;
  const char *body;
  gsize len = 0;

  p->path = file->path;
  if (data == NULL)
    {
      if (!g_file_get_contents (file->path, &owned, &len, &local))
        {
          if (!(file->optional && g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT)))
            problem (p, 0, NULL, NULL, "%s", local->message);
          return;
        }
      data = owned;
    }
  else
    len = strlen (data);
  if (!g_utf8_validate (data, len, NULL))
    {
      /* TRANSLATORS: said of a configuration file */
      problem (p, 0, NULL, NULL, _ ("not valid UTF-8"));
      return;
    }
  /* A byte-order mark, as Windows editors write it, is not a problem. */
  body = g_str_has_prefix (data, "\xEF\xBB\xBF") ? data + 3 : data;
  lines = index_lines (body, p, clean);
  if (!g_key_file_load_from_data (kf, clean->str, clean->len, G_KEY_FILE_NONE, &local))
    {
      problem (p, 0, NULL, NULL, "%s", local->message);
      return;
    }

  groups = g_key_file_get_groups (kf, NULL);
  for (guint g = 0; groups[g] != NULL; g++)
    {
      g_auto (GStrv) keys = NULL;

      if (!known_group (groups[g]))
        {
          problem (p, line_of (lines, groups[g], NULL), groups[g], NULL,
                   /* TRANSLATORS: the words in parentheses are the names of the groups: keep
                    * them */
                   _ ("unknown group (known: listener, transparent, upstream, tunnel, route, "
                      "system-proxy, doctor, log)"));
          continue;
        }
      keys = g_key_file_get_keys (kf, groups[g], NULL, NULL);
      for (guint k = 0; keys != NULL && keys[k] != NULL; k++)
        {
          const PhKeyDef *def = find_key (groups[g], keys[k]);
          g_autofree char *value = NULL;
          g_autoptr (GError) perr = NULL;
          guint lineno = line_of (lines, groups[g], keys[k]);
          PhOrigin *origin;
          char *id;

          if (def == NULL)
            {
              problem (p, lineno, groups[g], keys[k], _ ("unknown key"));
              continue;
            }
          /* Taken as written, without GKeyFile's escapes: a Windows path
           * like C:\ProgramData\Pinhole\ca.pem means what it says. */
          value = g_key_file_get_value (kf, groups[g], keys[k], &perr);
          if (perr != NULL || value == NULL)
            {
              problem (p, lineno, groups[g], keys[k], "%s",
                       perr ? perr->message : _ ("unreadable value"));
              continue;
            }
          g_strstrip (value);
          if (!def->parse (cfg, def, value, &perr))
            {
              problem (p, lineno, groups[g], keys[k], "%s", perr->message);
              continue;
            }
          id = g_strconcat (groups[g], ".", keys[k], NULL);
          origin = g_new0 (PhOrigin, 1);
          origin->path = file->path;
          origin->line = lineno;
          g_hash_table_replace (origins, g_strdup (id), origin);
          if (file->managed)
            g_hash_table_add (cfg->locked, g_strdup (id));
          g_hash_table_replace (cfg->values, id, g_steal_pointer (&value));
        }
    }
}

void
ph_config_file_free (PhConfigFile *file)
{
  g_free (file->path);
  g_free (file->data);
  g_free (file);
}

PhConfigFile *
ph_config_file_new (const char *path, gboolean managed, gboolean optional)
{
  PhConfigFile *file = g_new0 (PhConfigFile, 1);

  file->path = g_strdup (path);
  file->managed = managed;
  file->optional = optional;
  return file;
}

void
ph_config_file_set_data (PhConfigFile *file, const char *data)
{
  g_free (file->data);
  file->data = g_strdup (data);
}

void
ph_config_file_set_optional (PhConfigFile *file, gboolean optional)
{
  file->optional = optional;
}

const char *
ph_config_file_get_path (const PhConfigFile *file)
{
  return file->path;
}

const char *
ph_config_file_get_data (const PhConfigFile *file)
{
  return file->data;
}

gboolean
ph_config_file_get_managed (const PhConfigFile *file)
{
  return file->managed;
}

gboolean
ph_config_file_get_optional (const PhConfigFile *file)
{
  return file->optional;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

GPtrArray *
ph_config_layers_new (const char *system_path, const char *user_path, const char *managed_dir)
{
  GPtrArray *layers = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_config_file_free);
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (system_path != NULL)
    g_ptr_array_add (layers, ph_config_file_new (system_path, FALSE, TRUE));
  if (user_path != NULL)
    g_ptr_array_add (layers, ph_config_file_new (user_path, FALSE, TRUE));
  if (managed_dir != NULL)
    dir = g_dir_open (managed_dir, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".conf") && name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  /* Byte order, not the locale's: IT names drop-ins 10-x, 20-y. */
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (managed_dir, g_ptr_array_index (names, i), NULL);
      g_ptr_array_add (layers, ph_config_file_new (path, TRUE, TRUE));
    }
  return layers;
}

PhConfig *
ph_config_load_layers (GPtrArray *layers, GError **error)
{
  g_autoptr (PhConfig) cfg = config_new_defaults ();
  g_autoptr (GString) text = g_string_new (NULL);
  g_autoptr (GHashTable) origins = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  PhProblems p = { text, "(defaults)" };

  for (guint i = 0; i < layers->len; i++)
    load_layer (cfg, g_ptr_array_index (layers, i), origins, &p);
  if (layers->len > 0)
    p.path = ((PhConfigFile *) g_ptr_array_index (layers, 0))->path;
  check_whole (cfg, origins, &p);
  if (text->len > 0)
    {
      g_set_error_literal (error, PH_ERROR, PH_ERROR_INVALID_CONFIG, text->str);
      return NULL;
    }
  return g_steal_pointer (&cfg);
}

PhConfig *
ph_config_load (const char *path, GError **error)
{
  g_autoptr (GPtrArray) layers
      = g_ptr_array_new_with_free_func ((GDestroyNotify) ph_config_file_free);

  g_ptr_array_add (layers, ph_config_file_new (path, FALSE, FALSE));
  return ph_config_load_layers (layers, error);
}

const char *
ph_config_get_unready_reason (const PhConfig *config)
{
  /* Marked only: the core has no text domain; the service translates it. */
  if (config->host == NULL)
    return N_ ("no cloud proxy is configured: set upstream.host");
  return NULL;
}

static const PhKeyDef *
find_dotted (const char *key)
{
  const char *dot = key ? strchr (key, '.') : NULL;
  g_autofree char *group = NULL;

  if (dot == NULL)
    return NULL;
  group = g_strndup (key, dot - key);
  return find_key (group, dot + 1);
}

const char *const *
ph_config_list_keys (void)
{
  static char **keys = NULL;

  if (g_once_init_enter (&keys))
    {
      char **list = g_new0 (char *, G_N_ELEMENTS (key_defs) + 1);
      for (gsize i = 0; i < G_N_ELEMENTS (key_defs); i++)
        list[i] = g_strconcat (key_defs[i].group, ".", key_defs[i].key, NULL);
      g_once_init_leave (&keys, list);
    }
  return (const char *const *) keys;
}

guint
ph_config_get_n_keys (void)
{
  return G_N_ELEMENTS (key_defs);
}

const PhConfigKey *
ph_config_get_key (guint i)
{
  g_return_val_if_fail (i < G_N_ELEMENTS (key_defs), NULL);
  return &key_defs[i];
}

const char *
ph_config_key_get_group (const PhConfigKey *key)
{
  return key->group;
}

const char *
ph_config_key_get_name (const PhConfigKey *key)
{
  return key->key;
}

const char *
ph_config_key_get_default (const PhConfigKey *key)
{
  return key->fallback;
}

/* The kind follows from the parser: the table names each key's parser once. */
PhConfigKind
ph_config_key_get_kind (const PhConfigKey *key)
{
  static const struct
  {
    PhKeyParse parse;
    PhConfigKind kind;
  } kinds[] = {
    { parse_listen, PH_CONFIG_KIND_LIST },
    { parse_allow, PH_CONFIG_KIND_LIST },
    { parse_names, PH_CONFIG_KIND_LIST },
    { parse_ports, PH_CONFIG_KIND_LIST },
    { parse_proxies, PH_CONFIG_KIND_LIST },
    { parse_pins, PH_CONFIG_KIND_LIST },
    { parse_host_list, PH_CONFIG_KIND_LIST },
    { parse_machine, PH_CONFIG_KIND_LIST },
    { parse_uint, PH_CONFIG_KIND_UINT },
    { parse_uint_or_auto, PH_CONFIG_KIND_UINT_OR_AUTO },
    { parse_duration, PH_CONFIG_KIND_DURATION },
    { parse_bool, PH_CONFIG_KIND_BOOL },
    { parse_choice, PH_CONFIG_KIND_CHOICE },
    { parse_verify, PH_CONFIG_KIND_CHOICE },
    { parse_ktls, PH_CONFIG_KIND_CHOICE },
    { parse_level, PH_CONFIG_KIND_CHOICE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (kinds); i++)
    if (kinds[i].parse == key->parse)
      return kinds[i].kind;
  /* parse_string, parse_host, parse_portal_check, parse_doctor_target, parse_capture (whose
   * "gateway IFACE" is not a word from a list). */
  return PH_CONFIG_KIND_STRING;
}

/* Only where the parser enforces them: parse_listen keeps its least number of addresses in min. */
static gboolean
has_bounds (const PhConfigKey *key)
{
  PhConfigKind kind = ph_config_key_get_kind (key);

  return kind == PH_CONFIG_KIND_UINT || kind == PH_CONFIG_KIND_UINT_OR_AUTO
         || kind == PH_CONFIG_KIND_DURATION;
}

guint
ph_config_key_get_min (const PhConfigKey *key)
{
  return has_bounds (key) ? key->min : 0;
}

guint
ph_config_key_get_max (const PhConfigKey *key)
{
  return has_bounds (key) ? key->max : 0;
}

const char *const *
ph_config_key_get_words (const PhConfigKey *key)
{
  g_autofree char *name = NULL;

  if (key->parse == parse_verify)
    return verify_words;
  if (key->parse == parse_ktls)
    return ktls_words;
  if (key->parse == parse_level)
    return level_words;
  if (key->parse != parse_choice)
    return NULL;
  name = g_strconcat (key->group, ".", key->key, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (choices); i++)
    if (g_str_equal (choices[i].key, name))
      return choices[i].words;
  g_return_val_if_reached (NULL);
}

const char *
ph_config_key_get_summary (const PhConfigKey *key)
{
  return key->summary;
}

const char *
ph_config_key_get_explanation (const PhConfigKey *key)
{
  return key->explain;
}

gboolean
ph_config_has_key (const char *key)
{
  return find_dotted (key) != NULL;
}

const char *
ph_config_get_default (const char *key)
{
  const PhKeyDef *def = find_dotted (key);
  return def ? def->fallback : NULL;
}

const char *
ph_config_get_value (const PhConfig *config, const char *key)
{
  const char *value = g_hash_table_lookup (config->values, key);
  return value ? value : ph_config_get_default (key);
}

gboolean
ph_config_is_locked (const PhConfig *config, const char *key)
{
  return g_hash_table_contains (config->locked, key);
}

guint
ph_config_get_n_locked (const PhConfig *config)
{
  return g_hash_table_size (config->locked);
}

gboolean
ph_config_check_value (const char *key, const char *value, GError **error)
{
  const PhKeyDef *def = find_dotted (key);
  g_autoptr (PhConfig) scratch = NULL;
  g_autofree char *stripped = NULL;

  if (def == NULL)
    {
      /* TRANSLATORS: %s is a setting's name, such as upstream.host */
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING, _ ("unknown setting “%s”"), key);
      return FALSE;
    }
  if (strpbrk (value, "\n\r") != NULL)
    {
      /* TRANSLATORS: %s is a setting's name, such as upstream.host */
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING, _ ("%s: a value is one line"), key);
      return FALSE;
    }
  scratch = config_new_defaults ();
  stripped = g_strstrip (g_strdup (value));
  if (!def->parse (scratch, def, stripped, error))
    {
      (*error)->code = PH_ERROR_INVALID_SETTING;
      g_prefix_error (error, "%s: ", key);
      return FALSE;
    }
  return TRUE;
}

char *
ph_config_edit (const char *data, const char *key, const char *value, GError **error)
{
  const PhKeyDef *def = find_dotted (key);
  g_autoptr (GKeyFile) kf = g_key_file_new ();
  g_autoptr (GError) local = NULL;

  if (def == NULL)
    {
      /* TRANSLATORS: %s is a setting's name, such as upstream.host */
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING, _ ("unknown setting “%s”"), key);
      return NULL;
    }
  if (data != NULL && *data != '\0'
      && !g_key_file_load_from_data (
          kf, data, -1, G_KEY_FILE_KEEP_COMMENTS | G_KEY_FILE_KEEP_TRANSLATIONS, &local))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG,
                   /* TRANSLATORS: %s says why the configuration file does not load */
                   _ ("the file cannot be edited until it loads: %s"), local->message);
      return NULL;
    }
  if (value != NULL)
    g_key_file_set_value (kf, def->group, def->key, value);
  else
    g_key_file_remove_key (kf, def->group, def->key, NULL);
  return g_key_file_to_data (kf, NULL, NULL);
}

GPtrArray *
ph_config_get_listen (const PhConfig *config)
{
  return config->listen;
}

GPtrArray *
ph_config_get_allow (const PhConfig *config)
{
  return config->allow;
}

const char *
ph_config_get_host (const PhConfig *config)
{
  return config->host;
}

guint
ph_config_get_port (const PhConfig *config)
{
  return config->port;
}

const char *
ph_config_get_server_name (const PhConfig *config)
{
  return ph_config_get_n_proxies (config) > 0 ? ph_config_get_proxy_server_name (config, 0) : NULL;
}

guint
ph_config_get_n_proxies (const PhConfig *config)
{
  return config->proxies != NULL ? config->proxies->len : 0;
}

static const PhProxyEntry *
proxy_entry (const PhConfig *config, guint i)
{
  g_return_val_if_fail (i < ph_config_get_n_proxies (config), NULL);
  return g_ptr_array_index (config->proxies, i);
}

const char *
ph_config_get_proxy_host (const PhConfig *config, guint i)
{
  return proxy_entry (config, i)->host;
}

guint
ph_config_get_proxy_port (const PhConfig *config, guint i)
{
  const PhProxyEntry *e = proxy_entry (config, i);

  return e->port != 0 ? e->port : config->port;
}

const char *
ph_config_get_proxy_server_name (const PhConfig *config, guint i)
{
  const PhProxyEntry *e = proxy_entry (config, i);

  return e->server_name ? e->server_name : config->server_name ? config->server_name : e->host;
}

char *
ph_config_dup_proxy_name (const PhConfig *config, guint i)
{
  const char *host = ph_config_get_proxy_host (config, i);

  return g_strdup_printf (strchr (host, ':') ? "[%s]:%u" : "%s:%u", host,
                          ph_config_get_proxy_port (config, i));
}

PhFailover
ph_config_get_failover (const PhConfig *config)
{
  return config->failover;
}

guint
ph_config_get_n_pins (const PhConfig *config)
{
  return config->pins != NULL ? config->pins->len : 0;
}

const PhPin *
ph_config_get_pin (const PhConfig *config, guint i)
{
  g_return_val_if_fail (i < ph_config_get_n_pins (config), NULL);
  return g_ptr_array_index (config->pins, i);
}

gboolean
ph_config_has_pin (const PhConfig *config, const PhPin *pin)
{
  if (config->pins == NULL)
    return FALSE;
  return ph_pin_matches_any (pin, (PhPin *const *) config->pins->pdata, config->pins->len);
}

PhVerifyMode
ph_config_get_verify (const PhConfig *config)
{
  return config->verify;
}

const char *
ph_config_get_ca_file (const PhConfig *config)
{
  return config->ca_file;
}

PhKtlsMode
ph_config_get_ktls (const PhConfig *config)
{
  return config->ktls;
}

const PhHostList *
ph_config_get_direct (const PhConfig *config)
{
  return config->direct;
}

const PhHostList *
ph_config_get_block (const PhConfig *config)
{
  return config->block;
}

gboolean
ph_config_get_resolve_for_cidr (const PhConfig *config)
{
  return config->resolve_for_cidr;
}

PhUnreachablePolicy
ph_config_get_when_unreachable (const PhConfig *config)
{
  return config->when_unreachable;
}

const char *
ph_config_get_portal_check (const PhConfig *config)
{
  return config->portal_check;
}

const char *
ph_config_get_doctor_target (const PhConfig *config)
{
  return config->doctor_target;
}

guint
ph_config_get_portal_minutes (const PhConfig *config)
{
  return config->portal_minutes;
}

PhPortalPolicy
ph_config_get_portal (const PhConfig *config)
{
  return config->portal;
}

PhSystemProxyMode
ph_config_get_system_proxy_mode (const PhConfig *config)
{
  return config->system_proxy_mode;
}

const char *const *
ph_config_get_machine_proxy (const PhConfig *config)
{
  static const char *const none[] = { NULL };

  return config->machine_proxy != NULL ? (const char *const *) config->machine_proxy : none;
}

const char *
ph_config_get_username (const PhConfig *config)
{
  return config->username;
}

const char *
ph_config_get_password_file (const PhConfig *config)
{
  return config->password_file;
}

const char *
ph_config_get_password (const PhConfig *config)
{
  return config->password;
}

void
ph_config_take_password (PhConfig *config, char *password)
{
  g_return_if_fail (config->password == NULL);
  config->password = password;
}

guint
ph_config_get_connect_timeout_ms (const PhConfig *config)
{
  return config->connect_timeout_ms;
}

guint
ph_config_get_handshake_timeout_ms (const PhConfig *config)
{
  return config->handshake_timeout_ms;
}

guint
ph_config_get_response_timeout_ms (const PhConfig *config)
{
  return config->response_timeout_ms;
}

guint
ph_config_get_warm (const PhConfig *config)
{
  return config->warm;
}

guint
ph_config_get_idle_connections (const PhConfig *config)
{
  return config->idle_connections;
}

guint
ph_config_get_idle_lifetime_ms (const PhConfig *config)
{
  return config->idle_lifetime_ms;
}

guint
ph_config_get_idle_timeout_ms (const PhConfig *config)
{
  return config->idle_timeout_ms;
}

guint
ph_config_get_head_timeout_ms (const PhConfig *config)
{
  return config->head_timeout_ms;
}

guint
ph_config_get_max_tunnels (const PhConfig *config)
{
  return config->max_tunnels;
}

PhHttp2
ph_config_get_http2 (const PhConfig *config)
{
  return config->http2;
}

guint
ph_config_get_h2_connections (const PhConfig *config)
{
  return config->h2_connections;
}

PhLogLevel
ph_config_get_log_level (const PhConfig *config)
{
  return config->log_level;
}

gboolean
ph_config_same_upstream (const PhConfig *a, const PhConfig *b)
{
  if (ph_config_get_n_proxies (a) != ph_config_get_n_proxies (b) || a->failover != b->failover
      || a->http2 != b->http2 || a->h2_connections != b->h2_connections || a->verify != b->verify
      || g_strcmp0 (a->ca_file, b->ca_file) != 0 || a->ktls != b->ktls)
    return FALSE;
  for (guint i = 0; i < ph_config_get_n_proxies (a); i++)
    if (g_strcmp0 (ph_config_get_proxy_host (a, i), ph_config_get_proxy_host (b, i)) != 0
        || ph_config_get_proxy_port (a, i) != ph_config_get_proxy_port (b, i)
        || g_strcmp0 (ph_config_get_proxy_server_name (a, i),
                      ph_config_get_proxy_server_name (b, i))
               != 0)
      return FALSE;
  if ((a->pins ? a->pins->len : 0) != (b->pins ? b->pins->len : 0))
    return FALSE;
  for (guint i = 0; a->pins != NULL && i < a->pins->len; i++)
    if (!ph_pin_equal (g_ptr_array_index (a->pins, i), g_ptr_array_index (b->pins, i)))
      return FALSE;
  return TRUE;
}

gboolean
ph_config_same_credentials (const PhConfig *a, const PhConfig *b)
{
  return g_strcmp0 (a->username, b->username) == 0 && g_strcmp0 (a->password, b->password) == 0;
}

static gboolean
same_addresses (GPtrArray *a, GPtrArray *b)
{
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++)
    {
      GInetSocketAddress *x = g_ptr_array_index (a, i);
      GInetSocketAddress *y = g_ptr_array_index (b, i);
      if (g_inet_socket_address_get_port (x) != g_inet_socket_address_get_port (y)
          || !g_inet_address_equal (g_inet_socket_address_get_address (x),
                                    g_inet_socket_address_get_address (y)))
        return FALSE;
    }
  return TRUE;
}

gboolean
ph_config_same_listeners (const PhConfig *a, const PhConfig *b)
{
  return same_addresses (a->listen, b->listen) && same_addresses (a->transparent, b->transparent);
}

gboolean
ph_config_allows_client (const PhConfig *config, GInetAddress *address)
{
  if (g_inet_address_get_is_loopback (address))
    return TRUE;
  for (guint i = 0; i < config->allow->len; i++)
    if (g_inet_address_mask_matches (g_ptr_array_index (config->allow, i), address))
      return TRUE;
  return FALSE;
}

const char *const *
ph_config_get_socks_users (const PhConfig *config)
{
  return (const char *const *) config->socks_users;
}

static void
wipe_free (char *secret)
{
  ph_wipe (secret, strlen (secret));
  g_free (secret);
}

void
ph_config_take_socks_password (PhConfig *config, const char *name, char *password)
{
  if (config->socks_passwords == NULL)
    config->socks_passwords
        = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) wipe_free);
  g_hash_table_replace (config->socks_passwords, g_strdup (name), password);
}

const char *
ph_config_get_socks_password (const PhConfig *config, const char *name)
{
  if (config->socks_passwords == NULL || config->socks_users == NULL
      || !g_strv_contains ((const char *const *) config->socks_users, name))
    return NULL;
  return g_hash_table_lookup (config->socks_passwords, name);
}

GPtrArray *
ph_config_get_transparent (const PhConfig *config)
{
  return config->transparent;
}

guint32
ph_config_get_mark (const PhConfig *config)
{
  return config->mark;
}

const guint16 *
ph_config_get_capture_ports (const PhConfig *config, guint *n_ports)
{
  *n_ports = config->capture_ports->len;
  return (const guint16 *) (gpointer) config->capture_ports->data;
}

PhCaptureMode
ph_config_get_capture (const PhConfig *config, const char **iface)
{
  if (iface != NULL)
    *iface = config->capture_interface;
  return config->capture;
}

const char *
ph_capture_mode_to_string (PhCaptureMode mode)
{
  switch (mode)
    {
      case PH_CAPTURE_OFF:
        return "off";
      case PH_CAPTURE_LOCAL:
        return "local";
      case PH_CAPTURE_GATEWAY:
        return "gateway";
    }
  g_return_val_if_reached ("off");
}
