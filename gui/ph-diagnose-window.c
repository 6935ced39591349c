/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-diagnose-window.c: the "Diagnose…" window. The agent runs the steps (Diagnose, report
 * version 1, see org.pinhole.Agent1.xml) and writes the verdicts and advice in the user's words;
 * this window only lays them out, one list of steps per cloud proxy, and turns the same report
 * into plain text for the clipboard, which the user sends to whoever runs the network. */
#define G_LOG_DOMAIN "pinhole-tray"

#include "ph-build-config.h"
#include "ph-diagnose-window.h"

#include <glib/gi18n.h>

/* Each step makes up to a few connections with their own timeouts, for every cloud proxy: the
 * agent bounds the whole at about 30 s; the call waits longer than that rather than give up
 * first. */
#define DIAGNOSE_TIMEOUT_MS (120 * 1000)

struct _PhDiagnoseWindow
{
  GtkWindow parent;

  PhAgent1 *agent; /* NULL while there is none */
  GCancellable *cancellable;
  gboolean running;
  GVariant *report;  /* a{sv}, the last one shown */
  GHashTable *steps; /* "N/step" -> its verdict GtkLabel (with "status" and "advice" data) */
  guint n_proxies;
  guint copied_id;
  GtkWidget *first_failed; /* the box of the first cloud proxy with a failed step, if any */

  GtkWidget *url_entry;
  GtkWidget *spinner;
  GtkWidget *run_button;
  GtkWidget *summary;
  GtkWidget *message;
  GtkWidget *scroller;
  GtkWidget *results;
  GtkWidget *copy_button;
  GtkWidget *close_button;
};

G_DEFINE_TYPE (PhDiagnoseWindow, ph_diagnose_window, GTK_TYPE_WINDOW)

/* The steps in the report's order, with their names for people. */
static const struct
{
  const char *step;
  const char *title;
} step_titles[] = {
  /* TRANSLATORS: a step of the diagnosis: the cloud proxy's name is looked up (DNS) */
  { "dns", N_ ("Name lookup") },
  /* TRANSLATORS: a step of the diagnosis: a TCP connection to the cloud proxy */
  { "tcp", N_ ("Connection") },
  /* TRANSLATORS: a step of the diagnosis: the TLS handshake and the check of the proxy's key */
  { "tls", N_ ("Key and encryption") },
  /* TRANSLATORS: a step of the diagnosis: the proxy accepts the user name and password */
  { "auth", N_ ("Sign-in") },
  /* TRANSLATORS: a step of the diagnosis: the web address the user gave, through the tunnel */
  { "target", N_ ("Web address") },
};

static const char *
step_title (const char *step)
{
  for (guint i = 0; i < G_N_ELEMENTS (step_titles); i++)
    if (g_str_equal (step_titles[i].step, step))
      return _ (step_titles[i].title);
  return step;
}

static const char *
status_word (const char *status)
{
  if (g_str_equal (status, "ok"))
    /* TRANSLATORS: a step's result in the copied report */
    return _ ("OK");
  if (g_str_equal (status, "warning"))
    /* TRANSLATORS: a step's result in the copied report: it passed, with a warning */
    return _ ("Warning");
  if (g_str_equal (status, "failed"))
    /* TRANSLATORS: a step's result in the copied report */
    return _ ("Failed");
  /* TRANSLATORS: a step's result in the copied report: not run, as an earlier step failed */
  return _ ("Skipped");
}

/* A symbolic icon takes its widget's colour: green, amber, red, grey, as the themes' own
 * success, warning and error colours (Adwaita's, which GTK 3 names only for some widgets). */
static GtkCssProvider *
status_colours (void)
{
  static GtkCssProvider *provider;

  if (provider == NULL)
    {
      provider = gtk_css_provider_new ();
      gtk_css_provider_load_from_data (provider,
                                       ".ph-ok { color: #26a269; }\n"
                                       ".ph-warning { color: #e5a50a; }\n"
                                       ".ph-failed { color: #c01c28; }\n"
                                       ".ph-skipped { color: alpha(currentColor, 0.55); }\n",
                                       -1, NULL);
    }
  return provider;
}

