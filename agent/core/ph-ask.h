/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ask.h: reading a proxy's answer head from a stream; and one request head sent on a stream
 * and the final answer's head read back, within a time limit: what the credential check, the
 * background probe of a proxy and the doctor each ask a cloud proxy. The head may hold a
 * credential: it is wiped once sent. */
#pragma once

#include <gio/gio.h>

#include "ph-http.h"
#include "ph-stream.h"

G_BEGIN_DECLS

typedef enum
{
  PH_ASK_ANSWER_HEAD,      /* a response head: *resp, and *head_len bytes of @in */
  PH_ASK_ANSWER_AGAIN,     /* wait until @stream is readable (ph_stream_wait) */
  PH_ASK_ANSWER_MALFORMED, /* *reason says how */
  PH_ASK_ANSWER_CLOSED,    /* ended or failed before a head; @error says which */
} PhAskAnswer;

/* Reads a proxy's next response head (interim or final) from @stream, gathering its bytes in
 * @in; whatever follows the head stays in @in. */
PhAskAnswer ph_ask_read_answer (PhStream *stream, GByteArray *in, PhHttpResponse **resp,
                                gsize *head_len, char **reason, GError **error);

typedef struct _PhAsk PhAsk;

/* @resp: the final answer's head (interim ones are skipped), the callee's to free; or NULL,
 * and @why says why there is none (translated). Called once, from the main loop, never from
 * within ph_ask_new; the PhAsk is freed right after it returns. */
typedef void (*PhAskFunc) (PhHttpResponse *resp, const char *why, gpointer user_data);

/* Sends @head (taken; wiped once sent and when freed) on @stream (not taken: it must outlive
 * the ask) and reads the answer, for @timeout_ms at most. */
PhAsk *ph_ask_new (PhStream *stream, GString *head, guint timeout_ms, PhAskFunc func,
                   gpointer user_data);
/* Gives up before the answer: @func is not called. Only before @func ran. */
void ph_ask_free (PhAsk *ask);

G_END_DECLS
