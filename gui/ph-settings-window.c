/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-settings-window.c: the settings window. Every value comes from the
 * agent and goes back through it, so the agent's validation is the only
 * one and its message is what the user reads. The password field never
 * shows a stored password: the agent never gives one out. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-build-config.h"
#include "ph-settings-window.h"

#include <string.h>
#include <glib/gi18n.h>

struct _PhSettingsWindow
{
  GtkWindow parent;

  PhAgent1 *agent;    /* NULL while there is no agent */
  PhTrayPrefs *prefs; /* unowned: the application outlives its windows */
  GtkWidget *locked_note;
  GtkWidget *upstream_host;
  GtkWidget *upstream_port;
  GtkWidget *trusted_pins;
  GtkWidget *seen_pin;
  GtkWidget *trust_button;
  GtkWidget *username;
  GtkWidget *password;
  GtkWidget *listener_port;
  GtkWidget *route_direct;
  GtkWidget *route_block;
  GtkWidget *when_unreachable;
  GtkWidget *portal;
  GtkWidget *system_proxy;
  GtkWidget *system_proxy_mode;
  GtkWidget *message;
  GtkWidget *apply_button;
  GtkWidget *close_button;

  GHashTable *loaded;    /* key -> value as last read, to send only changes */
  gboolean absent_shown; /* the message says that the agent is not running */
};

G_DEFINE_TYPE (PhSettingsWindow, ph_settings_window, GTK_TYPE_WINDOW)

/* The agent's keys behind the entries. */
static const struct
{
  const char *key;
  gsize offset;
} fields[] = {
  { "upstream.host", G_STRUCT_OFFSET (PhSettingsWindow, upstream_host) },
  { "upstream.port", G_STRUCT_OFFSET (PhSettingsWindow, upstream_port) },
  { "upstream.username", G_STRUCT_OFFSET (PhSettingsWindow, username) },
  { "listener.address", G_STRUCT_OFFSET (PhSettingsWindow, listener_port) },
  { "upstream.pins", G_STRUCT_OFFSET (PhSettingsWindow, trust_button) },
  { "route.direct", G_STRUCT_OFFSET (PhSettingsWindow, route_direct) },
  { "route.block", G_STRUCT_OFFSET (PhSettingsWindow, route_block) },
  { "route.when-unreachable", G_STRUCT_OFFSET (PhSettingsWindow, when_unreachable) },
  { "route.portal", G_STRUCT_OFFSET (PhSettingsWindow, portal) },
  { "system-proxy.mode", G_STRUCT_OFFSET (PhSettingsWindow, system_proxy_mode) },
};

