/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-connections-window.c: the "Connections…" window. The agent describes its open connections
 * only when asked (GetConnections), so the window asks once a second while it is mapped, one
 * call at a time, and the timer is gone as soon as it is unmapped: a closed or hidden window
 * costs the agent nothing. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-build-config.h"
#include "ph-connections-window.h"

#include <glib/gi18n.h>

enum
{
  COL_CLIENT,
  COL_TARGET,
  COL_ROUTE,
  COL_PROXY,
  COL_UP,
  COL_DOWN,
  COL_AGE,
  COL_AGE_SECONDS,
  COL_TOOLTIP,
};

struct _PhConnectionsWindow
{
  GtkWindow parent;

  PhAgent1 *agent;           /* NULL while there is none */
  GCancellable *cancellable; /* of the call in flight; NULL when none */
  guint refresh_id;          /* the once-a-second timer, only while mapped */
  guint n_refreshes;
  guint n_shown; /* rows at the last refresh */

  GtkListStore *store;
  GtkWidget *view;
  GtkWidget *summary;
  GtkWidget *close_button;
};

G_DEFINE_TYPE (PhConnectionsWindow, ph_connections_window, GTK_TYPE_WINDOW)

static const char *
dict_string (GVariant *dict, const char *key)
{
  const char *value = NULL;

  return g_variant_lookup (dict, key, "&s", &value) ? value : "";
}

static guint64
dict_uint64 (GVariant *dict, const char *key)
{
  guint64 value = 0;

  return g_variant_lookup (dict, key, "t", &value) ? value : 0;
}

/* The route's name for people; the agent's word where it has no translation. */
static const char *
route_label (const char *route)
{
  if (g_str_equal (route, "proxy"))
    /* TRANSLATORS: Connections window, Route column: carried by a cloud proxy */
    return C_ ("route", "Tunnel");
  if (g_str_equal (route, "direct"))
    /* TRANSLATORS: Connections window, Route column: not through the tunnel (direct list) */
    return C_ ("route", "Direct");
  if (g_str_equal (route, "block"))
    /* TRANSLATORS: Connections window, Route column: refused by the block list */
    return C_ ("route", "Blocked");
  if (*route == '\0')
    return "…";
  return route;
}

static char *
format_age (guint64 seconds)
{
  return g_strdup_printf ("%" G_GUINT64_FORMAT ":%02u:%02u", seconds / 3600,
                          (guint) (seconds / 60 % 60), (guint) (seconds % 60));
}

static void
show_summary (PhConnectionsWindow *self, const char *text)
{
  gtk_label_set_text (GTK_LABEL (self->summary), text);
}

static void
fill (PhConnectionsWindow *self, GVariant *conns)
{
  GVariantIter iter;
  GVariant *conn;
  guint n = 0;
  g_autofree char *summary = NULL;

  gtk_list_store_clear (self->store);
  g_variant_iter_init (&iter, conns);
  while ((conn = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *target = dict_string (conn, "target");
      const char *proxy = dict_string (conn, "proxy");
      const char *name = dict_string (conn, "name");
      g_autofree char *up = g_format_size (dict_uint64 (conn, "bytes-up"));
      g_autofree char *down = g_format_size (dict_uint64 (conn, "bytes-down"));
      g_autofree char *age = format_age (dict_uint64 (conn, "age-seconds"));
      /* TRANSLATORS: tooltip of a row of the Connections window: how the client spoke to the
       * agent (http, socks5, socks4, transparent) and what the connection does now */
      g_autofree char *tooltip = g_strdup_printf (_ ("%s, %s"), dict_string (conn, "proto"),
                                                  dict_string (conn, "state"));
      g_autofree char *shown_target = NULL;

      /* A transparent client: the name learned from its first bytes, beside its address. */
      if (*name != '\0' && g_strcmp0 (name, target) != 0 && !g_str_has_prefix (target, name))
        shown_target = g_strdup_printf ("%s (%s)", target, name);
      gtk_list_store_insert_with_values (
          self->store, NULL, -1, COL_CLIENT, dict_string (conn, "client"), COL_TARGET,
          shown_target ? shown_target : (*target != '\0' ? target : "…"), COL_ROUTE,
          route_label (dict_string (conn, "route")), COL_PROXY, *proxy != '\0' ? proxy : "–",
          COL_UP, up, COL_DOWN, down, COL_AGE, age, COL_AGE_SECONDS,
          dict_uint64 (conn, "age-seconds"), COL_TOOLTIP, tooltip, -1);
      g_variant_unref (conn);
      n++;
    }
  if (n == 0)
    summary = g_strdup (_ ("No connection is open through Pinhole now."));
  else
    /* TRANSLATORS: above the list of the Connections window */
    summary = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                            "%u connection open, refreshed every second.",
                                            "%u connections open, refreshed every second.", n),
                               n);
  show_summary (self, summary);
  /* Once per change of the count, so that a log shows what the window showed. */
  if (n != self->n_shown || self->n_refreshes == 0)
    g_debug ("connections window: %u open", n);
  self->n_shown = n;
  self->n_refreshes++;
}

