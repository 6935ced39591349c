/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-main.c: pinhole-tray's entry point. */
#include "ph-build-config.h"
#include "ph-error.h"
#include "ph-paths.h"
#include "ph-tray-app.h"

#include <locale.h>
#include <glib/gi18n.h>

int
main (int argc, char **argv)
{
  g_autoptr (PhTrayApp) app = NULL;

  setlocale (LC_ALL, "");
  ph_paths_bind_textdomain (GETTEXT_PACKAGE);
  textdomain (GETTEXT_PACKAGE);
  /* The agent's errors' D-Bus names, registered before any reply arrives: a refusal is then
   * PH_ERROR_PERMISSION_DENIED, which sends a change to the administrator's helper. */
  ph_error_quark ();
  app = ph_tray_app_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
}
