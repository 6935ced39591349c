/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-main.c: pinhole-tray's entry point. */
#include "ph-build-config.h"
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
  app = ph_tray_app_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
}
