/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-paths-win32.c: ph-paths.h on Windows (meson picks this file). */
#include "ph-build-config.h"
#include "ph-paths.h"

#include <libintl.h>

#include <windows.h>
#include <shlobj.h>

/* The installation's root: the directory above bin\ holding this executable. */
static const char *
install_root (void)
{
  static gsize root;

  if (g_once_init_enter (&root))
    g_once_init_leave (&root, (gsize) g_win32_get_package_installation_directory_of_module (NULL));
  return (const char *) root;
}

static const char *
program_data (void)
{
  static gsize dir;

  if (g_once_init_enter (&dir))
    {
      PWSTR path = NULL;
      char *utf8 = NULL;

      if (SHGetKnownFolderPath (&FOLDERID_ProgramData, 0, NULL, &path) == S_OK)
        utf8 = g_utf16_to_utf8 (path, -1, NULL, NULL, NULL);
      CoTaskMemFree (path);
      if (utf8 == NULL)
        utf8 = g_strdup ("C:\\ProgramData");
      g_once_init_leave (&dir, (gsize) g_build_filename (utf8, "Pinhole", NULL));
      g_free (utf8);
    }
  return (const char *) dir;
}

#define ONCE_PATH(var, expr)                                                                       \
  static gsize var;                                                                                \
  if (g_once_init_enter (&var))                                                                    \
    g_once_init_leave (&var, (gsize) (expr));                                                      \
  return (const char *) var

const char *
ph_paths_sysconfdir (void)
{
  return program_data ();
}

const char *
ph_paths_localstatedir (void)
{
  ONCE_PATH (dir, g_build_filename (program_data (), "state", NULL));
}

const char *
ph_paths_datadir (void)
{
  ONCE_PATH (dir, g_build_filename (install_root (), "share", NULL));
}

const char *
ph_paths_localedir (void)
{
  ONCE_PATH (dir, g_build_filename (install_root (), "share", "locale", NULL));
}

void
ph_paths_bind_textdomain (const char *domain)
{
  /* In the ANSI code page, or its 8.3 short name where the code page cannot spell it. (libintl's
   * wbindtextdomain found the catalogue in some runs under Wine and not in others.) */
  g_autofree char *dir = g_win32_locale_filename_from_utf8 (ph_paths_localedir ());

  bindtextdomain (domain, dir != NULL ? dir : ph_paths_localedir ());
  bind_textdomain_codeset (domain, "UTF-8");
}