static void
got_connections (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) conns = NULL;
  PhConnectionsWindow *self;

  if (!ph_agent1_call_get_connections_finish (PH_AGENT1 (source), &conns, result, &error)
      && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self = PH_CONNECTIONS_WINDOW (data);
  g_clear_object (&self->cancellable);
  if (conns != NULL)
    fill (self, conns);
  else
    {
      g_autofree char *text = NULL;

      g_dbus_error_strip_remote_error (error);
      /* TRANSLATORS: the Connections window could not ask the agent; %s says why */
      text = g_strdup_printf (_ ("The agent did not answer: %s"), error->message);
      gtk_list_store_clear (self->store);
      show_summary (self, text);
    }
}

static gboolean
refresh (gpointer data)
{
  PhConnectionsWindow *self = data;

  /* One call at a time: a slow agent is not asked again before it answers. */
  if (self->agent == NULL || self->cancellable != NULL)
    return G_SOURCE_CONTINUE;
  self->cancellable = g_cancellable_new ();
  ph_agent1_call_get_connections (self->agent, self->cancellable, got_connections, self);
  return G_SOURCE_CONTINUE;
}

static void
cancel_call (PhConnectionsWindow *self)
{
  if (self->cancellable != NULL)
    {
      g_cancellable_cancel (self->cancellable);
      g_clear_object (&self->cancellable);
    }
}

static void
on_map (GtkWidget *widget, gpointer data)
{
  PhConnectionsWindow *self = PH_CONNECTIONS_WINDOW (widget);

  if (self->refresh_id == 0)
    self->refresh_id = g_timeout_add_seconds (1, refresh, self);
  refresh (self);
}

static void
on_unmap (GtkWidget *widget, gpointer data)
{
  PhConnectionsWindow *self = PH_CONNECTIONS_WINDOW (widget);

  g_clear_handle_id (&self->refresh_id, g_source_remove);
  cancel_call (self);
}

static void
on_close (GtkButton *button, PhConnectionsWindow *self)
{
  gtk_widget_destroy (GTK_WIDGET (self));
}

void
ph_connections_window_set_agent (PhConnectionsWindow *self, PhAgent1 *agent)
{
  g_return_if_fail (PH_IS_CONNECTIONS_WINDOW (self));

  if (self->agent == agent)
    return;
  cancel_call (self);
  g_set_object (&self->agent, agent);
  if (agent == NULL)
    {
      gtk_list_store_clear (self->store);
      show_summary (self, _ ("The Pinhole agent is not running."));
    }
  else if (self->refresh_id != 0)
    refresh (self);
}

guint
ph_connections_window_get_n_rows (PhConnectionsWindow *self)
{
  return (guint) gtk_tree_model_iter_n_children (GTK_TREE_MODEL (self->store), NULL);
}

char *
ph_connections_window_dup_cell (PhConnectionsWindow *self, guint row, guint column)
{
  GtkTreeIter iter;
  char *text = NULL;

  g_return_val_if_fail (column <= COL_AGE, NULL);
  if (!gtk_tree_model_iter_nth_child (GTK_TREE_MODEL (self->store), &iter, NULL, (gint) row))
    return NULL;
  gtk_tree_model_get (GTK_TREE_MODEL (self->store), &iter, column, &text, -1);
  return text;
}

const char *
ph_connections_window_get_summary (PhConnectionsWindow *self)
{
  return gtk_label_get_text (GTK_LABEL (self->summary));
}

gboolean
ph_connections_window_is_refreshing (PhConnectionsWindow *self)
{
  return self->refresh_id != 0;
}

guint
ph_connections_window_get_n_refreshes (PhConnectionsWindow *self)
{
  return self->n_refreshes;
}

static void
ph_connections_window_dispose (GObject *object)
{
  PhConnectionsWindow *self = PH_CONNECTIONS_WINDOW (object);

  g_clear_handle_id (&self->refresh_id, g_source_remove);
  cancel_call (self);
  g_clear_object (&self->agent);
  G_OBJECT_CLASS (ph_connections_window_parent_class)->dispose (object);
}

static void
ph_connections_window_class_init (PhConnectionsWindowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = ph_connections_window_dispose;
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/pinhole/Tray/ph-connections-window.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, PhConnectionsWindow, name)
  BIND (store);
  BIND (view);
  BIND (summary);
  BIND (close_button);
#undef BIND
}

static void
ph_connections_window_init (PhConnectionsWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  /* The oldest first, as pinholectl connections lists them; a click on a heading re-sorts. */
  gtk_tree_sortable_set_sort_column_id (GTK_TREE_SORTABLE (self->store), COL_AGE_SECONDS,
                                        GTK_SORT_DESCENDING);
  g_signal_connect (self, "map", G_CALLBACK (on_map), NULL);
  g_signal_connect (self, "unmap", G_CALLBACK (on_unmap), NULL);
  g_signal_connect (self->close_button, "clicked", G_CALLBACK (on_close), self);
  show_summary (self, _ ("The Pinhole agent is not running."));
}

PhConnectionsWindow *
ph_connections_window_new (GtkApplication *application)
{
  return g_object_new (PH_TYPE_CONNECTIONS_WINDOW, "application", application, NULL);
}
