/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-network-watch.c: what both platforms share: the burst filter between the raw events of
 * ph-network-watch-unix.c / -win32.c and the agent's callback. */
#define G_LOG_DOMAIN "pinhole-platform"

#include "ph-network-watch-private.h"

/* A route change (a Wi-Fi roam, a VPN coming up) brings a burst of events within tens of
 * milliseconds, and GNetworkMonitor adds one more up to a second later. The first event of a
 * quiet period is told at once: the route may be back a moment later, and a request then must
 * not find the pool still full of connections from before (measured in tests/bench/
 * bench-netchange.sh: with the call at the end of the window instead, a route back 200 ms after
 * it went cost the first request its whole timeout, every time). What comes in the BURST_MS
 * after a call is told once, at the end of that window, so a steady stream gives a call every
 * BURST_MS at most. */
#define BURST_MS 300

struct _PhNetworkWatch
{
  PhNetworkWatchFunc func;
  gpointer user_data;
  PhNetworkSources *sources;
  GSource *window;  /* open for BURST_MS after each call */
  gboolean pending; /* events came while it was open */
  PhNetworkEvent event;
  char *detail; /* of the first event of @event's kind in the window */
  guint n_more; /* the other events in the window */
};

const char *
ph_network_event_to_string (PhNetworkEvent event)
{
  return event == PH_NETWORK_RESUMED ? "resumed" : "network-changed";
}

static gboolean window_done (gpointer data);

static void
call (PhNetworkWatch *watch, PhNetworkEvent event, const char *detail)
{
  watch->window = g_timeout_source_new (BURST_MS);
  g_source_set_callback (watch->window, window_done, watch, NULL);
  g_source_attach (watch->window, g_main_context_get_thread_default ());
  watch->func (event, detail, watch->user_data);
}

static gboolean
window_done (gpointer data)
{
  PhNetworkWatch *watch = data;
  g_autofree char *detail = g_steal_pointer (&watch->detail);

  g_clear_pointer (&watch->window, g_source_unref);
  if (!watch->pending)
    return G_SOURCE_REMOVE;
  watch->pending = FALSE;
  if (watch->n_more > 0)
    {
      char *longer = g_strdup_printf ("%s, and %u more", detail, watch->n_more);
      g_free (detail);
      detail = longer;
    }
  watch->n_more = 0;
  call (watch, watch->event, detail);
  return G_SOURCE_REMOVE;
}

void
ph_network_watch_report (PhNetworkWatch *watch, PhNetworkEvent event, const char *detail)
{
  g_debug ("network event: %s (%s)", ph_network_event_to_string (event), detail);
  if (watch->window == NULL)
    {
      call (watch, event, detail);
      return;
    }
  if (!watch->pending)
    {
      watch->pending = TRUE;
      watch->event = event;
      watch->detail = g_strdup (detail);
      return;
    }
  if (event == PH_NETWORK_RESUMED && watch->event != PH_NETWORK_RESUMED)
    {
      /* Waking up is the stronger news: it is the one to tell. */
      watch->event = event;
      g_free (watch->detail);
      watch->detail = g_strdup (detail);
    }
  watch->n_more++;
}

PhNetworkWatch *
ph_network_watch_new (PhNetworkWatchFunc func, gpointer user_data)
{
  PhNetworkWatch *watch = g_new0 (PhNetworkWatch, 1);

  watch->func = func;
  watch->user_data = user_data;
  watch->sources = ph_network_sources_new (watch);
  return watch;
}

void
ph_network_watch_free (PhNetworkWatch *watch)
{
  if (watch == NULL)
    return;
  ph_network_sources_free (watch->sources);
  if (watch->window != NULL)
    g_source_destroy (watch->window);
  g_clear_pointer (&watch->window, g_source_unref);
  g_free (watch->detail);
  g_free (watch);
}
