/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-ctl-output.h: how pinholectl prints for people: aligned label/value rows and tables, and the
 * small formatting helpers the commands share (JSON for scripts is ph-ctl-json.h). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* Label/value pairs printed as two aligned columns; a value with several lines continues under
 * the first. Labels carry their own colon so that translations can punctuate as their language
 * does. */
typedef struct
{
  GPtrArray *cells;
  guint indent;
} PhRows;

void ph_rows_init (PhRows *rows, guint indent);
void ph_rows_add (PhRows *rows, const char *label, const char *value);
/* Appends the rows to @out and empties @rows. */
void ph_rows_print (PhRows *rows, GString *out);
void ph_rows_clear (PhRows *rows);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PhRows, ph_rows_clear)

/* Terminal columns of @text: CJK translations take two per character. */
glong ph_text_width (const char *text);
/* Ends the line that starts at @start in @out, without trailing padding. */
void ph_end_line (GString *out, gsize start);
/* One cell of a table, padded to @width plus two columns unless it is the @last. */
void ph_table_cell (GString *out, const char *text, glong width, gboolean last);

const char *ph_or_empty (const char *value);
const char *ph_yes_no (gboolean value);
/* @values joined by @separator, or "none". */
char *ph_join_or_none (const char *const *values, const char *separator);
/* "2025-01-31 12:00:00 UTC to 2026-01-31 12:00:00 UTC", saying when it has expired. */
char *ph_format_validity (gint64 not_before, gint64 not_after);

/* Why a route is what it is, from ExplainRoute's @reason and @rule, translated, e.g.
 * "direct list: *.corp.example"; @description (the agent's English) for a reason it does not
 * know. */
char *ph_format_route_reason (const char *reason, const char *rule, const char *description);

/* Members of the agent's a{sv} answers, "" / FALSE / 0 when absent. */
const char *ph_dict_string (GVariant *dict, const char *key);
gboolean ph_dict_boolean (GVariant *dict, const char *key);
gint64 ph_dict_int64 (GVariant *dict, const char *key);

G_END_DECLS
