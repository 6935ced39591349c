/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-ctl-json.c: unit tests for agent/ctl/ph-ctl-json.h, pinholectl's --json writer: the same
 * documents against the same expected bytes, whichever writer this binary is built with (json-glib
 * as test-ctl-json on Linux, the text writer as test-ctl-json-text, and under Wine). */
#include "ph-ctl-json.h"

#include <math.h>

#ifdef PH_TEST_JSON_GLIB
#include <json-glib/json-glib.h>
/* One significant digit and an exponent: json-glib before 1.8 writes "1e+22.0". */
static const gboolean exponents_as_text = JSON_CHECK_VERSION (1, 8, 0);
#else
static const gboolean exponents_as_text = TRUE;
#endif

typedef struct
{
  const char *name;
  void (*build) (PhJson *j);
  const char *expected;
} JsonCase;

static void
build_status (PhJson *j)
{
  const char *listeners[] = { "127.0.0.1:3128", "[::1]:3128", NULL };

  ph_json_begin_object (j);
  ph_json_set_member (j, "version");
  ph_json_add_string (j, "0.1.0");
  ph_json_set_member (j, "state");
  ph_json_add_string (j, "on");
  ph_json_set_member (j, "enabled");
  ph_json_add_boolean (j, TRUE);
  ph_json_set_member (j, "last_error");
  ph_json_begin_object (j);
  ph_json_set_member (j, "name");
  ph_json_add_string (j, NULL);
  ph_json_set_member (j, "message");
  ph_json_add_string (j, "");
  ph_json_end_object (j);
  ph_json_set_member (j, "listeners");
  ph_json_add_strv (j, listeners);
  ph_json_set_member (j, "active_tunnels");
  ph_json_add_int64 (j, 3);
  ph_json_set_member (j, "bytes_up");
  ph_json_add_uint64 (j, 1234567890123);
  ph_json_set_member (j, "trusted_pins");
  ph_json_add_strv (j, NULL);
  ph_json_set_member (j, "credentials_stored");
  ph_json_add_boolean (j, FALSE);
  ph_json_end_object (j);
}

static void
build_settings (PhJson *j)
{
  ph_json_begin_array (j);
  for (guint i = 0; i < 2; i++)
    {
      ph_json_begin_object (j);
      ph_json_set_member (j, "key");
      ph_json_add_string (j, i == 0 ? "upstream.host" : "listen.port");
      ph_json_set_member (j, "locked");
      ph_json_add_boolean (j, i == 1);
      ph_json_end_object (j);
    }
  ph_json_end_array (j);
}

static void
build_empty (PhJson *j)
{
  ph_json_begin_array (j);
  ph_json_begin_object (j);
  ph_json_end_object (j);
  ph_json_begin_array (j);
  ph_json_end_array (j);
  ph_json_begin_array (j);
  ph_json_begin_array (j);
  ph_json_end_array (j);
  ph_json_add_null (j);
  ph_json_end_array (j);
  ph_json_end_array (j);
}

static void
build_quotes (PhJson *j)
{
  ph_json_begin_array (j);
  ph_json_add_string (j, "say \"hi\"");
  ph_json_add_string (j, "C:\\Program Files\\Pinhole\\");
  ph_json_add_string (j, "a/b</script>");
  ph_json_add_string (j, "\"\\\"");
  ph_json_end_array (j);
}

static void
build_controls (PhJson *j)
{
  char all[0x21];

  for (guint c = 1; c <= 0x20; c++)
    all[c - 1] = (char) c;
  all[0x20] = '\0';
  ph_json_begin_array (j);
  ph_json_add_string (j, all);
  ph_json_add_string (j, "del\x7f.");
  ph_json_add_string (j, "unit\x1fseparator");
  ph_json_end_array (j);
}

/* UTF-8 goes out as it is, U+2028 and U+2029 too; so does a byte that is not UTF-8. */
static void
build_non_ascii (PhJson *j)
{
  ph_json_begin_array (j);
  ph_json_add_string (j, "café");
  ph_json_add_string (j, "代理已连接");
  ph_json_add_string (j, "🔒");
  ph_json_add_string (j, "line\xe2\x80\xa8"
                         "para\xe2\x80\xa9");
  ph_json_add_string (j, "latin1 \xe9");
  ph_json_end_array (j);
}