/* Whether the theme can draw @icon: not only names it (GTK on Windows, without an icon theme,
 * said it had emblem-ok-symbolic and then drew image-missing). */
static gboolean
icon_loads (const char *icon)
{
  int size = 24;
  g_autoptr (GtkIconInfo) info = NULL;
  g_autoptr (GdkPixbuf) pixbuf = NULL;

  gtk_icon_size_lookup (GTK_ICON_SIZE_LARGE_TOOLBAR, &size, NULL);
  info = gtk_icon_theme_lookup_icon (gtk_icon_theme_get_default (), icon, size, 0);
  if (info == NULL)
    return FALSE;
  pixbuf = gtk_icon_info_load_icon (info, NULL);
  return pixbuf != NULL;
}

/* A themed icon for @status, or a plain mark where the theme has none (a bare Windows or X
 * server): marks that Segoe UI and Noto Sans CJK both have (not ✔ or ✖). */
static GtkWidget *
status_image (const char *status)
{
  const char *icon = "action-unavailable-symbolic", *mark = "–", *style = "ph-skipped";
  GtkWidget *widget;
  GtkStyleContext *context;

  if (g_str_equal (status, "ok"))
    icon = "emblem-ok-symbolic", mark = "✓", style = "ph-ok";
  else if (g_str_equal (status, "warning"))
    icon = "dialog-warning-symbolic", mark = "⚠", style = "ph-warning";
  else if (g_str_equal (status, "failed"))
    icon = "dialog-error-symbolic", mark = "×", style = "ph-failed";
  if (icon_loads (icon))
    widget = gtk_image_new_from_icon_name (icon, GTK_ICON_SIZE_LARGE_TOOLBAR);
  else
    widget = gtk_label_new (mark);
  context = gtk_widget_get_style_context (widget);
  gtk_style_context_add_class (context, style);
  gtk_style_context_add_provider (context, GTK_STYLE_PROVIDER (status_colours ()),
                                  GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  gtk_widget_set_valign (widget, GTK_ALIGN_START);
  gtk_widget_set_tooltip_text (widget, status_word (status));
  return widget;
}

/* One value of a step's details, as text: lists joined, times as dates (ISO 8601: the report
 * goes to IT, who may read another locale's dates the other way round). */
static char *
detail_text (const char *key, GVariant *value)
{
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    return g_variant_dup_string (value, NULL);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING_ARRAY))
    {
      g_autofree const char **items = g_variant_get_strv (value, NULL);
      return g_strjoinv (", ", (char **) items);
    }
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
    return g_strdup (g_variant_get_boolean (value) ? _ ("yes") : _ ("no"));
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64) && g_str_equal (key, "not-after"))
    {
      g_autoptr (GDateTime) t = g_date_time_new_from_unix_local (g_variant_get_int64 (value));
      if (t != NULL)
        return g_date_time_format (t, "%Y-%m-%d");
    }
  return g_variant_print (value, FALSE);
}

/* "key: value" lines of @details, each after @indent. */
static void
append_details (GString *out, GVariant *details, const char *indent)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (details == NULL)
    return;
  g_variant_iter_init (&iter, details);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr (GVariant) owned = value;
      g_autofree char *text = detail_text (key, value);
      g_string_append_printf (out, "%s%s: %s\n", indent, key, text);
    }
}

static void
show_message (PhDiagnoseWindow *self, const char *text)
{
  gtk_label_set_text (GTK_LABEL (self->message), text ? text : "");
  gtk_widget_set_visible (self->message, text != NULL);
}

static void
clear_results (PhDiagnoseWindow *self)
{
  g_autoptr (GList) children = gtk_container_get_children (GTK_CONTAINER (self->results));

  for (GList *l = children; l != NULL; l = l->next)
    gtk_widget_destroy (l->data);
  g_hash_table_remove_all (self->steps);
  self->n_proxies = 0;
  self->first_failed = NULL;
}

