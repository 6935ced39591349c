/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-doctor.h: the doctor: for each cloud proxy, DNS, TCP, TLS, the proxy's authentication and
 * (given a URL) the target, each step with a verdict in plain words and what to do next. It
 * makes its own connections, outside the agent's pools, and sends no secret anywhere but in
 * the proxy's own request heads (ph_upstream_build_request). */
#pragma once

#include <gio/gio.h>

#include "ph-config.h"

G_BEGIN_DECLS

/* The report's version (Diagnose in org.pinhole.Agent1.xml says what is in it). */
#define PH_DOCTOR_VERSION 1

/* Runs every step against every cloud proxy of @config, the proxies side by side. @url: NULL or
 * "", or an http:// or https:// URL fetched through each proxy as the last step (BAD_REQUEST
 * for anything else, or a URL with a user name or password in it). NOT_CONFIGURED when no
 * cloud proxy is configured. */
void ph_doctor_run_async (PhConfig *config, const char *url, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data);
/* The report, an a{sv} (floating reference sunk: the caller owns it). */
GVariant *ph_doctor_run_finish (GAsyncResult *result, GError **error);

G_END_DECLS
