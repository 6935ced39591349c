/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-main.c: pinholectl, the command-line client of org.pinhole.Agent1 for headless servers
 * and scripts: its options, its table of commands, and which exit status each run ends with
 * (ph-ctl-exit.h). */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-build-config.h"
#include "ph-client.h"
#include "ph-ctl.h"
#include "ph-ctl-output.h"
#include "ph-elevate.h"
#include "ph-error.h"
#include "ph-paths.h"

#include <locale.h>
#include <string.h>
#include <glib/gi18n.h>

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

static const PhCtlCommand commands[] = {
  { "status", NULL, "", N_ ("Show the agent's state, upstream and counters"), PH_CTL_OPT_JSON, 0, 0,
    ph_ctl_cmd_status },
  { "enable", NULL, "", N_ ("Switch the tunnel on"), PH_CTL_CHANGES, 0, 0, ph_ctl_cmd_enable },
  { "disable", NULL, "", N_ ("Switch the tunnel off"), PH_CTL_CHANGES, 0, 0, ph_ctl_cmd_disable },
  { "reload", NULL, "", N_ ("Read the configuration files again"), PH_CTL_CHANGES, 0, 0,
    ph_ctl_cmd_reload },
  { "pin", "show", "", N_ ("Show the cloud proxy's key and certificates"), PH_CTL_OPT_JSON, 0, 0,
    ph_ctl_cmd_pin_show },
  /* TRANSLATORS: PIN is a command-line placeholder */
  { "pin", "trust", N_ ("[PIN]"), N_ ("Trust the cloud proxy's key (asks first unless --yes)"),
    PH_CTL_OPT_YES | PH_CTL_CHANGES, 0, 1, ph_ctl_cmd_pin_trust },
  /* TRANSLATORS: USER is a command-line placeholder */
  { "set-credentials", NULL, N_ ("USER"),
    N_ ("Store the proxy password for USER (asked on the terminal, or --password-stdin)"),
    PH_CTL_OPT_PASSWORD_STDIN | PH_CTL_CHANGES, 1, 1, ph_ctl_cmd_set_credentials },
  { "clear-credentials", NULL, "", N_ ("Remove the stored proxy password"), PH_CTL_CHANGES, 0, 0,
    ph_ctl_cmd_clear_credentials },
  /* TRANSLATORS: NAME is a command-line placeholder */
  { "socks-user", "add", N_ ("NAME"),
    N_ ("Let NAME sign in to SOCKS5 from the LAN (password asked, or --password-stdin)"),
    PH_CTL_OPT_PASSWORD_STDIN | PH_CTL_CHANGES, 1, 1, ph_ctl_cmd_socks_user_add },
  { "socks-user", "remove", N_ ("NAME"), N_ ("Remove a SOCKS5 user and its stored password"),
    PH_CTL_CHANGES, 1, 1, ph_ctl_cmd_socks_user_remove },
  { "socks-user", "list", "", N_ ("List the SOCKS5 users' names"), PH_CTL_OPT_JSON, 0, 0,
    ph_ctl_cmd_socks_user_list },
  /* TRANSLATORS: KEY is a command-line placeholder */
  { "get", NULL, N_ ("KEY"), N_ ("Print a setting's value, e.g. upstream.host"), PH_CTL_OPT_JSON, 1,
    1, ph_ctl_cmd_get },
  /* TRANSLATORS: KEY and VALUE are command-line placeholders */
  { "set", NULL, N_ ("KEY VALUE"), N_ ("Change a setting; an empty VALUE restores the default"),
    PH_CTL_CHANGES, 2, 2, ph_ctl_cmd_set },
  { "settings", NULL, "", N_ ("List every setting with its value and default"), PH_CTL_OPT_JSON, 0,
    0, ph_ctl_cmd_settings },
  /* TRANSLATORS: PIPE is a command-line placeholder */
  { PH_ELEVATE_COMMAND, NULL, N_ ("PIPE"),
    N_ ("Make the changes a Pinhole tray hands over on PIPE (Windows: the tray starts this "
        "through UAC)"),
    PH_CTL_CHANGES, 1, 1, ph_ctl_cmd_apply_from_tray },
  /* TRANSLATORS: TARGET is a command-line placeholder */
  { "route", NULL, N_ ("TARGET"),
    N_ ("Say which way a URL or host:port would go (proxy, direct, block) and why"),
    PH_CTL_OPT_JSON, 1, 1, ph_ctl_cmd_route },
  /* TRANSLATORS: URL is a command-line placeholder */
  { "doctor", NULL, N_ ("[URL]"),
    N_ ("Check each cloud proxy step by step (DNS, TCP, TLS, sign-in, and URL if given)"),
    PH_CTL_OPT_JSON, 0, 1, ph_ctl_cmd_doctor },
  /* TRANSLATORS: IFACE is a command-line placeholder (a network interface); keep the options */
  { "capture", "on", N_ ("--gateway IFACE | --local"),
    N_ ("Send the LAN's connections (--gateway) or this machine's (--local) to the transparent "
        "listener"),
    PH_CTL_OPT_CAPTURE | PH_CTL_CHANGES, 0, 0, ph_ctl_cmd_capture_on },
  { "capture", "off", "", N_ ("Remove the capture rules"), PH_CTL_CHANGES, 0, 0,
    ph_ctl_cmd_capture_off },
  { "capture", "status", "", N_ ("Show the capture rules' state (exit 1 when they failed)"),
    PH_CTL_OPT_JSON, 0, 0, ph_ctl_cmd_capture_status },
  { "system-proxy", "status", "",
    N_ ("Show each machine-wide proxy consumer ([system-proxy] machine=) and what it points at"),
    PH_CTL_OPT_JSON, 0, 0, ph_ctl_cmd_system_proxy_status },
  { "system-proxy", "apply", "",
    N_ ("Point the configured machine-wide consumers at the agent again"), 0, 0, 0,
    ph_ctl_cmd_system_proxy_apply },
  { "system-proxy", "restore", "",
    N_ ("Put the machine-wide consumers back as they were, until apply or the next enable"), 0, 0,
    0, ph_ctl_cmd_system_proxy_restore },
  { "connections", NULL, "",
    N_ ("List the open connections: client, target, route, cloud proxy, bytes, age"),
    PH_CTL_OPT_JSON | PH_CTL_CHANGES, 0, 0, ph_ctl_cmd_connections },
  /* TRANSLATORS: FILE and LOGFILE are command-line placeholders */
  { "report", NULL, N_ ("FILE [LOGFILE]"),
    N_ ("Write a support report (status, settings, connections, doctor, log; no secrets) to "
        "FILE"),
    PH_CTL_CHANGES, 1, 2, ph_ctl_cmd_report },
  { "logs", NULL, "", N_ ("Show the agent's log from the journal (-n N lines, -f to follow)"),
    PH_CTL_OPT_LINES | PH_CTL_OPT_FOLLOW, 0, 0, ph_ctl_cmd_logs },
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
  ph_rows_init (&rows, 2);
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autofree char *usage = command_usage (&commands[i]);

      ph_rows_add (&rows, usage, _ (commands[i].summary));
    }
  ph_rows_print (&rows, out);
  g_string_append_c (out, '\n');
  g_string_append (out, _ ("Options for the command go after it; --json prints JSON for "
                           "status, pin show, get, settings, route, doctor, capture status, "
                           "socks-user list, system-proxy status and connections. Put -- before "
                           "a VALUE that starts with -."));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Keep in step with ph-ctl-exit.h. */
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
            "doctor exits 0 when every step passed, else by the first step that failed:\n"
            "  7 for DNS, TCP and TLS, 8 for missing credentials, 1 for the others (a\n"
            "  rejected password, a refused probe, the URL).\n"
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
    { PH_CTL_OPT_JSON, ctl->json, "--json" },
    { PH_CTL_OPT_YES, ctl->yes, "--yes" },
    { PH_CTL_OPT_PASSWORD_STDIN, ctl->password_stdin, "--password-stdin" },
    { PH_CTL_OPT_LINES, ctl->lines != -1, "-n" },
    { PH_CTL_OPT_FOLLOW, ctl->follow, "--follow" },
    { PH_CTL_OPT_CAPTURE, ctl->gateway != NULL, "--gateway" },
    { PH_CTL_OPT_CAPTURE, ctl->local, "--local" },
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