static GtkWidget *
wrapped_label (const char *text, const char *style)
{
  GtkWidget *label = gtk_label_new (text);

  gtk_label_set_line_wrap (GTK_LABEL (label), TRUE);
  gtk_label_set_line_wrap_mode (GTK_LABEL (label), PANGO_WRAP_WORD_CHAR);
  gtk_label_set_xalign (GTK_LABEL (label), 0);
  gtk_label_set_max_width_chars (GTK_LABEL (label), 60);
  gtk_label_set_selectable (GTK_LABEL (label), TRUE);
  /* Selectable labels take the focus first, with all their text selected: not wanted here. */
  gtk_widget_set_can_focus (label, FALSE);
  if (style != NULL)
    gtk_style_context_add_class (gtk_widget_get_style_context (label), style);
  return label;
}

/* One row of @grid: the icon, the step, the verdict with the advice below it, the time taken. */
static void
add_step (PhDiagnoseWindow *self, GtkWidget *grid, guint proxy, guint row, GVariant *step)
{
  const char *name = "", *status = "skipped", *verdict = "", *advice = "";
  guint32 ms = 0;
  g_autoptr (GVariant) details = NULL;
  g_autoptr (GString) tip = g_string_new (NULL);
  GtkWidget *title, *text, *verdict_label, *advice_label, *time;
  g_autofree char *ms_text = NULL;

  g_variant_lookup (step, "step", "&s", &name);
  g_variant_lookup (step, "status", "&s", &status);
  g_variant_lookup (step, "verdict", "&s", &verdict);
  g_variant_lookup (step, "advice", "&s", &advice);
  g_variant_lookup (step, "ms", "u", &ms);
  details = g_variant_lookup_value (step, "details", G_VARIANT_TYPE_VARDICT);

  title = gtk_label_new (step_title (name));
  gtk_label_set_xalign (GTK_LABEL (title), 0);
  gtk_widget_set_valign (title, GTK_ALIGN_START);
  verdict_label = wrapped_label (verdict, NULL);
  gtk_widget_set_hexpand (verdict_label, TRUE);
  advice_label = wrapped_label (advice, "dim-label");
  gtk_widget_set_no_show_all (advice_label, *advice == '\0');
  text = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  gtk_container_add (GTK_CONTAINER (text), verdict_label);
  gtk_container_add (GTK_CONTAINER (text), advice_label);
  /* The details (addresses, TLS version, the pin seen) for whoever looks closer. */
  append_details (tip, details, "");
  if (tip->len > 0)
    {
      g_string_truncate (tip, tip->len - 1);
      gtk_widget_set_tooltip_text (text, tip->str);
    }
  /* TRANSLATORS: how long a step took, in milliseconds */
  ms_text = g_strdup_printf (_ ("%u ms"), ms);
  /* A step that did not run took no time worth showing. */
  if (g_str_equal (status, "skipped"))
    g_clear_pointer (&ms_text, g_free);
  time = gtk_label_new (ms_text);
  gtk_widget_set_valign (time, GTK_ALIGN_START);
  gtk_style_context_add_class (gtk_widget_get_style_context (time), "dim-label");

  gtk_grid_attach (GTK_GRID (grid), status_image (status), 0, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), title, 1, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), text, 2, row, 1, 1);
  gtk_grid_attach (GTK_GRID (grid), time, 3, row, 1, 1);

  g_object_set_data (G_OBJECT (verdict_label), "status", (gpointer) g_intern_string (status));
  g_object_set_data (G_OBJECT (verdict_label), "advice", advice_label);
  g_hash_table_insert (self->steps, g_strdup_printf ("%u/%s", proxy, name), verdict_label);
}

static gboolean
proxy_failed (GVariant *steps)
{
  const char *status;

  if (steps == NULL)
    return FALSE;
  for (gsize i = 0; i < g_variant_n_children (steps); i++)
    {
      g_autoptr (GVariant) step = g_variant_get_child_value (steps, i);
      if (g_variant_lookup (step, "status", "&s", &status) && g_str_equal (status, "failed"))
        return TRUE;
    }
  return FALSE;
}

