/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-wipe.h: clearing memory that held a secret, in a way the compiler must
 * keep although the memory is freed next (explicit_bzero is not portable). */
#pragma once

#include <glib.h>

static inline void
ph_wipe (void *buf, gsize len)
{
  volatile guint8 *p = buf;

  while (len-- > 0)
    *p++ = 0;
}
