/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-settings-window.c: the settings window. Every value comes from the
 * agent and goes back through it, so the agent's validation is the only
 * one and its message is what the user reads. The password field never
 * shows a stored password: the agent never gives one out. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-build-config.h"
#include "ph-settings-window.h"

#include "ph-elevate.h"
#include "ph-error.h"
#include "ph-wipe.h"

#include <string.h>
#include <glib/gi18n.h>

/* How long a write may take: polkit may be asking a person for a password. */
#define PH_APPLY_TIMEOUT_MS (5 * 60 * 1000)

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
  GtkWidget *waiting; /* the spinner and "Waiting for authorization…" */
  GtkWidget *waiting_spinner;

  GCancellable *cancellable; /* the writes of an apply, cancelled when the window goes */
  gboolean applying;
  gboolean elevating; /* this apply went to the administrator's helper (Windows) */
  guint waiting_timeout;

  GHashTable *loaded;    /* key -> value as last read, to send only changes */
  gboolean absent_shown; /* the message says that the agent is not running */
};

G_DEFINE_TYPE (PhSettingsWindow, ph_settings_window, GTK_TYPE_WINDOW)

typedef struct _PhWrite PhWrite;
static void write_free (PhWrite *write);

static void
writes_free (GQueue *writes)
{
  g_queue_free_full (writes, (GDestroyNotify) write_free);
}

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

  gtk_widget_set_sensitive (self->apply_button, agent != NULL && !self->applying);
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
      if (locked)
        g_debug ("%s is set by the administrator: its field is locked", key);
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

/* One write of an apply: SetSetting (@key, @value), or SetCredentials (@user, @password) when
 * @key is NULL. */
struct _PhWrite
{
  char *key;
  char *value; /* the user name for SetCredentials */
  char *password;
};

static void
write_free (PhWrite *write)
{
  g_free (write->key);
  g_free (write->value);
  if (write->password != NULL)
    {
      ph_wipe (write->password, strlen (write->password));
      g_free (write->password);
    }
  g_free (write);
}

/* Queues @key = @value if it changed. */
static void
queue_setting (PhSettingsWindow *self, GQueue *writes, const char *key, const char *value)
{
  PhWrite *write;

  if (g_strcmp0 (g_hash_table_lookup (self->loaded, key), value) == 0)
    return;
  write = g_new0 (PhWrite, 1);
  write->key = g_strdup (key);
  write->value = g_strdup (value);
  g_queue_push_tail (writes, write);
}

/* What the window's fields ask for, in the order it is sent. */
static GQueue *
collect_writes (PhSettingsWindow *self)
{
  GQueue *writes = g_queue_new ();
  const char *host = gtk_entry_get_text (GTK_ENTRY (self->upstream_host));
  const char *port = gtk_entry_get_text (GTK_ENTRY (self->upstream_port));
  const char *user = gtk_entry_get_text (GTK_ENTRY (self->username));
  const char *password = gtk_entry_get_text (GTK_ENTRY (self->password));
  const char *listen_port = gtk_entry_get_text (GTK_ENTRY (self->listener_port));
  const char *old_listen = g_hash_table_lookup (self->loaded, "listener.address");
  g_autofree char *old_port = old_listen ? port_of_listeners (old_listen) : NULL;
  /* The route and system-proxy keys, in the order they are sent. */
  static const char *const choices[] = { "route.direct", "route.block", "route.when-unreachable",
                                         "route.portal", "system-proxy.mode" };

  if (gtk_widget_get_sensitive (self->upstream_host))
    queue_setting (self, writes, "upstream.host", host);
  if (gtk_widget_get_sensitive (self->upstream_port))
    queue_setting (self, writes, "upstream.port", port);
  if (gtk_widget_get_sensitive (self->listener_port) && old_listen != NULL
      && g_strcmp0 (old_port, listen_port) != 0)
    {
      g_autofree char *listeners = listeners_for_port (old_listen, listen_port);
      queue_setting (self, writes, "listener.address", listeners);
    }
  if (*password != '\0')
    {
      PhWrite *write = g_new0 (PhWrite, 1);

      write->value = g_strdup (user);
      write->password = g_strdup (password);
      g_queue_push_tail (writes, write);
    }
  else if (gtk_widget_get_sensitive (self->username))
    queue_setting (self, writes, "upstream.username", user);

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
      if (value != NULL)
        queue_setting (self, writes, choices[i], value);
    }
  return writes;
}

