/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-machine-proxy-none.c: ph-machine-proxy.h where no machine-wide consumer is known yet
 * (Windows: WinHTTP is a later part of issue 16; meson picks this file): no consumer, a journal
 * that is never written, and apply() refusing any name. */
#include "ph-error.h"
#include "ph-machine-proxy.h"

struct _PhMachineProxy
{
  int unused;
};

static const char *const no_consumers[] = { NULL };

const char *const *
ph_machine_proxy_consumers (void)
{
  return no_consumers;
}

PhMachineProxy *
ph_machine_proxy_new (const char *journal_path)
{
  return g_new0 (PhMachineProxy, 1);
}

void
ph_machine_proxy_free (PhMachineProxy *mp)
{
  g_free (mp);
}

gboolean
ph_machine_proxy_recover (PhMachineProxy *mp, gboolean *restored, GError **error)
{
  *restored = FALSE;
  return TRUE;
}

char *
ph_machine_proxy_no_proxy (const char *direct)
{
  return g_strdup ("localhost,127.0.0.1,::1");
}

gboolean
ph_machine_proxy_apply (PhMachineProxy *mp, const char *const *consumers, guint port,
                        const char *direct, GError **error)
{
  if (consumers == NULL || consumers[0] == NULL)
    return TRUE;
  g_set_error (error, PH_ERROR, PH_ERROR_INVALID_SETTING,
               "“%s” is not a machine-wide proxy consumer on this system", consumers[0]);
  return FALSE;
}

gboolean
ph_machine_proxy_restore (PhMachineProxy *mp, GError **error)
{
  return TRUE;
}

gboolean
ph_machine_proxy_is_applied (PhMachineProxy *mp)
{
  return FALSE;
}

GVariant *
ph_machine_proxy_dup_status (PhMachineProxy *mp, const char *const *consumers)
{
  return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARDICT, NULL, 0));
}