/* The list grew (a report came in, its labels wrapped, the window was resized): the first cloud
 * proxy that failed is scrolled into view, the one the user has to act on. */
static void
on_results_changed (GtkAdjustment *adjustment, PhDiagnoseWindow *self)
{
  int y = 0;

  if (self->first_failed == NULL
      || !gtk_widget_translate_coordinates (self->first_failed, self->results, 0, 0, NULL, &y))
    return;
  gtk_adjustment_set_value (adjustment, y);
}

static void
add_proxy (PhDiagnoseWindow *self, GVariant *proxy)
{
  const char *name = "", *server_name = "";
  g_autoptr (GVariant) steps = NULL;
  GtkWidget *box, *heading, *grid;
  g_autofree char *heading_text = NULL;
  GVariantIter iter;
  GVariant *step;
  guint row = 0;

  g_variant_lookup (proxy, "name", "&s", &name);
  g_variant_lookup (proxy, "server-name", "&s", &server_name);
  steps = g_variant_lookup_value (proxy, "steps", G_VARIANT_TYPE ("aa{sv}"));

  box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 8);
  /* TRANSLATORS: heading of one cloud proxy's steps; %s is host:port */
  heading_text = g_strdup_printf (_ ("Cloud proxy %s"), name);
  heading = gtk_label_new (heading_text);
  gtk_label_set_xalign (GTK_LABEL (heading), 0);
  gtk_label_set_selectable (GTK_LABEL (heading), TRUE);
  gtk_widget_set_can_focus (heading, FALSE);
  {
    PangoAttrList *attrs = pango_attr_list_new ();
    pango_attr_list_insert (attrs, pango_attr_weight_new (PANGO_WEIGHT_BOLD));
    gtk_label_set_attributes (GTK_LABEL (heading), attrs);
    pango_attr_list_unref (attrs);
  }
  gtk_container_add (GTK_CONTAINER (box), heading);
  if (*server_name != '\0' && !g_str_has_prefix (name, server_name))
    {
      /* TRANSLATORS: under the cloud proxy's heading: the name its certificate is checked for */
      g_autofree char *sni = g_strdup_printf (_ ("Server name %s"), server_name);
      gtk_container_add (GTK_CONTAINER (box), wrapped_label (sni, "dim-label"));
    }
  grid = gtk_grid_new ();
  gtk_grid_set_row_spacing (GTK_GRID (grid), 10);
  gtk_grid_set_column_spacing (GTK_GRID (grid), 12);
  gtk_widget_set_margin_start (grid, 6);
  gtk_container_add (GTK_CONTAINER (box), grid);
  if (steps != NULL)
    {
      g_variant_iter_init (&iter, steps);
      while ((step = g_variant_iter_next_value (&iter)) != NULL)
        {
          g_autoptr (GVariant) owned = step;
          add_step (self, grid, self->n_proxies, row++, step);
        }
    }
  gtk_container_add (GTK_CONTAINER (self->results), box);
  gtk_widget_show_all (box);
  if (self->first_failed == NULL && proxy_failed (steps))
    self->first_failed = box;
  self->n_proxies++;
}

static void
show_report (PhDiagnoseWindow *self, GVariant *report)
{
  const char *summary = "";
  g_autoptr (GVariant) proxies = NULL;
  guint32 version = 0;
  GVariantIter iter;
  GVariant *proxy;

  clear_results (self);
  g_clear_pointer (&self->report, g_variant_unref);
  self->report = g_variant_ref (report);
  g_variant_lookup (report, "version", "u", &version);
  g_variant_lookup (report, "summary", "&s", &summary);
  gtk_label_set_text (GTK_LABEL (self->summary), summary);
  /* A later version is one that changed more than additions: what is read here may mislead. */
  if (version > 1)
    g_warning ("the agent's diagnosis is version %u; this tray reads version 1", version);
  proxies = g_variant_lookup_value (report, "proxies", G_VARIANT_TYPE ("aa{sv}"));
  if (proxies != NULL)
    {
      g_variant_iter_init (&iter, proxies);
      while ((proxy = g_variant_iter_next_value (&iter)) != NULL)
        {
          g_autoptr (GVariant) owned = proxy;
          add_proxy (self, proxy);
        }
    }
  gtk_widget_set_sensitive (self->copy_button, TRUE);
}

