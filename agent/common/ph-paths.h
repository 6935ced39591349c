/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-paths.h: where Pinhole's files are. On Linux these are the directories the build was
 * configured with; on Windows the configuration and state are under %ProgramData%\Pinhole and
 * the data and translations are found from the executable's own location (bin\..\share), so
 * that an installation works wherever it was put. Each string lives as long as the process. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* pinhole.conf and managed.d: /etc/pinhole; %ProgramData%\Pinhole. */
const char *ph_paths_sysconfdir (void);
/* The system service's state (on/off switch, credentials): /var/lib/pinhole;
 * %ProgramData%\Pinhole\state. */
const char *ph_paths_localstatedir (void);
/* Installed data (icons): /usr/share; <install dir>\share. */
const char *ph_paths_datadir (void);
/* Message catalogues: /usr/share/locale; <install dir>\share\locale. */
const char *ph_paths_localedir (void);

/* bindtextdomain (@domain, ph_paths_localedir ()) and UTF-8 output. On Windows bindtextdomain
 * takes the ANSI code page, and the install directory may hold any character. */
void ph_paths_bind_textdomain (const char *domain);

G_END_DECLS
