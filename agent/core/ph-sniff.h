/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-sniff.h: the name a client was going to, read from the first bytes it
 * sent without changing them: a TLS ClientHello's server_name (SNI), or an
 * HTTP/1.x request head's Host. Pure functions over byte buffers: no I/O. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The most bytes ever looked at: a ClientHello over several records, or a
 * request head, that does not end within them has no name. */
#define PH_SNIFF_MAX_BYTES (16 * 1024)

typedef enum
{
  PH_SNIFF_NEED_MORE, /* a TLS record or an HTTP head is not complete yet */
  PH_SNIFF_DONE,      /* *kind says what was found */
} PhSniffResult;

/* How the name was learned. */
typedef enum
{
  PH_SNIFF_NONE, /* no name: TLS without SNI, another protocol, garbage, too long */
  PH_SNIFF_SNI,  /* a TLS ClientHello's server_name (host_name type) */
  PH_SNIFF_HOST, /* an HTTP/1.x request's target or Host field */
} PhSniffKind;

/* Looks at the first @len bytes a client sent (all of them so far, from the
 * first; the caller keeps them and calls again with more after NEED_MORE).
 * DONE: *@kind is set, and for SNI and HOST *@name is the name, lower-case,
 * without a port, a trailing dot or an IPv6 literal's brackets (free it);
 * for NONE *@name is NULL. NEED_MORE is never returned once @len reaches
 * PH_SNIFF_MAX_BYTES. Reads at most PH_SNIFF_MAX_BYTES of @data. */
PhSniffResult ph_sniff (const guint8 *data, gsize len, char **name, PhSniffKind *kind);

/* "sni", "host" or "none", for logs and access lines. */
const char *ph_sniff_kind_to_string (PhSniffKind kind);

G_END_DECLS