static void
set_running (PhDiagnoseWindow *self, gboolean running)
{
  self->running = running;
  if (running)
    gtk_spinner_start (GTK_SPINNER (self->spinner));
  else
    gtk_spinner_stop (GTK_SPINNER (self->spinner));
  gtk_widget_set_sensitive (self->run_button, !running && self->agent != NULL);
  gtk_widget_set_sensitive (self->url_entry, !running);
}

static gboolean copied_done (gpointer data);

static void
diagnose_done (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (PhDiagnoseWindow) self = data;
  g_autoptr (GError) error = NULL;
  g_autoptr (GVariant) reply = g_dbus_proxy_call_finish (G_DBUS_PROXY (source), result, &error);
  g_autoptr (GVariant) report = NULL;

  /* The window was closed while the agent worked. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  set_running (self, FALSE);
  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (error);
      gtk_label_set_text (GTK_LABEL (self->summary), _ ("The diagnosis could not run."));
      show_message (self, error->message);
      g_message ("diagnosis failed: %s", error->message);
      return;
    }
  report = g_variant_get_child_value (reply, 0);
  show_report (self, report);
  /* For the tray's log: what the window now shows, and where support would look first. */
  g_message ("diagnosis done: %s", gtk_label_get_text (GTK_LABEL (self->summary)));
}

void
ph_diagnose_window_run (PhDiagnoseWindow *self, const char *url)
{
  g_return_if_fail (PH_IS_DIAGNOSE_WINDOW (self));

  if (self->running)
    return;
  if (self->agent == NULL)
    {
      show_message (self, _ ("The Pinhole agent is not running."));
      return;
    }
  if (url == NULL)
    url = "";
  if (g_strcmp0 (gtk_entry_get_text (GTK_ENTRY (self->url_entry)), url) != 0)
    gtk_entry_set_text (GTK_ENTRY (self->url_entry), url);
  show_message (self, NULL);
  clear_results (self);
  g_clear_pointer (&self->report, g_variant_unref);
  gtk_widget_set_sensitive (self->copy_button, FALSE);
  if (self->copied_id != 0)
    {
      g_source_remove (self->copied_id);
      copied_done (self);
    }
  gtk_label_set_text (GTK_LABEL (self->summary),
                      _ ("Checking each cloud proxy; this can take up to half a minute…"));
  set_running (self, TRUE);
  g_dbus_proxy_call (G_DBUS_PROXY (self->agent), "Diagnose", g_variant_new ("(s)", url),
                     G_DBUS_CALL_FLAGS_NONE, DIAGNOSE_TIMEOUT_MS, self->cancellable, diagnose_done,
                     g_object_ref (self));
}

gboolean
ph_diagnose_window_is_running (PhDiagnoseWindow *self)
{
  return self->running;
}

