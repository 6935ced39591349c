/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-report.c: the support report's redaction (agent/common/ph-report.c), table-driven: each
 * credential-shaped input loses its secret and keeps what names it; ordinary text is kept. The
 * whole report, against a real agent, is tests/cloud/test-ctl.sh's and tests/gui/test-tray.c's. */
#include "ph-report.h"

#include <string.h>

static const struct
{
  const char *in;
  const char *out;
} cases[] = {
  { "Proxy-Authorization: Basic YWxpY2U6czNjcmV0", "Proxy-Authorization: [redacted]" },
  { "proxy-authorization:Basic YWxpY2U6czNjcmV0\n", "proxy-authorization:[redacted]\n" },
  { "Authorization: Bearer abc.def.ghi rest", "Authorization: [redacted] rest" },
  { "token Basic YWxpY2U6czNjcmV0 seen", "token Basic [redacted] seen" },
  { "NTLM TlRMTVNTUAABAAAAB4IIAAAAAAAAAAAAAAAAAAAAAAA=", "NTLM [redacted]" },
  { "password=s3cret; next", "password=[redacted]; next" },
  { "\"password\": \"s3cret\"", "\"password\": \"[redacted]\"" },
  { "url http://alice:s3cret@proxy.example/x", "url http://alice:[redacted]@proxy.example/x" },
  { "socks5://bob:pa55@10.0.0.1:1080", "socks5://bob:[redacted]@10.0.0.1:1080" },
  /* Nothing secret: left as it is. */
  { "upstream.host = proxy.example:443  [set]", "upstream.host = proxy.example:443  [set]" },
  { "client 127.0.0.1:5555 -> http://example.com:80/path",
    "client 127.0.0.1:5555 -> http://example.com:80/path" },
  { "upstream.password-file =   [default]", "upstream.password-file =   [default]" },
  { "a basic check", "a basic check" },
  { "bypass=localhost", "bypass=localhost" },
  { "pass=s3cret", "pass=[redacted]" },
};

static void
test_redact (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = ph_report_redact (cases[i].in);

      g_test_message ("%s -> %s", cases[i].in, out);
      g_assert_cmpstr (out, ==, cases[i].out);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pinhole/report/redact", test_redact);
  return g_test_run ();
}
