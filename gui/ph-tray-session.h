/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-session.h: the tray and the platform's login session. How the system tells the tray
 * to go: SIGTERM, SIGINT and SIGHUP on Unix; on Windows the end of the session
 * (WM_QUERYENDSESSION/WM_ENDSESSION), WM_CLOSE (taskkill, installers) and console events, seen by
 * a hidden top-level window. One tray per session on Windows, where GApplication's uniqueness
 * (D-Bus) is not available. And what else differs for the tray per platform: how it tells the
 * user things outside its windows, where it keeps its state, the options only one platform has. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct
{
  /* Asked to quit: quit the main loop as usual. */
  void (*quit) (gpointer user_data);
  /* The session ends now: put back what must be put back before returning, as the process
   * may be ended as soon as this returns. Called at most once. */
  void (*end_session) (gpointer user_data);
  /* Another start of the tray in this session: show the settings window. */
  void (*show) (gpointer user_data);
} PhTraySessionHandlers;

typedef struct _PhTraySession PhTraySession;

/* Call from the main thread, with its main loop running GTK. */
PhTraySession *ph_tray_session_new (const PhTraySessionHandlers *handlers, gpointer user_data);
void ph_tray_session_free (PhTraySession *session);

/* The GApplication flags the tray runs with here: GApplication's own uniqueness on Unix,
 * G_APPLICATION_NON_UNIQUE on Windows (see ph_tray_session_claim_instance()). */
GApplicationFlags ph_tray_session_get_app_flags (void);

/* One tray per login session where GApplication does not see to it (Windows). FALSE when
 * another tray runs in this session; that one has then been asked to show its settings window.
 * Always TRUE on Unix. */
gboolean ph_tray_session_claim_instance (void);

/* The options only this platform has, to add to the tray's own: --session and --system on
 * Unix, where the agent may be the system service or a per-user one; none on Windows, which has
 * one agent, on its pipe. NULL-terminated; the strings are marked with N_(). */
const GOptionEntry *ph_tray_session_get_options (void);

/* The folder of this user's tray state: $XDG_STATE_HOME/pinhole on Unix, %LOCALAPPDATA%\Pinhole
 * on Windows (GLib's user state directory there), where folders are capitalised. */
char *ph_tray_session_dup_state_dir (void);

/* Tells the user, outside any window. Unix: a GNotification of @app, @id naming it (a second
 * one with the same @id replaces it), at high priority when @urgent, with a button
 * (@button_label, running the action @button_action) when given. Windows, where GLib has no
 * GNotification backend: a balloon (a toast on Windows 10 and later) from a notification-area
 * icon of its own, a warning when @urgent; there is one balloon (a second replaces the first),
 * and clicking it runs @button_action (or, without one, shows the settings window). */
void ph_tray_session_notify (PhTraySession *session, GApplication *app, const char *id,
                             const char *title, const char *body, gboolean urgent,
                             const char *button_label, const char *button_action);
/* Takes back the notification @id (on Windows: the balloon, whichever it is). */
void ph_tray_session_withdraw (PhTraySession *session, GApplication *app, const char *id);

G_END_DECLS
