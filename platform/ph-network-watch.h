/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-network-watch.h: tells the agent that the network changed under it (an interface, an
 * address or a route) or that the machine woke from sleep, so it can drop pooled connections
 * that may be dead. One file per platform: ph-network-watch-unix.c (GNetworkMonitor, logind),
 * ph-network-watch-win32.c (IP Helper notifications, power notifications). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  PH_NETWORK_CHANGED, /* an interface, an address or a route changed */
  PH_NETWORK_RESUMED, /* the machine woke from sleep (wins over CHANGED in one burst) */
} PhNetworkEvent;

/* Called in the main context the watch was made in: at once for the first event after a quiet
 * time, then at most once more per 300 ms for the rest of a burst (a route change brings several
 * events within milliseconds). @detail is a short text for the log. It must not free the watch. */
typedef void (*PhNetworkWatchFunc) (PhNetworkEvent event, const char *detail, gpointer user_data);

typedef struct _PhNetworkWatch PhNetworkWatch;

/* Starts watching; a source that is not there (no system bus, no logind) is left out with a
 * debug line. Never fails. */
PhNetworkWatch *ph_network_watch_new (PhNetworkWatchFunc func, gpointer user_data);
void ph_network_watch_free (PhNetworkWatch *watch);

const char *ph_network_event_to_string (PhNetworkEvent event);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhNetworkWatch, ph_network_watch_free)

G_END_DECLS
