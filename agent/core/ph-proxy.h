/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-proxy.h: one cloud proxy of upstream.host and what is known of it: its name, its TLS
 * context (its own server name and session cache), its health with the backoff of its next
 * probe, and the addresses its name resolved to. ph-upstream owns one per entry and decides
 * what follows from a change; this file only keeps the state. */
#pragma once

#include <gio/gio.h>

#include "ph-config.h"
#include "ph-tls.h"

G_BEGIN_DECLS

typedef enum
{
  PH_PROXY_UNKNOWN, /* not tried yet (or since the network changed) */
  PH_PROXY_UP,      /* its last connection was made and verified */
  PH_PROXY_DOWN,    /* TCP, TLS or a timeout failed: skipped, probed in the background */
  PH_PROXY_REFUSED, /* it answered but was refused (pin, certificate): a configuration problem */
} PhProxyHealth;

typedef struct _PhProxy PhProxy;

/* Called after the health changed (@was is the one before) or the addresses did (@was is the
 * health now). */
typedef void (*PhProxyChanged) (PhProxy *proxy, PhProxyHealth was, gpointer user_data);

/* Entry @index of @config's upstream.host. One owner: new and free. */
PhProxy *ph_proxy_new (PhConfig *config, guint index, PhProxyChanged changed, gpointer user_data,
                       GError **error);
void ph_proxy_free (PhProxy *proxy);

guint ph_proxy_get_index (const PhProxy *proxy);
/* "host:port" ("[v6]:port"), for messages. */
const char *ph_proxy_get_name (const PhProxy *proxy);
const char *ph_proxy_get_host (const PhProxy *proxy);
guint ph_proxy_get_port (const PhProxy *proxy);
PhTlsContext *ph_proxy_get_tls (const PhProxy *proxy);
/* Its HTTP/2 sessions (PhH2Session, ph-h2.h; as many as [upstream] h2-connections allows,
 * which ph-upstream keeps to): @free_func lets go of one when it is removed or the proxy
 * forgets them all. */
guint ph_proxy_get_n_h2 (const PhProxy *proxy);
gpointer ph_proxy_get_h2 (const PhProxy *proxy, guint i);
void ph_proxy_add_h2 (PhProxy *proxy, gpointer session, GDestroyNotify free_func);
/* Removes @session (freed with its function); FALSE when it is not one of them. */
gboolean ph_proxy_remove_h2 (PhProxy *proxy, gpointer session);
void ph_proxy_clear_h2 (PhProxy *proxy);
/* What it answered when offered h2 by ALPN (its TLS context has the list "h2","http/1.1" when
 * [upstream] http2 is not off and libnghttp2 is built in). Forgotten when the network changes. */
typedef enum
{
  PH_PROXY_H2_UNKNOWN, /* not asked yet: the next connection of any kind offers it */
  PH_PROXY_H2_YES,     /* it chose h2: only the connections meant for tunnels offer it */
  PH_PROXY_H2_NO,      /* HTTP/1.1 (stunnel, Squid's own TLS): tunnels go as without HTTP/2 */
} PhProxyH2;
PhProxyH2 ph_proxy_get_h2_state (const PhProxy *proxy);
void ph_proxy_set_h2_state (PhProxy *proxy, PhProxyH2 state);

PhProxyHealth ph_proxy_get_health (const PhProxy *proxy);
/* Whether new connections may go to it: up, or not tried yet. */
gboolean ph_proxy_is_usable (const PhProxy *proxy);
/* Its last failure; NULL while up or untried. */
const GError *ph_proxy_get_error (const PhProxy *proxy);
/* While down or refused: when its background probe is due (g_get_monotonic_time); else 0. */
gint64 ph_proxy_get_retry_at (const PhProxy *proxy);
/* Sets its health (and @error, NULL when up). Down or refused schedules the next probe: 1 s
 * after the first failure, doubling to 60 s while it fails; a failure while a probe is already
 * scheduled (a request's own last-resort attempt) does not push that back. */
void ph_proxy_set_health (PhProxy *proxy, PhProxyHealth health, const GError *error);
/* Forgets its health and backoff and cancels what runs on its behalf (the network changed). */
void ph_proxy_forget (PhProxy *proxy);

/* Looks its name up (for what is shown: a connection resolves it each time itself). */
void ph_proxy_resolve (PhProxy *proxy);
/* What the last lookup gave; NULL before one. */
const char *const *ph_proxy_get_addresses (const PhProxy *proxy);
/* Cancelled by ph_proxy_forget and ph_proxy_free: for work done on its behalf (its probe). */
GCancellable *ph_proxy_get_cancellable (const PhProxy *proxy);

G_END_DECLS
