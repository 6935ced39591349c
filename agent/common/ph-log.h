/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-log.h: the agent's single log writer (level filter, redaction of
 * secrets) and the access-log line. */
#pragma once

#include <glib.h>
#include <stdio.h>

G_BEGIN_DECLS

typedef enum
{
  PH_LOG_LEVEL_ERROR,
  PH_LOG_LEVEL_WARNING,
  PH_LOG_LEVEL_INFO,
  PH_LOG_LEVEL_DEBUG,
} PhLogLevel;

void ph_log_init (void);
/* Also hands every line that passes the level filter, redacted, to @sink (the Windows Event
 * Log): @domain is the short domain ("main", "access", ...). Called under the log lock. */
/* Lines go to @stream instead of stderr (NULL: stderr again); the caller keeps it open. */
void ph_log_set_stream (FILE *stream);
typedef void (*PhLogSink) (GLogLevelFlags flags, const char *domain, const char *message);
void ph_log_set_sink (PhLogSink sink);
void ph_log_set_level (PhLogLevel level);
gboolean ph_log_level_from_string (const char *str, PhLogLevel *level);

/* Every registered secret (and anything after "Basic ") is replaced by
 * "[redacted]" in every line written, whatever code produced the line. */
void ph_log_add_secret (const char *secret);

/* One connection's (or request's) access line. @route is "proxy", "direct" or "block" (NULL:
 * none was decided), @error_kind NULL when it went well, @proto "socks5", "socks4" or
 * "transparent" (the line then says proto=), NULL for HTTP. A transparent connection's line
 * also has @name (the name it was going to, NULL: none learned), @learned (how: "sni", "host"
 * or "ip") and @original (the address it was going to, "ip:port"). @upstream_proto "h2" when the
 * request went as a stream of the cloud proxy's HTTP/2 connection (the line says upstream=h2),
 * NULL for HTTP/1.1. */
void ph_log_access (const char *client, const char *method, const char *target, guint status,
                    guint64 up, guint64 down, gint64 duration_us, const char *route,
                    const char *error_kind, const char *proto, const char *name,
                    const char *learned, const char *original, const char *upstream_proto);

G_END_DECLS