/* Runs the command in @args (program name first); returns the exit status. @bad_command_line
 * tells a mistyped command line from a failure. */
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
      else if (g_str_equal (args[1], "capture"))
        g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                             _ ("“capture” needs “on”, “off” or “status”"));
      else if (g_str_equal (args[1], "socks-user"))
        g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                             _ ("“socks-user” needs “add”, “remove” or “list”"));
      else
        g_set_error (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE, _ ("unknown command “%s”"), args[1]);
      return PH_CTL_EXIT_USAGE;
    }

  name = command->sub != NULL ? g_strdup_printf ("%s %s", command->name, command->sub)
                              : g_strdup (command->name);
  n_args = argc - first_arg;
  if (n_args < command->min_args || n_args > command->max_args)
    {
      /* Never echo the arguments: a password typed there by mistake would end up in the
       * terminal's scrollback twice. */
      g_autofree char *usage = command_usage (command);

      if (command->func == ph_ctl_cmd_set_credentials && n_args > command->max_args)
        {
          g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                               _ ("set-credentials takes only the user name: the password is "
                                  "asked for on the terminal, or read with --password-stdin"));
          return PH_CTL_EXIT_USAGE;
        }
      if (command->func == ph_ctl_cmd_socks_user_add && n_args > command->max_args)
        {
          g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                               _ ("socks-user add takes only the user name: the password is "
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
  if (command->func == ph_ctl_cmd_capture_on && (ctl->gateway != NULL) == ctl->local)
    {
      g_set_error_literal (error, PH_CTL_ERROR, PH_CTL_ERROR_USAGE,
                           _ ("capture on needs either --gateway IFACE or --local"));
      return PH_CTL_EXIT_USAGE;
    }

  *bad_command_line = FALSE;
  ctl->exit_status = PH_CTL_EXIT_OK;
  ctl->changes = (command->options & PH_CTL_CHANGES) != 0;
  if (!command->func (ctl, args + first_arg, error))
    {
      /* What the bus or the agent said, as a PH_ERROR or PH_CLIENT_ERROR code. */
      ph_client_error_convert (*error);
      return ph_ctl_exit_for_error (*error);
    }
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
    { "address", 0, 0, G_OPTION_ARG_STRING, &ctl.address,
      N_ ("Talk to the agent at this D-Bus address (a private bus or the agent itself)"),
      N_ ("ADDRESS") },
    { "version", 0, 0, G_OPTION_ARG_NONE, &ctl.version, N_ ("Print the version and exit"), NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &ctl.json,
      N_ ("Print JSON (status, pin show, get, settings, route, doctor, capture status, socks-user "
          "list)"),
      NULL },
    { "yes", 'y', 0, G_OPTION_ARG_NONE, &ctl.yes,
      N_ ("Do not ask before trusting a key (pin trust)"), NULL },
    { "password-stdin", 0, 0, G_OPTION_ARG_NONE, &ctl.password_stdin,
      N_ ("Read the password as one line from standard input (set-credentials, socks-user add)"),
      NULL },
    { "lines", 'n', 0, G_OPTION_ARG_INT, &ctl.lines, N_ ("Show the last N lines (logs)"),
      N_ ("N") },
    { "follow", 'f', 0, G_OPTION_ARG_NONE, &ctl.follow, N_ ("Keep showing new lines (logs)"),
      NULL },
    { "gateway", 0, 0, G_OPTION_ARG_STRING, &ctl.gateway,
      N_ ("Capture the connections this LAN interface forwards (capture on)"), N_ ("IFACE") },
    { "local", 0, 0, G_OPTION_ARG_NONE, &ctl.local,
      N_ ("Capture this machine's own connections (capture on)"), NULL },
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
  /* The bus options first, where there are buses, as --help has always listed them. */
  g_option_context_add_main_entries (context, ph_ctl_bus_options (&ctl), GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  summary = commands_help ();
  g_option_context_set_summary (context, summary);
  g_option_context_set_description (context, exit_codes_help ());

  args = ph_ctl_get_arguments (argc, argv);
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
