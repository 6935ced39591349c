/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-network-watch.c: the network watch's burst filter (platform/ph-network-watch.c): the first
 * event of a quiet time is told at once, the rest of a burst once at the end of its window, and a
 * wake-up wins over a network change. Raw events are fed in through the private header; the
 * platform's own sources run too, with no system bus to find. */
#include "ph-network-watch-private.h"

#include <gio/gio.h>
#include <string.h>

typedef struct
{
  GPtrArray *calls; /* "EVENT: DETAIL" */
} Fixture;

static void
on_event (PhNetworkEvent event, const char *detail, gpointer data)
{
  Fixture *f = data;

  g_ptr_array_add (f->calls,
                   g_strdup_printf ("%s: %s", ph_network_event_to_string (event), detail));
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
run_for (guint ms)
{
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  g_timeout_add (ms, quit_cb, loop);
  g_main_loop_run (loop);
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  f->calls = g_ptr_array_new_with_free_func (g_free);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_ptr_array_unref (f->calls);
}

/* Events of the watch's own sources (a real network change during the test) would add calls:
 * only ours are counted, by their text. */
static guint
count_ours (Fixture *f)
{
  guint n = 0;

  for (guint i = 0; i < f->calls->len; i++)
    n += strstr (g_ptr_array_index (f->calls, i), "test-") != NULL;
  return n;
}

static const char *
last_call (Fixture *f)
{
  g_assert_cmpuint (f->calls->len, >, 0);
  return g_ptr_array_index (f->calls, f->calls->len - 1);
}

static void
test_burst (Fixture *f, gconstpointer data)
{
  g_autoptr (PhNetworkWatch) watch = ph_network_watch_new (on_event, f);

  ph_network_watch_report (watch, PH_NETWORK_CHANGED, "test-first");
  g_assert_cmpuint (count_ours (f), ==, 1);
  g_assert_cmpstr (last_call (f), ==, "network-changed: test-first");

  /* The rest of the burst: told once, when the window closes. */
  ph_network_watch_report (watch, PH_NETWORK_CHANGED, "test-second");
  ph_network_watch_report (watch, PH_NETWORK_CHANGED, "test-third");
  g_assert_cmpuint (count_ours (f), ==, 1);
  run_for (450);
  g_assert_cmpuint (count_ours (f), ==, 2);
  g_assert_cmpstr (last_call (f), ==, "network-changed: test-second, and 1 more");

  /* Quiet for a window: the next event is told at once again. */
  run_for (450);
  g_assert_cmpuint (count_ours (f), ==, 2);
  ph_network_watch_report (watch, PH_NETWORK_CHANGED, "test-later");
  g_assert_cmpuint (count_ours (f), ==, 3);
  g_assert_cmpstr (last_call (f), ==, "network-changed: test-later");
}

static void
test_resume_wins (Fixture *f, gconstpointer data)
{
  g_autoptr (PhNetworkWatch) watch = ph_network_watch_new (on_event, f);

  ph_network_watch_report (watch, PH_NETWORK_RESUMED, "test-woke");
  g_assert_cmpstr (last_call (f), ==, "resumed: test-woke");
  ph_network_watch_report (watch, PH_NETWORK_CHANGED, "test-route");
  ph_network_watch_report (watch, PH_NETWORK_RESUMED, "test-woke-again");
  ph_network_watch_report (watch, PH_NETWORK_CHANGED, "test-address");
  run_for (450);
  g_assert_cmpuint (count_ours (f), ==, 2);
  g_assert_cmpstr (last_call (f), ==, "resumed: test-woke-again, and 2 more");
}

/* Freed with a window open and events pending: nothing is told afterwards. */
static void
test_free_pending (Fixture *f, gconstpointer data)
{
  PhNetworkWatch *watch = ph_network_watch_new (on_event, f);

  ph_network_watch_report (watch, PH_NETWORK_CHANGED, "test-one");
  ph_network_watch_report (watch, PH_NETWORK_CHANGED, "test-two");
  ph_network_watch_free (watch);
  run_for (450);
  g_assert_cmpuint (count_ours (f), ==, 1);
}

int
main (int argc, char **argv)
{
  /* No system bus: logind is left out (a debug line), as on a machine without one. */
  g_setenv ("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/pinhole-test-bus", TRUE);
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/pinhole/network-watch/burst", Fixture, NULL, fixture_set_up, test_burst,
              fixture_tear_down);
  g_test_add ("/pinhole/network-watch/resume-wins", Fixture, NULL, fixture_set_up, test_resume_wins,
              fixture_tear_down);
  g_test_add ("/pinhole/network-watch/free-pending", Fixture, NULL, fixture_set_up,
              test_free_pending, fixture_tear_down);
  return g_test_run ();
}