static void
build_keys (PhJson *j)
{
  ph_json_begin_object (j);
  ph_json_set_member (j, "");
  ph_json_add_int64 (j, 0);
  ph_json_set_member (j, "a \"quoted\"\nkey");
  ph_json_add_int64 (j, 1);
  ph_json_set_member (j, "clé");
  ph_json_add_int64 (j, 2);
  ph_json_end_object (j);
}

static void
build_integers (PhJson *j)
{
  ph_json_begin_array (j);
  ph_json_add_int64 (j, 0);
  ph_json_add_int64 (j, -1);
  ph_json_add_int64 (j, G_MAXINT64);
  ph_json_add_int64 (j, G_MININT64);
  ph_json_add_uint64 (j, 0);
  ph_json_add_uint64 (j, G_MAXINT64);
  /* Above G_MAXINT64: the largest gint64, not a negative number. */
  ph_json_add_uint64 (j, (guint64) G_MAXINT64 + 1);
  ph_json_add_uint64 (j, G_MAXUINT64);
  ph_json_end_array (j);
}

static void
build_doubles (PhJson *j)
{
  ph_json_begin_array (j);
  ph_json_add_double (j, 0.5);
  ph_json_add_double (j, 1.0);
  ph_json_add_double (j, -0.0);
  ph_json_add_double (j, 0.1);
  ph_json_add_double (j, -2.5e-7);
  ph_json_add_double (j, 1e300);
  ph_json_add_double (j, 123456789.0);
  ph_json_add_double (j, INFINITY);
  ph_json_add_double (j, -INFINITY);
  ph_json_add_double (j, NAN);
  ph_json_end_array (j);
}

/* One significant digit and an exponent (exponents_as_text). */
static void
build_double_exponent (PhJson *j)
{
  ph_json_begin_array (j);
  ph_json_add_double (j, 1e22);
  ph_json_add_double (j, 5e-324);
  ph_json_end_array (j);
}

/* An answer of FetchUpstreamPin's shape: a{sv} with kebab-case keys, nested. */
static void
build_variant_pin (PhJson *j)
{
  g_autoptr (GVariant) chain = NULL;
  g_autoptr (GVariant) info = NULL;
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("aa{sv}"));
  g_variant_builder_open (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "subject", g_variant_new_string ("CN=proxy \"one\""));
  g_variant_builder_add (&b, "{sv}", "not-before", g_variant_new_int64 (1735689600));
  g_variant_builder_add (&b, "{sv}", "is-ca", g_variant_new_boolean (FALSE));
  g_variant_builder_close (&b);
  chain = g_variant_ref_sink (g_variant_builder_end (&b));

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "pin-trusted", g_variant_new_boolean (TRUE));
  g_variant_builder_add (&b, "{sv}", "ca-problem", g_variant_new_string ("line 1\nline 2\t\x01"));
  g_variant_builder_add (&b, "{sv}", "server-names",
                         g_variant_new_strv ((const char *const[]){ "a.example", "b.example" }, 2));
  g_variant_builder_add (&b, "{sv}", "nested",
                         g_variant_new_parsed ("{'key-one': <byte 0x07>, 'key-two': <@a{sv} {}>}"));
  info = g_variant_ref_sink (g_variant_builder_end (&b));

  ph_json_begin_object (j);
  ph_json_set_member (j, "pin");
  ph_json_add_string (j, "sha256//AAAA+/=");
  ph_json_set_member (j, "chain");
  ph_json_add_variant (j, chain);
  ph_json_set_member (j, "info");
  ph_json_add_variant (j, info);
  ph_json_end_object (j);
}

/* Every basic type, and containers that are not dictionaries. */
static void
build_variant_types (PhJson *j)
{
  g_autoptr (GVariant) value = g_variant_ref_sink (g_variant_new_parsed (
      "(true, byte 0xff, int16 -16, uint16 16, int32 -32, uint32 4294967295,"
      " int64 -9223372036854775808, uint64 18446744073709551615, 0.25,"
      " objectpath '/org/pinhole/Agent', signature 'a{sv}', <<'twice'>>,"
      " @ai [], [[1, 2], [3]], just 'x', @ms nothing, {1: 'one'}, handle 0)"));

  ph_json_add_variant (j, value);
}

/* "a-b" and "a_b" become one key, and a key can come twice: the later value, in the earlier
 * one's place (json-glib's objects do that). */
