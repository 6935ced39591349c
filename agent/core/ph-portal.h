/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-portal.h: the captive-portal check: one direct HTTP/1.1 GET of [route] portal-check (a URL
 * that answers 204 on an open network), and what its answer says about the network. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum
{
  PH_PORTAL_NONE,    /* the check URL answered 204: no portal in the way */
  PH_PORTAL_FOUND,   /* a redirect or a page: a portal; *portal_url is where to sign in */
  PH_PORTAL_UNKNOWN, /* no usable answer (no network, a timeout, another status): see @error */
} PhPortalResult;

/* Asks @check_url (http:// only) directly, never through a proxy, within @timeout_ms. */
void ph_portal_check_async (const char *check_url, guint timeout_ms, GCancellable *cancellable,
                            GAsyncReadyCallback callback, gpointer user_data);
/* FOUND: *@portal_url (owned) is the redirect's Location resolved against the check URL, or the
 * check URL itself for a 200 page. UNKNOWN: @error says why, unless cancelled. */
PhPortalResult ph_portal_check_finish (GAsyncResult *result, char **portal_url, GError **error);

G_END_DECLS
