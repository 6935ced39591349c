/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-tray-icon.c: AppIndicator first, GtkStatusIcon as the fallback,
 * chosen at build time (meson option appindicator) and at run time (is a
 * StatusNotifierWatcher there?). */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-build-config.h"
#include "ph-tray-icon.h"

#ifdef PH_HAVE_APPINDICATOR
#include <libayatana-appindicator/app-indicator.h>
#endif

struct _PhTrayIcon
{
  GtkMenu *menu;
  GtkStatusIcon *status_icon;
#ifdef PH_HAVE_APPINDICATOR
  AppIndicator *indicator;
#endif
  char *icon_name;
};

/* GtkStatusIcon is deprecated in GTK 3 but is the only tray icon an
 * XEmbed tray (and Windows) shows. */
G_GNUC_BEGIN_IGNORE_DEPRECATIONS

static void
on_popup_menu (GtkStatusIcon *status_icon, guint button, guint activate_time, gpointer data)
{
  PhTrayIcon *icon = data;

  gtk_menu_popup (icon->menu, NULL, NULL, gtk_status_icon_position_menu, status_icon, button,
                  activate_time);
}

static void
on_activate (GtkStatusIcon *status_icon, gpointer data)
{
  on_popup_menu (status_icon, 0, gtk_get_current_event_time (), data);
}

static gboolean
watcher_present (void)
{
  g_autoptr (GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autoptr (GVariant) reply = NULL;
  gboolean owned = FALSE;

  if (bus == NULL)
    return FALSE;
  reply = g_dbus_connection_call_sync (
      bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
      g_variant_new ("(s)", "org.kde.StatusNotifierWatcher"), G_VARIANT_TYPE ("(b)"),
      G_DBUS_CALL_FLAGS_NONE, 1000, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &owned);
  return owned;
}

PhTrayIcon *
ph_tray_icon_new (GtkMenu *menu, gboolean prefer_indicator)
{
  PhTrayIcon *icon = g_new0 (PhTrayIcon, 1);

  icon->menu = g_object_ref_sink (menu);
  icon->icon_name = g_strdup ("pinhole-off");
#ifdef PH_HAVE_APPINDICATOR
  if (prefer_indicator && watcher_present ())
    {
      icon->indicator = app_indicator_new ("pinhole-tray", icon->icon_name,
                                           APP_INDICATOR_CATEGORY_APPLICATION_STATUS);
      app_indicator_set_status (icon->indicator, APP_INDICATOR_STATUS_ACTIVE);
      app_indicator_set_menu (icon->indicator, menu);
      app_indicator_set_title (icon->indicator, "Pinhole");
      return icon;
    }
#else
  (void) watcher_present;
#endif
  icon->status_icon = gtk_status_icon_new_from_icon_name (icon->icon_name);
  gtk_status_icon_set_title (icon->status_icon, "Pinhole");
  gtk_status_icon_set_name (icon->status_icon, "pinhole-tray");
  g_signal_connect (icon->status_icon, "popup-menu", G_CALLBACK (on_popup_menu), icon);
  g_signal_connect (icon->status_icon, "activate", G_CALLBACK (on_activate), icon);
  gtk_status_icon_set_visible (icon->status_icon, TRUE);
  return icon;
}

void
ph_tray_icon_free (PhTrayIcon *icon)
{
  if (icon->status_icon != NULL)
    {
      gtk_status_icon_set_visible (icon->status_icon, FALSE);
      g_signal_handlers_disconnect_by_data (icon->status_icon, icon);
      g_object_unref (icon->status_icon);
    }
#ifdef PH_HAVE_APPINDICATOR
  g_clear_object (&icon->indicator);
#endif
  gtk_widget_destroy (GTK_WIDGET (icon->menu));
  g_object_unref (icon->menu);
  g_free (icon->icon_name);
  g_free (icon);
}

void
ph_tray_icon_set (PhTrayIcon *icon, const char *icon_name, const char *tooltip)
{
  g_free (icon->icon_name);
  icon->icon_name = g_strdup (icon_name);
  if (icon->status_icon != NULL)
    {
      gtk_status_icon_set_from_icon_name (icon->status_icon, icon_name);
      gtk_status_icon_set_tooltip_text (icon->status_icon, tooltip);
    }
#ifdef PH_HAVE_APPINDICATOR
  if (icon->indicator != NULL)
    {
      app_indicator_set_icon_full (icon->indicator, icon_name, tooltip);
      app_indicator_set_title (icon->indicator, tooltip);
    }
#endif
}

void
ph_tray_icon_popup (PhTrayIcon *icon)
{
  if (icon->status_icon != NULL && gtk_status_icon_is_embedded (icon->status_icon))
    {
      on_popup_menu (icon->status_icon, 0, GDK_CURRENT_TIME, icon);
      return;
    }
  gtk_menu_popup (icon->menu, NULL, NULL, NULL, NULL, 0, GDK_CURRENT_TIME);
}

const char *
ph_tray_icon_get_kind (PhTrayIcon *icon)
{
  return icon->status_icon != NULL ? "status-icon" : "appindicator";
}

const char *
ph_tray_icon_get_icon_name (PhTrayIcon *icon)
{
  return icon->icon_name;
}

G_GNUC_END_IGNORE_DEPRECATIONS