static void
set_waiting (PhSettingsWindow *self, gboolean waiting)
{
  g_clear_handle_id (&self->waiting_timeout, g_source_remove);
  self->applying = waiting;
  gtk_widget_set_sensitive (self->apply_button, !waiting && self->agent != NULL);
  gtk_widget_set_sensitive (self->close_button, !waiting);
  if (!waiting)
    {
      gtk_spinner_stop (GTK_SPINNER (self->waiting_spinner));
      gtk_widget_set_visible (self->waiting, FALSE);
    }
}

/* A write that takes this long is most likely waiting for polkit's question to be answered. */
#define PH_WAITING_DELAY_MS 300

static gboolean
show_waiting (gpointer data)
{
  PhSettingsWindow *self = data;

  self->waiting_timeout = 0;
  gtk_widget_set_visible (self->waiting, TRUE);
  gtk_spinner_start (GTK_SPINNER (self->waiting_spinner));
  return G_SOURCE_REMOVE;
}

static void send_next (GTask *task);

/* @write was made: the window's idea of the agent's values follows. */
static void
write_made (PhSettingsWindow *self, PhWrite *write)
{
  if (write->key != NULL)
    g_hash_table_insert (self->loaded, g_strdup (write->key), g_strdup (write->value));
  else
    gtk_entry_set_text (GTK_ENTRY (self->password), "");
  write_free (write);
}

/* The apply stops at the first write not made: its message under the fields, its field
 * focused. Takes @write and @error. */
static void
write_failed (GTask *task, PhWrite *write, GError *error)
{
  PhSettingsWindow *self = g_task_get_source_object (task);

  /* The window is going: nothing to show. */
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
      || !g_cancellable_is_cancelled (self->cancellable))
    {
      GtkWidget *widget = write->key ? ph_settings_window_get_widget (self, write->key) : NULL;

      set_waiting (self, FALSE);
      g_dbus_error_strip_remote_error (error);
      show_message (self, error->message);
      if (widget != NULL)
        gtk_widget_grab_focus (widget);
    }
  write_free (write);
  g_task_return_error (task, error);
  g_object_unref (task);
}

static void
elevate_done (GObject *source, GAsyncResult *result, gpointer data)
{
  GTask *task = data;
  PhSettingsWindow *self = g_task_get_source_object (task);
  GQueue *writes = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = ph_elevate_run_finish (result, &error);
  const char *message = "";
  guint made = 0;

  if (reply != NULL)
    g_variant_get (reply, "(u&s)", &made, &message);
  for (guint i = 0; i < made && !g_queue_is_empty (writes); i++)
    write_made (self, g_queue_pop_head (writes));
  if (reply != NULL && *message != '\0' && !g_queue_is_empty (writes))
    error = g_error_new_literal (PH_ERROR, PH_ERROR_PERMISSION_DENIED, message);
  if (error != NULL)
    {
      g_message ("the administrator's helper: %s", error->message);
      write_failed (task, g_queue_pop_head (writes), g_steal_pointer (&error));
      return;
    }
  send_next (task);
}

/* Windows: the agent refused a write because this user is not an administrator of it. The
 * same writes, this one and the rest, go to the administrator's helper, through UAC's approval
 * (ph-elevate.h); the tray itself is never elevated. */
static void
elevate_writes (GTask *task)
{
  PhSettingsWindow *self = g_task_get_source_object (task);
  GQueue *writes = g_task_get_task_data (task);
  g_autofree char *helper = ph_elevate_helper_path ();
  GVariantBuilder request;

  g_variant_builder_init (&request, G_VARIANT_TYPE (PH_ELEVATE_REQUEST_TYPE));
  for (GList *l = writes->head; l != NULL; l = l->next)
    {
      PhWrite *write = l->data;

      if (write->key != NULL)
        g_variant_builder_add (&request, "(sss)", PH_ELEVATE_OP_SET, write->key, write->value);
      else
        g_variant_builder_add (&request, "(sss)", PH_ELEVATE_OP_CREDENTIALS, write->value,
                               write->password);
    }
  self->elevating = TRUE;
  g_clear_handle_id (&self->waiting_timeout, g_source_remove);
  show_waiting (self);
  ph_elevate_run_async (helper, PH_ELEVATE_COMMAND, g_variant_builder_end (&request),
                        self->cancellable, elevate_done, task);
}

