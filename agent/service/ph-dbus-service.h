/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-dbus-service.h: the one adapter between the daemon and
 * org.pinhole.Agent1: the generated skeleton, the daemon's state mirrored
 * into its properties, and who may call what. */
#pragma once

#include "ph-agent1-generated.h"
#include "ph-daemon.h"
#include "ph-dbus-auth.h"
#include "ph-names.h"

G_BEGIN_DECLS

#define PH_TYPE_DBUS_SERVICE (ph_dbus_service_get_type ())
G_DECLARE_FINAL_TYPE (PhDBusService, ph_dbus_service, PH, DBUS_SERVICE, PhAgent1Skeleton)

PhDBusService *ph_dbus_service_new (PhDaemon *daemon, PhAuthMode auth);

G_END_DECLS
