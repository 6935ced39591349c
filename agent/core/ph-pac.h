/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-pac.h: the proxy auto-config file the listener serves at /proxy.pac and /wpad.dat, made
 * from the same direct list the router reads, so that a browser set to it and the agent agree
 * on every target (tests/cloud/test-pac.py checks that with real PAC engines). */
#pragma once

#include "ph-config.h"

G_BEGIN_DECLS

/* The PAC's media type. */
#define PH_PAC_CONTENT_TYPE "application/x-ns-proxy-autoconfig"

/* FindProxyForURL for @config's direct list: "DIRECT" for its targets, "PROXY @proxy" (the
 * agent's "host:port" as the client reached it, "[v6]:port" for IPv6) for every other one,
 * blocked names included, since the agent refuses those itself. */
char *ph_pac_build (const PhConfig *config, const char *proxy);

G_END_DECLS