static void
build_variant_collisions (PhJson *j)
{
  GVariantBuilder b;
  g_autoptr (GVariant) value = NULL;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "a-b", g_variant_new_int32 (1));
  g_variant_builder_add (&b, "{sv}", "c", g_variant_new_int32 (2));
  g_variant_builder_add (&b, "{sv}", "a_b", g_variant_new_int32 (3));
  g_variant_builder_add (&b, "{sv}", "c", g_variant_new_string ("four"));
  g_variant_builder_add (&b, "{sv}", "d", g_variant_new_int32 (5));
  value = g_variant_ref_sink (g_variant_builder_end (&b));

  ph_json_add_variant (j, value);
}

static const JsonCase cases[] = {
  { "status", build_status,
    "{\"version\":\"0.1.0\",\"state\":\"on\",\"enabled\":true,"
    "\"last_error\":{\"name\":\"\",\"message\":\"\"},"
    "\"listeners\":[\"127.0.0.1:3128\",\"[::1]:3128\"],\"active_tunnels\":3,"
    "\"bytes_up\":1234567890123,\"trusted_pins\":[],\"credentials_stored\":false}" },
  { "settings", build_settings,
    "[{\"key\":\"upstream.host\",\"locked\":false},{\"key\":\"listen.port\",\"locked\":true}]" },
  { "empty", build_empty, "[{},[],[[],null]]" },
  { "quotes", build_quotes,
    "[\"say \\\"hi\\\"\",\"C:\\\\Program Files\\\\Pinhole\\\\\",\"a/b</script>\","
    "\"\\\"\\\\\\\"\"]" },
  { "controls", build_controls,
    "[\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f"
    "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b"
    "\\u001c\\u001d\\u001e\\u001f \",\"del\\u007f.\",\"unit\\u001fseparator\"]" },
  { "non-ascii", build_non_ascii,
    "[\"café\",\"代理已连接\",\"🔒\",\"line\xe2\x80\xa8"
    "para\xe2\x80\xa9\",\"latin1 \xe9\"]" },
  { "keys", build_keys, "{\"\":0,\"a \\\"quoted\\\"\\nkey\":1,\"clé\":2}" },
  { "integers", build_integers,
    "[0,-1,9223372036854775807,-9223372036854775808,0,9223372036854775807,"
    "9223372036854775807,9223372036854775807]" },
  { "doubles", build_doubles,
    "[0.5,1.0,-0.0,0.10000000000000001,-2.4999999999999999e-07,1.0000000000000001e+300,"
    "123456789.0,null,null,null]" },
  { "double-exponent", build_double_exponent, "[1e+22,4.9406564584124654e-324]" },
  { "variant-pin", build_variant_pin,
    "{\"pin\":\"sha256//AAAA+/=\","
    "\"chain\":[{\"subject\":\"CN=proxy \\\"one\\\"\",\"not_before\":1735689600,"
    "\"is_ca\":false}],"
    "\"info\":{\"pin_trusted\":true,\"ca_problem\":\"line 1\\nline 2\\t\\u0001\","
    "\"server_names\":[\"a.example\",\"b.example\"],"
    "\"nested\":{\"key_one\":7,\"key_two\":{}}}}" },
  { "variant-types", build_variant_types,
    "[true,255,-16,16,-32,4294967295,-9223372036854775808,9223372036854775807,0.25,"
    "\"/org/pinhole/Agent\",\"a{sv}\",\"twice\",[],[[1,2],[3]],[\"x\"],[],[[1,\"one\"]],null]" },
  { "variant-collisions", build_variant_collisions, "{\"a_b\":3,\"c\":\"four\",\"d\":5}" },
};

static void
test_document (gconstpointer data)
{
  const JsonCase *c = data;
  g_autoptr (PhJson) j = ph_json_new ();
  g_autofree char *text = NULL;

  if (c->build == build_double_exponent && !exponents_as_text)
    {
      g_test_skip ("json-glib before 1.8 writes \"1e+22.0\"");
      return;
    }
  c->build (j);
  text = ph_json_to_string (j);
  g_assert_cmpstr (text, ==, c->expected);
}

/* A document out of order is refused (with a critical), as json-glib's builder refuses it. */
static void
test_misuse (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr (PhJson) j = ph_json_new ();

      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
      ph_json_begin_object (j);
      /* a value without its member name */
      ph_json_add_string (j, "orphan");
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stderr ("*CRITICAL*");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/pinhole/ctl-json/%s", cases[i].name);

      g_test_add_data_func (path, &cases[i], test_document);
    }
  g_test_add_func ("/pinhole/ctl-json/misuse", test_misuse);
  return g_test_run ();
}