enum
{
  SIGNAL_APPLIED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

#define FIELD(self, i) (*(GtkWidget **) ((guint8 *) (self) + fields[i].offset))

GtkWidget *
ph_settings_window_get_widget (PhSettingsWindow *self, const char *key)
{
  for (guint i = 0; i < G_N_ELEMENTS (fields); i++)
    if (g_str_equal (fields[i].key, key))
      return FIELD (self, i);
  if (g_str_equal (key, "password"))
    return self->password;
  return NULL;
}

const char *
ph_settings_window_get_message (PhSettingsWindow *self)
{
  return gtk_widget_get_visible (self->message) ? gtk_label_get_text (GTK_LABEL (self->message))
                                                : NULL;
}

static void
show_message (PhSettingsWindow *self, const char *text)
{
  gtk_label_set_text (GTK_LABEL (self->message), text ? text : "");
  gtk_widget_set_visible (self->message, text != NULL);
}

/* "127.0.0.1:3128;[::1]:3128" shows as 3128. */
static char *
port_of_listeners (const char *value)
{
  g_auto (GStrv) items = g_strsplit_set (value, ";,", -1);
  const char *colon = items[0] ? strrchr (items[0], ':') : NULL;

  return g_strdup (colon ? colon + 1 : "");
}

/* What @key's entry shows for @value ("" for none): listeners are edited as their port. */
static char *
entry_text_for (const char *key, const char *value)
{
  if (value == NULL)
    return g_strdup ("");
  return g_str_equal (key, "listener.address") ? port_of_listeners (value) : g_strdup (value);
}

static char *
listeners_for_port (const char *old, const char *port)
{
  g_auto (GStrv) items = g_strsplit_set (old, ";,", -1);
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint i = 0; items[i] != NULL; i++)
    {
      char *item = g_strstrip (items[i]);
      const char *colon = strrchr (item, ':');
      if (*item == '\0' || colon == NULL)
        continue;
      if (out->len > 0)
        g_string_append_c (out, ';');
      g_string_append_len (out, item, colon - item + 1);
      g_string_append (out, port);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
set_locked (PhSettingsWindow *self, GtkWidget *widget, gboolean locked)
{
  gtk_widget_set_sensitive (widget, !locked);
  gtk_widget_set_tooltip_text (widget, locked ? _ ("Set by your administrator") : NULL);
  if (GTK_IS_ENTRY (widget))
    gtk_entry_set_icon_from_icon_name (GTK_ENTRY (widget), GTK_ENTRY_ICON_SECONDARY,
                                       locked ? "changes-prevent-symbolic" : NULL);
}

void
ph_settings_window_refresh (PhSettingsWindow *self)
{
  PhAgent1 *agent = self->agent;
  g_autoptr (GVariant) settings = NULL;
  g_autoptr (GError) error = NULL;
  const char *const *pins;
  const char *seen;
  GVariantIter iter;
  const char *key, *value, *fallback;
  gboolean locked, any_locked = FALSE;
  g_autoptr (GHashTable) previous = NULL;

  gtk_widget_set_sensitive (self->apply_button, agent != NULL);
  if (agent == NULL)
    {
      show_message (self, _ ("The Pinhole agent is not running."));
      self->absent_shown = TRUE;
      return;
    }
  /* The agent came (back): its absence is no longer the news. */
  if (self->absent_shown)
    show_message (self, NULL);
  self->absent_shown = FALSE;
  if (!ph_agent1_call_list_settings_sync (agent, &settings, NULL, &error))
    {
      g_dbus_error_strip_remote_error (error);
      show_message (self, error->message);
      return;
    }
  /* What the entries showed from the last read, to tell the user's typing from it. */
  previous = g_steal_pointer (&self->loaded);
  self->loaded = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_variant_iter_init (&iter, settings);
  while (g_variant_iter_next (&iter, "(&s&sb&s)", &key, &value, &locked, &fallback))
    {
      GtkWidget *widget = ph_settings_window_get_widget (self, key);
      g_autofree char *shown = NULL;
      g_autofree char *shown_before = NULL;
      const char *before = g_hash_table_lookup (previous, key);

      g_hash_table_insert (self->loaded, g_strdup (key), g_strdup (value));
      if (widget == NULL)
        continue;
      any_locked |= locked;
      set_locked (self, widget, locked);
      /* A choice (route.when-unreachable, system-proxy.mode): its item's id is the value. */
      if (GTK_IS_COMBO_BOX (widget))
        {
          if (g_strcmp0 (before, value) != 0
              || gtk_combo_box_get_active_id (GTK_COMBO_BOX (widget)) == NULL)
            gtk_combo_box_set_active_id (GTK_COMBO_BOX (widget), value);
          continue;
        }
      if (!GTK_IS_ENTRY (widget))
        continue;
      shown = entry_text_for (key, value);
      shown_before = entry_text_for (key, before);
      /* Keep what the user is typing: a focused entry that no longer shows the last value
       * read. (Focus alone is not enough: the window may get it before the agent answers.) */
      if (gtk_widget_has_focus (widget)
          && g_strcmp0 (gtk_entry_get_text (GTK_ENTRY (widget)), shown_before) != 0)
        continue;
      gtk_entry_set_text (GTK_ENTRY (widget), shown);
    }
  gtk_widget_set_visible (self->locked_note, any_locked);

  pins = ph_agent1_get_trusted_pins (agent);
  if (pins != NULL && pins[0] != NULL)
    {
      g_autofree char *text = g_strjoinv ("\n", (GStrv) pins);
      gtk_label_set_text (GTK_LABEL (self->trusted_pins), text);
    }
  else
    gtk_label_set_text (GTK_LABEL (self->trusted_pins), _ ("None yet"));
  seen = ph_agent1_get_seen_pin (agent);
  gtk_label_set_text (GTK_LABEL (self->seen_pin), seen && *seen ? seen : _ ("Not seen yet"));
  gtk_widget_set_visible (self->trust_button,
                          seen && *seen && !(pins && g_strv_contains (pins, seen)));

  gtk_entry_set_placeholder_text (
      GTK_ENTRY (self->password),
      ph_agent1_get_credentials_stored (agent) ? _ ("Stored; type to replace") : _ ("Not stored"));
  gtk_switch_set_active (GTK_SWITCH (self->system_proxy),
                         ph_tray_prefs_get_set_system_proxy (self->prefs));
}

/* Sends @key = @value if it changed; FALSE with the agent's reason shown. */
static gboolean
send_setting (PhSettingsWindow *self, PhAgent1 *agent, const char *key, const char *value)
{
  g_autoptr (GError) error = NULL;

  if (g_strcmp0 (g_hash_table_lookup (self->loaded, key), value) == 0)
    return TRUE;
  if (!ph_agent1_call_set_setting_sync (agent, key, value, NULL, &error))
    {
      GtkWidget *widget = ph_settings_window_get_widget (self, key);
      g_dbus_error_strip_remote_error (error);
      show_message (self, error->message);
      if (widget != NULL)
        gtk_widget_grab_focus (widget);
      return FALSE;
    }
  g_hash_table_insert (self->loaded, g_strdup (key), g_strdup (value));
  return TRUE;
}

gboolean
ph_settings_window_apply (PhSettingsWindow *self)
{
  PhAgent1 *agent = self->agent;
  const char *host = gtk_entry_get_text (GTK_ENTRY (self->upstream_host));
  const char *port = gtk_entry_get_text (GTK_ENTRY (self->upstream_port));
  const char *user = gtk_entry_get_text (GTK_ENTRY (self->username));
  const char *password = gtk_entry_get_text (GTK_ENTRY (self->password));
  const char *listen_port = gtk_entry_get_text (GTK_ENTRY (self->listener_port));
  const char *old_listen = g_hash_table_lookup (self->loaded, "listener.address");
  g_autofree char *old_port = old_listen ? port_of_listeners (old_listen) : NULL;
  g_autoptr (GError) error = NULL;
  /* The route and system-proxy keys, in the order they are sent. */
  static const char *const choices[] = { "route.direct", "route.block", "route.when-unreachable",
                                         "route.portal", "system-proxy.mode" };

  if (agent == NULL)
    return FALSE;
  show_message (self, NULL);
  if (gtk_widget_get_sensitive (self->upstream_host)
      && !send_setting (self, agent, "upstream.host", host))
    return FALSE;
  if (gtk_widget_get_sensitive (self->upstream_port)
      && !send_setting (self, agent, "upstream.port", port))
    return FALSE;
  if (gtk_widget_get_sensitive (self->listener_port) && old_listen != NULL
      && g_strcmp0 (old_port, listen_port) != 0)
    {
      g_autofree char *listeners = listeners_for_port (old_listen, listen_port);
      if (!send_setting (self, agent, "listener.address", listeners))
        return FALSE;
    }
  if (*password != '\0')
    {
      if (!ph_agent1_call_set_credentials_sync (agent, user, password, NULL, &error))
        {
          g_dbus_error_strip_remote_error (error);
          show_message (self, error->message);
          return FALSE;
        }
      gtk_entry_set_text (GTK_ENTRY (self->password), "");
    }
  else if (gtk_widget_get_sensitive (self->username)
           && !send_setting (self, agent, "upstream.username", user))
    return FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (choices); i++)
    {
      GtkWidget *widget = ph_settings_window_get_widget (self, choices[i]);
      g_autofree char *value = NULL;

      if (!gtk_widget_get_sensitive (widget))
        continue;
      if (GTK_IS_COMBO_BOX (widget))
        value = g_strdup (gtk_combo_box_get_active_id (GTK_COMBO_BOX (widget)));
      else
        value = g_strstrip (g_strdup (gtk_entry_get_text (GTK_ENTRY (widget))));
      if (value != NULL && !send_setting (self, agent, choices[i], value))
        return FALSE;
    }

  if (!ph_tray_prefs_save (self->prefs, gtk_switch_get_active (GTK_SWITCH (self->system_proxy)),
                           &error))
    {
      show_message (self, error->message);
      return FALSE;
    }
  /* The system proxy follows route.direct and system-proxy.mode, which change no property of
   * the agent's. */
  g_signal_emit (self, signals[SIGNAL_APPLIED], 0);
  return TRUE;
}

static void
on_apply (GtkButton *button, PhSettingsWindow *self)
{
  ph_settings_window_apply (self);
}

static void
on_close (GtkButton *button, PhSettingsWindow *self)
{
  gtk_widget_destroy (GTK_WIDGET (self));
}

static void
ph_settings_window_finalize (GObject *object)
{
  PhSettingsWindow *self = PH_SETTINGS_WINDOW (object);

  g_clear_object (&self->agent);
  g_hash_table_unref (self->loaded);
  G_OBJECT_CLASS (ph_settings_window_parent_class)->finalize (object);
}

static void
ph_settings_window_class_init (PhSettingsWindowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = ph_settings_window_finalize;
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/pinhole/Tray/ph-settings-window.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, PhSettingsWindow, name)
  BIND (locked_note);
  BIND (upstream_host);
  BIND (upstream_port);
  BIND (trusted_pins);
  BIND (seen_pin);
  BIND (trust_button);
  BIND (username);
  BIND (password);
  BIND (listener_port);
  BIND (route_direct);
  BIND (route_block);
  BIND (when_unreachable);
  BIND (portal);
  BIND (system_proxy);
  BIND (system_proxy_mode);
  BIND (message);
  BIND (apply_button);
  BIND (close_button);
#undef BIND
  /* After a successful apply. */
  signals[SIGNAL_APPLIED] = g_signal_new ("applied", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
ph_settings_window_init (PhSettingsWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->loaded = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_signal_connect (self->apply_button, "clicked", G_CALLBACK (on_apply), self);
  g_signal_connect (self->close_button, "clicked", G_CALLBACK (on_close), self);
}

PhSettingsWindow *
ph_settings_window_new (GtkApplication *application, PhTrayPrefs *prefs)
{
  PhSettingsWindow *self = g_object_new (PH_TYPE_SETTINGS_WINDOW, "application", application, NULL);

  self->prefs = prefs;
  return self;
}

void
ph_settings_window_set_agent (PhSettingsWindow *self, PhAgent1 *agent)
{
  g_return_if_fail (PH_IS_SETTINGS_WINDOW (self));
  g_set_object (&self->agent, agent);
}
