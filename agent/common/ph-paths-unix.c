/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-paths-unix.c: ph-paths.h on Linux and other Unix systems (meson picks this file): the
 * directories the build was configured with. */
#include "ph-build-config.h"
#include "ph-paths.h"

#include <libintl.h>

const char *
ph_paths_sysconfdir (void)
{
  return PH_SYSCONFDIR;
}

const char *
ph_paths_localstatedir (void)
{
  return PH_LOCALSTATEDIR;
}

const char *
ph_paths_datadir (void)
{
  return PH_INSTALL_DATADIR;
}

const char *
ph_paths_localedir (void)
{
  return PH_LOCALEDIR;
}

void
ph_paths_bind_textdomain (const char *domain)
{
  /* PINHOLE_LOCALEDIR: the catalogues of an uninstalled build (its po/ folder), for tests and
   * running from the build tree. */
  const char *dir = g_getenv ("PINHOLE_LOCALEDIR");

  bindtextdomain (domain, dir != NULL && *dir != '\0' ? dir : PH_LOCALEDIR);
  bind_textdomain_codeset (domain, "UTF-8");
}
