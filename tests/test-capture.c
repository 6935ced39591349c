/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-capture.c: unit tests for platform/ph-capture.h on Linux: the ruleset text of each mode,
 * word for word and as nft itself parses it (nft -c, which commits nothing; skipped without nft
 * or root, a failure under CI=true), and what apply, remove and exists hand to nft and make of its
 * answers, against a stand-in nft on PATH (nftables itself is touched only by
 * tests/netns/test-capture.sh, in a namespace of its own). */
#include "ph-capture.h"

#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

static const guint16 web_ports[] = { 80, 443 };

static const char local_want[] = "table inet pinhole {}\n"
                                 "delete table inet pinhole\n"
                                 "table inet pinhole {\n"
                                 "  chain output {\n"
                                 "    type nat hook output priority -100; policy accept;\n"
                                 "    meta skuid 998 return\n"
                                 "    meta mark 28776 return\n"
                                 "    ip daddr 127.0.0.0/8 return\n"
                                 "    ip6 daddr ::1 return\n"
                                 "    fib daddr type local return\n"
                                 "    meta l4proto tcp th dport { 80, 443 } redirect to :3129\n"
                                 "  }\n"
                                 "  chain output-udp {\n"
                                 "    type filter hook output priority filter; policy accept;\n"
                                 "    meta skuid 998 return\n"
                                 "    meta mark 28776 return\n"
                                 "    ip daddr 127.0.0.0/8 return\n"
                                 "    ip6 daddr ::1 return\n"
                                 "    fib daddr type local return\n"
                                 "    udp dport { 80, 443 } reject\n"
                                 "  }\n"
                                 "}\n";

static const char gateway_want[]
    = "table inet pinhole {}\n"
      "delete table inet pinhole\n"
      "table inet pinhole {\n"
      "  chain prerouting {\n"
      "    type nat hook prerouting priority dstnat; policy accept;\n"
      "    iifname \"eth1.10\" meta l4proto tcp th dport { 8080 } fib daddr type != local "
      "redirect to :3130\n"
      "  }\n"
      "  chain forward {\n"
      "    type filter hook forward priority filter; policy accept;\n"
      "    iifname \"eth1.10\" udp dport { 8080 } reject\n"
      "  }\n"
      "}\n";

static gboolean
in_ci (void)
{
  return g_strcmp0 (g_getenv ("CI"), "true") == 0;
}

/* nft -c on @ruleset: the kernel's parser and validation, nothing committed. */
static void
assert_nft_accepts (const char *ruleset)
{
  g_autofree char *nft = g_find_program_in_path ("nft");
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *err = NULL;

  if (nft == NULL && g_file_test ("/usr/sbin/nft", G_FILE_TEST_IS_EXECUTABLE))
    nft = g_strdup ("/usr/sbin/nft");
  if (nft == NULL)
    {
      if (in_ci ())
        g_error ("nft not found (install nftables: tests/install-deps.sh)");
      g_test_skip ("nft not found");
      return;
    }
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error,
                           nft, "-c", "-f", "-", NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, ruleset, NULL, NULL, &err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_successful (proc) && getuid () != 0 && !in_ci ())
    {
      g_test_skip ("nft -c needs root");
      return;
    }
  if (!g_subprocess_get_successful (proc))
    g_error ("nft -c refused the ruleset: %s\n%s", err, ruleset);
}

#define BOTH (PH_CAPTURE_IPV4 | PH_CAPTURE_IPV6)

static void
test_local (void)
{
  g_autofree char *ruleset = ph_capture_ruleset (NULL, web_ports, 2, 3129, BOTH, 998, 28776);

  g_assert_cmpstr (ruleset, ==, local_want);
  assert_nft_accepts (ruleset);
}

static void
test_local_no_mark (void)
{
  g_autofree char *ruleset = ph_capture_ruleset (NULL, web_ports, 2, 3129, BOTH, 0, 0);

  g_assert_null (strstr (ruleset, "meta mark"));
  g_assert_nonnull (strstr (ruleset, "meta skuid 0 return\n"));
  assert_nft_accepts (ruleset);
}

static void
test_gateway (void)
{
  const guint16 one[] = { 8080 };
  g_autofree char *ruleset = ph_capture_ruleset ("eth1.10", one, 1, 3130, BOTH, 998, 28776);

  g_assert_cmpstr (ruleset, ==, gateway_want);
  assert_nft_accepts (ruleset);
}

static void
test_many_ports (void)
{
  guint16 ports[64];
  g_autofree char *ruleset = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (ports); i++)
    ports[i] = (guint16) (1000 + 7 * i);
  ruleset = ph_capture_ruleset ("br-lan", ports, G_N_ELEMENTS (ports), 65535, BOTH, 0, 1);
  g_assert_nonnull (strstr (ruleset, "{ 1000, 1007, "));
  g_assert_nonnull (strstr (ruleset, ", 1441 } fib daddr type != local redirect to :65535\n"));
  assert_nft_accepts (ruleset);
}

/* Transparent listeners of one family: only that family's connections are captured. */
static void
test_one_family (void)
{
  g_autofree char *v4 = ph_capture_ruleset ("lan0", web_ports, 2, 3129, PH_CAPTURE_IPV4, 998, 0);
  g_autofree char *v6 = ph_capture_ruleset (NULL, web_ports, 2, 3129, PH_CAPTURE_IPV6, 998, 0);

  g_assert_nonnull (strstr (v4, "    iifname \"lan0\" meta nfproto ipv4 meta l4proto tcp th dport "
                                "{ 80, 443 } fib daddr type != local redirect to :3129\n"));
  g_assert_nonnull (strstr (
      v6, "    meta nfproto ipv6 meta l4proto tcp th dport { 80, 443 } redirect to :3129\n"));
  assert_nft_accepts (v4);
  assert_nft_accepts (v6);
}

