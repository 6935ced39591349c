/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-exit.h: pinholectl's exit codes, which scripts rely on, in one place (keep them in step
 * with --help, in ph-ctl-main.c), and its own errors as opposed to the agent's.
 *
 *   0  success
 *   1  the agent reported a failure not listed below, or the user declined to trust a key
 *   2  usage error (unknown command, missing or extra argument, no terminal to ask on)
 *   3  agent not reachable (nobody owns org.pinhole.Agent, bus not available)
 *   4  permission denied (PermissionDenied, D-Bus AccessDenied, polkit)
 *   5  locked by the administrator (Locked)
 *   6  invalid setting or unknown key (InvalidSetting, InvalidConfig)
 *   7  the cloud proxy could not be reached or verified
 *      (PinMismatch, UpstreamTls, CertUntrusted, UpstreamUnreachable, Timeout)
 *   8  not configured (NotConfigured) or no credentials (NoCredentials)
 *
 * doctor: 0 when the report is ok; else by the first step that failed (proxies in order): dns,
 * tcp, tls 7 (as UpstreamUnreachable, Timeout, PinMismatch); auth no-credentials 8 (as
 * NoCredentials); auth rejected 1 (as AuthRejected), and the other auth and target failures 1.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  PH_CTL_EXIT_OK = 0,
  PH_CTL_EXIT_FAILED = 1,
  PH_CTL_EXIT_USAGE = 2,
  PH_CTL_EXIT_UNREACHABLE = 3,
  PH_CTL_EXIT_PERMISSION = 4,
  PH_CTL_EXIT_LOCKED = 5,
  PH_CTL_EXIT_INVALID = 6,
  PH_CTL_EXIT_UPSTREAM = 7,
  PH_CTL_EXIT_NOT_CONFIGURED = 8,
} PhCtlExit;

#define PH_CTL_ERROR (ph_ctl_error_quark ())

/* Failures of pinholectl itself, as opposed to the agent's. */
typedef enum
{
  PH_CTL_ERROR_FAILED,
  PH_CTL_ERROR_USAGE,
} PhCtlError;

GQuark ph_ctl_error_quark (void);

/* The exit status for @error, which ph_client_error_convert has seen if it came from the
 * agent. */
PhCtlExit ph_ctl_exit_for_error (const GError *error);
/* The exit status for Diagnose's @report (a{sv}, version 1). */
PhCtlExit ph_ctl_exit_for_diagnosis (GVariant *report);

G_END_DECLS
