/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ktls.h: whether kernel TLS can carry the connection to the cloud
 * proxy ([upstream] ktls): GnuTLS's build and configuration, the kernel. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* NULL when GnuTLS will hand a connection's keys to the kernel (for the
 * ciphers the kernel has); otherwise every reason it will not, joined by
 * "; ". Looked up once per process. */
const char *ph_ktls_get_unavailable_reason (void);

G_END_DECLS