/* A stand-in nft first on PATH: it keeps its arguments and standard input in the test's directory
 * and answers as the test says. */
typedef struct
{
  char *dir;
  char *old_path;
} FakeNft;

static void
fake_nft_setup (FakeNft *f, gconstpointer data)
{
  const char *script = data;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;
  g_autofree char *new_path = NULL;

  f->dir = g_dir_make_tmp ("ph-capture-XXXXXX", &error);
  g_assert_no_error (error);
  path = g_build_filename (f->dir, "nft", NULL);
  text = g_strdup_printf ("#!/bin/sh\n"
                          "printf '%%s\\n' \"$*\" >\"%s/args\"\n"
                          "cat >\"%s/stdin\"\n"
                          "%s\n",
                          f->dir, f->dir, script);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (path, 0700), ==, 0);
  f->old_path = g_strdup (g_getenv ("PATH"));
  new_path = g_strdup_printf ("%s:%s", f->dir, f->old_path != NULL ? f->old_path : "/usr/bin:/bin");
  g_setenv ("PATH", new_path, TRUE);
}

static void
fake_nft_teardown (FakeNft *f, gconstpointer data)
{
  g_autoptr (GDir) dir = g_dir_open (f->dir, 0, NULL);
  const char *name;

  g_setenv ("PATH", f->old_path, TRUE);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (f->dir, name, NULL);
      g_unlink (path);
    }
  g_rmdir (f->dir);
  g_free (f->dir);
  g_free (f->old_path);
}

static char *
fake_file (FakeNft *f, const char *name)
{
  g_autofree char *path = g_build_filename (f->dir, name, NULL);
  char *text = NULL;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

static void
test_apply (FakeNft *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *want = ph_capture_ruleset (NULL, web_ports, 2, 3129, BOTH, getuid (), 28776);
  g_autofree char *args = NULL;
  g_autofree char *input = NULL;

  g_assert_true (ph_capture_apply (NULL, web_ports, 2, 3129, BOTH, 28776, &error));
  g_assert_no_error (error);
  args = fake_file (f, "args");
  input = fake_file (f, "stdin");
  g_assert_cmpstr (args, ==, "-f -\n");
  g_assert_cmpstr (input, ==, want);
}

static void
test_remove (FakeNft *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *input = NULL;

  g_assert_true (ph_capture_remove (&error));
  g_assert_no_error (error);
  input = fake_file (f, "stdin");
  /* Never the whole ruleset, never another table. */
  g_assert_cmpstr (input, ==, "table inet pinhole {}\ndelete table inet pinhole\n");
}

static void
test_failure (FakeNft *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (ph_capture_apply ("eth0", web_ports, 2, 3129, BOTH, 0, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_cmpstr (
      error->message, ==,
      "nft: /dev/stdin:4:3-10: Error: Could not process rule: Operation not permitted");
  g_clear_error (&error);
  g_assert_false (ph_capture_remove (&error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
}

static void
test_bad_arguments (FakeNft *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *args = g_build_filename (f->dir, "args", NULL);

  g_assert_false (ph_capture_apply ("eth0\" accept", web_ports, 2, 3129, BOTH, 0, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (ph_capture_apply (NULL, web_ports, 0, 3129, BOTH, 0, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  /* nft was not run. */
  g_assert_false (g_file_test (args, G_FILE_TEST_EXISTS));
}

static void
test_exists (FakeNft *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  gboolean exists = FALSE;
  g_autofree char *args = NULL;

  g_assert_true (ph_capture_exists (&exists, &error));
  g_assert_no_error (error);
  g_assert_true (exists);
  args = fake_file (f, "args");
  g_assert_cmpstr (args, ==, "list tables inet\n");
}

static void
test_exists_not (FakeNft *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  gboolean exists = TRUE;

  g_assert_true (ph_capture_exists (&exists, &error));
  g_assert_false (exists);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pinhole/capture/ruleset-local", test_local);
  g_test_add_func ("/pinhole/capture/ruleset-local-no-mark", test_local_no_mark);
  g_test_add_func ("/pinhole/capture/ruleset-gateway", test_gateway);
  g_test_add_func ("/pinhole/capture/ruleset-many-ports", test_many_ports);
  g_test_add_func ("/pinhole/capture/ruleset-one-family", test_one_family);
  g_test_add ("/pinhole/capture/apply", FakeNft, "exit 0", fake_nft_setup, test_apply,
              fake_nft_teardown);
  g_test_add ("/pinhole/capture/remove", FakeNft, "exit 0", fake_nft_setup, test_remove,
              fake_nft_teardown);
  g_test_add ("/pinhole/capture/nft-fails", FakeNft,
              "printf '\\n/dev/stdin:4:3-10: Error: Could not process rule: Operation not "
              "permitted\\n  meta skuid 0 return\\n  ^^^^^^^^\\n' >&2; exit 1",
              fake_nft_setup, test_failure, fake_nft_teardown);
  g_test_add ("/pinhole/capture/bad-arguments", FakeNft, "exit 0", fake_nft_setup,
              test_bad_arguments, fake_nft_teardown);
  g_test_add ("/pinhole/capture/exists", FakeNft,
              "printf 'table inet other\\ntable inet pinhole\\n'", fake_nft_setup, test_exists,
              fake_nft_teardown);
  g_test_add ("/pinhole/capture/exists-not", FakeNft,
              "printf 'table inet pinhole2\\ntable inet other\\n'", fake_nft_setup, test_exists_not,
              fake_nft_teardown);
  return g_test_run ();
}
