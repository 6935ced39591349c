/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-network-watch-private.h: between ph-network-watch.c (the burst filter both platforms share)
 * and its per-platform half (ph-network-watch-unix.c, ph-network-watch-win32.c), which reports
 * each raw event in the watch's main context. */
#pragma once

#include "ph-network-watch.h"

G_BEGIN_DECLS

typedef struct _PhNetworkSources PhNetworkSources;

/* The platform half: starts its sources for @watch, stops them (no report after it returns). */
PhNetworkSources *ph_network_sources_new (PhNetworkWatch *watch);
void ph_network_sources_free (PhNetworkSources *sources);

/* One raw event, in the watch's main context. */
void ph_network_watch_report (PhNetworkWatch *watch, PhNetworkEvent event, const char *detail);

G_END_DECLS
