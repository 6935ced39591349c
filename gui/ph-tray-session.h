/* ph-tray-session.h: how the system tells the tray to go, per platform: SIGTERM, SIGINT and
 * SIGHUP on Unix; on Windows the end of the session (WM_QUERYENDSESSION/WM_ENDSESSION),
 * WM_CLOSE (taskkill, installers) and console events, seen by a hidden top-level window; and one
 * tray per session on Windows, where GApplication's uniqueness (D-Bus) is not available. */
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

#ifdef G_OS_WIN32
/* A balloon (a toast on Windows 10 and later) from a notification-area icon of its own, as GLib
 * has no Windows backend for GNotification; clicking it shows the settings window (the show
 * handler). A second call replaces the first; withdraw removes it. */
void ph_tray_session_notify (PhTraySession *session, const char *title, const char *body,
                             gboolean warning);
void ph_tray_session_withdraw (PhTraySession *session);
#endif

G_END_DECLS