char *
ph_diagnose_window_get_report_text (PhDiagnoseWindow *self)
{
  g_autoptr (GString) out = NULL;
  g_autoptr (GVariant) proxies = NULL;
  const char *summary = "", *url = "";
  guint32 version = 0;
  GVariantIter iter;
  GVariant *proxy;

  if (self->report == NULL)
    return NULL;
  out = g_string_new (NULL);
  g_variant_lookup (self->report, "version", "u", &version);
  g_variant_lookup (self->report, "summary", "&s", &summary);
  g_variant_lookup (self->report, "url", "&s", &url);
  /* TRANSLATORS: first line of the copied report; %s the agent's version, %u the report's */
  g_string_append_printf (out, _ ("Pinhole diagnosis (agent %s, report version %u)"),
                          self->agent && ph_agent1_get_version (self->agent)
                              ? ph_agent1_get_version (self->agent)
                              : "?",
                          version);
  g_string_append_printf (out, "\n%s\n", summary);
  if (*url != '\0')
    /* TRANSLATORS: in the copied report; %s is the URL the user gave */
    g_string_append_printf (out, _ ("Web address: %s\n"), url);
  proxies = g_variant_lookup_value (self->report, "proxies", G_VARIANT_TYPE ("aa{sv}"));
  if (proxies == NULL)
    return g_string_free (g_steal_pointer (&out), FALSE);
  g_variant_iter_init (&iter, proxies);
  while ((proxy = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_autoptr (GVariant) owned = proxy;
      g_autoptr (GVariant) steps
          = g_variant_lookup_value (proxy, "steps", G_VARIANT_TYPE ("aa{sv}"));
      const char *name = "", *server_name = "";
      GVariantIter step_iter;
      GVariant *step;

      g_variant_lookup (proxy, "name", "&s", &name);
      g_variant_lookup (proxy, "server-name", "&s", &server_name);
      g_string_append_c (out, '\n');
      g_string_append_printf (out, _ ("Cloud proxy %s"), name);
      if (*server_name != '\0')
        g_string_append_printf (out, " (%s)", server_name);
      g_string_append_c (out, '\n');
      if (steps == NULL)
        continue;
      g_variant_iter_init (&step_iter, steps);
      while ((step = g_variant_iter_next_value (&step_iter)) != NULL)
        {
          g_autoptr (GVariant) owned_step = step;
          g_autoptr (GVariant) details
              = g_variant_lookup_value (step, "details", G_VARIANT_TYPE_VARDICT);
          const char *sname = "", *status = "skipped", *code = "", *verdict = "", *advice = "";
          guint32 ms = 0;

          g_variant_lookup (step, "step", "&s", &sname);
          g_variant_lookup (step, "status", "&s", &status);
          g_variant_lookup (step, "code", "&s", &code);
          g_variant_lookup (step, "verdict", "&s", &verdict);
          g_variant_lookup (step, "advice", "&s", &advice);
          g_variant_lookup (step, "ms", "u", &ms);
          /* The step's and the code's stable names too, for whoever reads it in English. */
          g_string_append_printf (out, "  [%s] %s (%s: %s, %u ms): %s\n", status_word (status),
                                  step_title (sname), sname, code, ms, verdict);
          if (*advice != '\0')
            g_string_append_printf (out, "      %s\n", advice);
          append_details (out, details, "      ");
        }
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static gboolean
copied_done (gpointer data)
{
  PhDiagnoseWindow *self = data;

  gtk_button_set_label (GTK_BUTTON (self->copy_button), _ ("C_opy Report"));
  self->copied_id = 0;
  return G_SOURCE_REMOVE;
}

static void
on_copy (GtkButton *button, PhDiagnoseWindow *self)
{
  g_autofree char *text = ph_diagnose_window_get_report_text (self);
  GtkClipboard *clipboard;

  if (text == NULL)
    return;
  clipboard = gtk_clipboard_get_for_display (gtk_widget_get_display (GTK_WIDGET (self)),
                                             GDK_SELECTION_CLIPBOARD);
  gtk_clipboard_set_text (clipboard, text, -1);
  /* Kept once the tray quits, where a clipboard manager runs. */
  gtk_clipboard_store (clipboard);
  /* TRANSLATORS: the Copy Report button, for two seconds after it was pressed */
  gtk_button_set_label (GTK_BUTTON (self->copy_button), _ ("Copied"));
  if (self->copied_id != 0)
    g_source_remove (self->copied_id);
  self->copied_id = g_timeout_add_seconds (2, copied_done, self);
}

static void
on_run (GtkButton *button, PhDiagnoseWindow *self)
{
  g_autofree char *url = g_strstrip (g_strdup (gtk_entry_get_text (GTK_ENTRY (self->url_entry))));

  ph_diagnose_window_run (self, url);
}

static void
on_close (GtkButton *button, PhDiagnoseWindow *self)
{
  gtk_widget_destroy (GTK_WIDGET (self));
}

const char *
ph_diagnose_window_get_summary (PhDiagnoseWindow *self)
{
  return gtk_label_get_text (GTK_LABEL (self->summary));
}

guint
ph_diagnose_window_get_n_proxies (PhDiagnoseWindow *self)
{
  return self->n_proxies;
}

const char *
ph_diagnose_window_get_step (PhDiagnoseWindow *self, guint proxy, const char *step,
                             const char **status, const char **advice)
{
  g_autofree char *key = g_strdup_printf ("%u/%s", proxy, step);
  GtkWidget *label = g_hash_table_lookup (self->steps, key);
  GtkWidget *advice_label;

  if (label == NULL)
    return NULL;
  advice_label = g_object_get_data (G_OBJECT (label), "advice");
  if (status != NULL)
    *status = g_object_get_data (G_OBJECT (label), "status");
  if (advice != NULL)
    *advice = gtk_widget_get_visible (advice_label) ? gtk_label_get_text (GTK_LABEL (advice_label))
                                                    : "";
  return gtk_label_get_text (GTK_LABEL (label));
}

const char *
ph_diagnose_window_get_message (PhDiagnoseWindow *self)
{
  return gtk_widget_get_visible (self->message) ? gtk_label_get_text (GTK_LABEL (self->message))
                                                : NULL;
}

void
ph_diagnose_window_set_agent (PhDiagnoseWindow *self, PhAgent1 *agent)
{
  g_return_if_fail (PH_IS_DIAGNOSE_WINDOW (self));

  g_set_object (&self->agent, agent);
  gtk_widget_set_sensitive (self->run_button, !self->running && agent != NULL);
  if (agent == NULL && !self->running)
    show_message (self, _ ("The Pinhole agent is not running."));
  else if (agent != NULL && !self->running && self->report == NULL)
    show_message (self, NULL);
}

static void
ph_diagnose_window_dispose (GObject *object)
{
  PhDiagnoseWindow *self = PH_DIAGNOSE_WINDOW (object);

  g_cancellable_cancel (self->cancellable);
  if (self->copied_id != 0)
    g_source_remove (self->copied_id);
  self->copied_id = 0;
  G_OBJECT_CLASS (ph_diagnose_window_parent_class)->dispose (object);
}

static void
ph_diagnose_window_finalize (GObject *object)
{
  PhDiagnoseWindow *self = PH_DIAGNOSE_WINDOW (object);

  g_clear_object (&self->agent);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->report, g_variant_unref);
  g_hash_table_unref (self->steps);
  G_OBJECT_CLASS (ph_diagnose_window_parent_class)->finalize (object);
}

static void
ph_diagnose_window_class_init (PhDiagnoseWindowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = ph_diagnose_window_dispose;
  G_OBJECT_CLASS (klass)->finalize = ph_diagnose_window_finalize;
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/pinhole/Tray/ph-diagnose-window.ui");
#define BIND(name) gtk_widget_class_bind_template_child (widget_class, PhDiagnoseWindow, name)
  BIND (url_entry);
  BIND (spinner);
  BIND (run_button);
  BIND (summary);
  BIND (message);
  BIND (scroller);
  BIND (results);
  BIND (copy_button);
  BIND (close_button);
#undef BIND
}

static void
ph_diagnose_window_init (PhDiagnoseWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->cancellable = g_cancellable_new ();
  /* The labels live in the grid: the table only finds them. */
  self->steps = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_signal_connect (self->run_button, "clicked", G_CALLBACK (on_run), self);
  g_signal_connect (self->copy_button, "clicked", G_CALLBACK (on_copy), self);
  g_signal_connect (self->close_button, "clicked", G_CALLBACK (on_close), self);
  g_signal_connect (gtk_scrolled_window_get_vadjustment (GTK_SCROLLED_WINDOW (self->scroller)),
                    "changed", G_CALLBACK (on_results_changed), self);
  gtk_widget_grab_default (self->run_button);
  gtk_widget_set_sensitive (self->run_button, FALSE);
}

PhDiagnoseWindow *
ph_diagnose_window_new (GtkApplication *application)
{
  return g_object_new (PH_TYPE_DIAGNOSE_WINDOW, "application", application, NULL);
}
