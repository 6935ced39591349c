/* ph-service.h: telling the service manager how the agent is doing:
 * systemd's notify protocol on Linux (the SCM on Windows, later). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Setup succeeded: listeners and the control interface are up. */
void ph_service_notify_ready (void);
void ph_service_notify_reloading (void);
void ph_service_notify_stopping (void);
/* A one-line status shown by "systemctl status". */
void ph_service_notify_status (const char *status);
/* Whether a caller with Unix user id @uid (as the bus reports it) is this
 * process's own user or root. */
gboolean ph_service_uid_is_self_or_root (guint32 uid);
/* The directory the service manager made for state, or NULL. */
const char *ph_service_get_state_directory (void);

G_END_DECLS