static void
write_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GTask) task = data;
  PhSettingsWindow *self = g_task_get_source_object (task);
  GQueue *writes = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_proxy_call_finish (G_DBUS_PROXY (source), result, &error);

  if (reply == NULL)
    {
      if (g_error_matches (error, PH_ERROR, PH_ERROR_PERMISSION_DENIED) && ph_elevate_supported ()
          && !self->elevating)
        {
          g_message ("the agent needs an administrator for this change: %s", error->message);
          elevate_writes (g_steal_pointer (&task));
          return;
        }
      write_failed (g_steal_pointer (&task), g_queue_pop_head (writes), g_steal_pointer (&error));
      return;
    }
  write_made (self, g_queue_pop_head (writes));
  send_next (g_steal_pointer (&task));
}

static void
send_next (GTask *task)
{
  PhSettingsWindow *self = g_task_get_source_object (task);
  GQueue *writes = g_task_get_task_data (task);
  PhWrite *write = g_queue_peek_head (writes);
  g_autoptr (GError) error = NULL;
  GVariant *args;

  if (write == NULL)
    {
      set_waiting (self, FALSE);
      if (!ph_tray_prefs_save (self->prefs, gtk_switch_get_active (GTK_SWITCH (self->system_proxy)),
                               &error))
        {
          show_message (self, error->message);
          g_task_return_error (task, g_steal_pointer (&error));
          g_object_unref (task);
          return;
        }
      /* The system proxy follows route.direct and system-proxy.mode, which change no property
       * of the agent's. */
      g_signal_emit (self, signals[SIGNAL_APPLIED], 0);
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  args = write->key != NULL ? g_variant_new ("(ss)", write->key, write->value)
                            : g_variant_new ("(ss)", write->value, write->password);
  /* polkit may ask for a password (the system service): the call lets it, and the window
   * stays responsive meanwhile. */
  g_dbus_proxy_call (G_DBUS_PROXY (self->agent),
                     write->key != NULL ? "SetSetting" : "SetCredentials", args,
                     G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION, PH_APPLY_TIMEOUT_MS,
                     self->cancellable, write_done, task);
}

void
ph_settings_window_apply (PhSettingsWindow *self, GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (self, self->cancellable, callback, user_data);

  g_task_set_source_tag (task, ph_settings_window_apply);
  if (self->agent == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                               _ ("The Pinhole agent is not running."));
      g_object_unref (task);
      return;
    }
  show_message (self, NULL);
  self->elevating = FALSE;
  g_task_set_task_data (task, collect_writes (self), (GDestroyNotify) writes_free);
  set_waiting (self, TRUE);
  self->waiting_timeout = g_timeout_add (PH_WAITING_DELAY_MS, show_waiting, self);
  send_next (task);
}

gboolean
ph_settings_window_apply_finish (PhSettingsWindow *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
ph_settings_window_is_waiting (PhSettingsWindow *self)
{
  return gtk_widget_get_visible (self->waiting);
}

static void
on_apply (GtkButton *button, PhSettingsWindow *self)
{
  ph_settings_window_apply (self, NULL, NULL);
}

static void
on_close (GtkButton *button, PhSettingsWindow *self)
{
  gtk_widget_destroy (GTK_WIDGET (self));
}

static void
ph_settings_window_dispose (GObject *object)
{
  PhSettingsWindow *self = PH_SETTINGS_WINDOW (object);

  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->waiting_timeout, g_source_remove);
  G_OBJECT_CLASS (ph_settings_window_parent_class)->dispose (object);
}

static void
ph_settings_window_finalize (GObject *object)
{
  PhSettingsWindow *self = PH_SETTINGS_WINDOW (object);

  g_clear_object (&self->cancellable);
  g_clear_object (&self->agent);
  g_hash_table_unref (self->loaded);
  G_OBJECT_CLASS (ph_settings_window_parent_class)->finalize (object);
}

static void
ph_settings_window_class_init (PhSettingsWindowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = ph_settings_window_dispose;
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
  BIND (waiting);
  BIND (waiting_spinner);
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
  self->cancellable = g_cancellable_new ();
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
