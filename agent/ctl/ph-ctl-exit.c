/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-exit.c: which exit status each failure gives (the table is in ph-ctl-exit.h). */
#define G_LOG_DOMAIN "pinhole-ctl"

#include "ph-ctl-exit.h"
#include "ph-client.h"
#include "ph-error.h"
#include "ph-tty.h"

G_DEFINE_QUARK (ph - ctl - error - quark, ph_ctl_error)

PhCtlExit
ph_ctl_exit_for_error (const GError *error)
{
  if (error->domain == PH_CTL_ERROR)
    return error->code == PH_CTL_ERROR_USAGE ? PH_CTL_EXIT_USAGE : PH_CTL_EXIT_FAILED;
  if (error->domain == G_OPTION_ERROR)
    return PH_CTL_EXIT_USAGE;
  /* Nobody to ask, or an answer that cannot be one, is the command line's fault. */
  if (error->domain == PH_TTY_ERROR)
    return error->code == PH_TTY_ERROR_FAILED ? PH_CTL_EXIT_FAILED : PH_CTL_EXIT_USAGE;
  if (error->domain == PH_CLIENT_ERROR)
    return PH_CTL_EXIT_UNREACHABLE;
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
          case PH_ERROR_CERT_UNTRUSTED:
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
  return PH_CTL_EXIT_FAILED;
}

PhCtlExit
ph_ctl_exit_for_diagnosis (GVariant *report)
{
  g_autoptr (GVariant) proxies = NULL;
  gboolean ok = FALSE;

  if (g_variant_lookup (report, "ok", "b", &ok) && ok)
    return PH_CTL_EXIT_OK;
  proxies = g_variant_lookup_value (report, "proxies", G_VARIANT_TYPE ("aa{sv}"));
  for (gsize i = 0; proxies != NULL && i < g_variant_n_children (proxies); i++)
    {
      g_autoptr (GVariant) proxy = g_variant_get_child_value (proxies, i);
      g_autoptr (GVariant) steps
          = g_variant_lookup_value (proxy, "steps", G_VARIANT_TYPE ("aa{sv}"));

      for (gsize s = 0; steps != NULL && s < g_variant_n_children (steps); s++)
        {
          g_autoptr (GVariant) step = g_variant_get_child_value (steps, s);
          const char *name = "", *status = "", *code = "";

          g_variant_lookup (step, "step", "&s", &name);
          g_variant_lookup (step, "status", "&s", &status);
          g_variant_lookup (step, "code", "&s", &code);
          if (g_strcmp0 (status, "failed") != 0)
            continue;
          if (g_strcmp0 (name, "dns") == 0 || g_strcmp0 (name, "tcp") == 0
              || g_strcmp0 (name, "tls") == 0)
            return PH_CTL_EXIT_UPSTREAM;
          if (g_strcmp0 (name, "auth") == 0 && g_strcmp0 (code, "no-credentials") == 0)
            return PH_CTL_EXIT_NOT_CONFIGURED;
          return PH_CTL_EXIT_FAILED;
        }
    }
  return PH_CTL_EXIT_FAILED;
}
