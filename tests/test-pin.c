/* SPDX-License-Identifier: GPL-2.0-or-later */
/* test-pin.c: unit tests for agent/ph-pin.h. Pins computed from freshly
 * generated certificates are checked against what openssl and certtool say. */
#include "ph-pin.h"
#include "ph-error.h"

#include <string.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/* Under CI a missing tool is a broken image, not a reason to skip. Under Wine the oracles
 * are Linux programs a Windows process cannot start: those cases run in the Linux build, on
 * the same code. */
static void
missing_tool (const char *tool)
{
#ifdef G_OS_WIN32
  g_test_skip_printf ("%s: the Linux build checks this against it (no Windows %s here)", tool,
                      tool);
  return;
#endif
  if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
    g_test_fail_printf ("%s is not installed (required when CI=true)", tool);
  else
    g_test_skip_printf ("%s is not installed", tool);
}

/* Runs @argv, feeding it @input; returns its standard output, or NULL with
 * a test failure if it did not exit with status 0. */
static GBytes *
run (const char *const *argv, GBytes *input)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) proc = NULL;
  g_autoptr (GBytes) out = NULL;
  g_autoptr (GBytes) err = NULL;
  g_autofree char *cmd = g_strjoinv (" ", (char **) argv);

  g_test_message ("running %s", cmd);
  /* Without input the child reads /dev/null. */
  proc = g_subprocess_newv (argv,
                            (input != NULL ? G_SUBPROCESS_FLAGS_STDIN_PIPE : 0)
                                | G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            &error);
  g_assert_no_error (error);
  if (proc == NULL)
    return NULL;
  g_subprocess_communicate (proc, input, NULL, &out, &err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_successful (proc))
    {
      g_test_fail_printf ("%s failed: %.*s", cmd, (int) g_bytes_get_size (err),
                          (const char *) g_bytes_get_data (err, NULL));
      return NULL;
    }
  return g_steal_pointer (&out);
}

typedef struct
{
  const char *name;
  gnutls_pk_algorithm_t algorithm;
  const char *openssl_newkey[4]; /* arguments of `openssl req -x509` */
  const char *certtool_privkey[4];
} KeyType;

static const KeyType key_types[] = {
  { "rsa",
    GNUTLS_PK_RSA,
    { "-newkey", "rsa:2048", NULL },
    { "--key-type=rsa", "--bits=2048", NULL } },
  { "ec",
    GNUTLS_PK_ECDSA,
    { "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256" },
    { "--key-type=ecdsa", "--curve=secp256r1", NULL } },
};

typedef struct
{
  char *dir;
  char *key;
  char *cert;
  char *template;
} Workdir;

static void
workdir_free (Workdir *w)
{
  const char *files[] = { w->key, w->cert, w->template };

  for (gsize i = 0; i < G_N_ELEMENTS (files); i++)
    if (files[i] != NULL)
      g_unlink (files[i]);
  g_rmdir (w->dir);
  g_free (w->dir);
  g_free (w->key);
  g_free (w->cert);
  g_free (w->template);
  g_free (w);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Workdir, workdir_free)

static Workdir *
workdir_new (void)
{
  g_autoptr (GError) error = NULL;
  Workdir *w = g_new0 (Workdir, 1);

  w->dir = g_dir_make_tmp ("pinhole-pin-XXXXXX", &error);
  g_assert_no_error (error);
  w->key = g_build_filename (w->dir, "key.pem", NULL);
  w->cert = g_build_filename (w->dir, "cert.pem", NULL);
  w->template = g_build_filename (w->dir, "cert.tmpl", NULL);
  return w;
}

/* A self-signed certificate for a new key, made with whichever tool exists. */
static gboolean
generate_certificate (const KeyType *kt, Workdir *w, const char *openssl, const char *certtool)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new ();
  g_autoptr (GBytes) out = NULL;

  if (openssl != NULL)
    {
      g_ptr_array_add (argv, (char *) openssl);
      g_ptr_array_add (argv, "req");
      g_ptr_array_add (argv, "-x509");
      for (gsize i = 0; i < G_N_ELEMENTS (kt->openssl_newkey) && kt->openssl_newkey[i]; i++)
        g_ptr_array_add (argv, (char *) kt->openssl_newkey[i]);
      g_ptr_array_add (argv, "-nodes");
      g_ptr_array_add (argv, "-subj");
      g_ptr_array_add (argv, "/CN=pinhole-test");
      g_ptr_array_add (argv, "-days");
      g_ptr_array_add (argv, "2");
      g_ptr_array_add (argv, "-keyout");
      g_ptr_array_add (argv, w->key);
      g_ptr_array_add (argv, "-out");
      g_ptr_array_add (argv, w->cert);
      g_ptr_array_add (argv, NULL);
      out = run ((const char *const *) argv->pdata, NULL);
      return out != NULL;
    }

  g_ptr_array_add (argv, (char *) certtool);
  g_ptr_array_add (argv, "--generate-privkey");
  for (gsize i = 0; i < G_N_ELEMENTS (kt->certtool_privkey) && kt->certtool_privkey[i]; i++)
    g_ptr_array_add (argv, (char *) kt->certtool_privkey[i]);
  g_ptr_array_add (argv, "--outfile");
  g_ptr_array_add (argv, w->key);
  g_ptr_array_add (argv, NULL);
  out = run ((const char *const *) argv->pdata, NULL);
  if (out == NULL)
    return FALSE;
  g_clear_pointer (&out, g_bytes_unref);
  g_assert_true (
      g_file_set_contents (w->template, "cn = \"pinhole-test\"\nexpiration_days = 2\n", -1, NULL));
  {
    const char *self_signed[] = { certtool,
                                  "--generate-self-signed",
                                  "--load-privkey",
                                  w->key,
                                  "--template",
                                  w->template,
                                  "--outfile",
                                  w->cert,
                                  NULL };
    out = run (self_signed, NULL);
  }
  return out != NULL;
}

static GBytes *
read_der_certificate (const char *pem_path)
{
  g_autofree char *pem = NULL;
  gsize len = 0;
  gnutls_datum_t in, der = { NULL, 0 };
  GBytes *bytes;

  g_assert (g_file_get_contents (pem_path, &pem, &len, NULL));
  in.data = (unsigned char *) pem;
  in.size = len;
  g_assert_cmpint (gnutls_pem_base64_decode2 ("CERTIFICATE", &in, &der), ==, 0);
  bytes = g_bytes_new (der.data, der.size);
  gnutls_free (der.data);
  return bytes;
}

static gnutls_pk_algorithm_t
certificate_algorithm (GBytes *der)
{
  gnutls_x509_crt_t crt = NULL;
  gnutls_datum_t in
      = { (unsigned char *) g_bytes_get_data (der, NULL), (unsigned int) g_bytes_get_size (der) };
  int algo;

  g_assert_cmpint (gnutls_x509_crt_init (&crt), ==, 0);
  g_assert_cmpint (gnutls_x509_crt_import (crt, &in, GNUTLS_X509_FMT_DER), ==, 0);
  algo = gnutls_x509_crt_get_pk_algorithm (crt, NULL);
  gnutls_x509_crt_deinit (crt);
  return (gnutls_pk_algorithm_t) algo;
}

/* openssl x509 -pubkey | openssl pkey -pubin -outform der |
 * openssl dgst -sha256 -binary | base64, one process at a time. */
static char *
openssl_pin (const char *openssl, const char *cert)
{
  const char *pubkey_argv[] = { openssl, "x509", "-in", cert, "-pubkey", "-noout", NULL };
  const char *der_argv[] = { openssl, "pkey", "-pubin", "-outform", "der", NULL };
  const char *dgst_argv[] = { openssl, "dgst", "-sha256", "-binary", NULL };
  const char *base64_argv[] = { "base64", NULL };
  g_autoptr (GBytes) pubkey = run (pubkey_argv, NULL);
  g_autoptr (GBytes) der = pubkey ? run (der_argv, pubkey) : NULL;
  g_autoptr (GBytes) digest = der ? run (dgst_argv, der) : NULL;
  g_autoptr (GBytes) b64 = NULL;
  g_autofree char *text = NULL;

  if (digest == NULL)
    return NULL;
  g_assert_cmpuint (g_bytes_get_size (digest), ==, PH_PIN_LEN);
  b64 = run (base64_argv, digest);
  if (b64 == NULL)
    return NULL;
  text = g_strndup (g_bytes_get_data (b64, NULL), g_bytes_get_size (b64));
  return g_strconcat ("sha256//", g_strstrip (text), NULL);
}

/* The "pin-sha256:BASE64" that certtool --certificate-info prints. */
static char *
certtool_pin (const char *certtool, const char *cert)
{
  const char *argv[] = { certtool, "--certificate-info", "--infile", cert, NULL };
  g_autoptr (GBytes) out = run (argv, NULL);
  g_autofree char *text = NULL;
  g_autofree char *b64 = NULL;
  const char *p;

  if (out == NULL)
    return NULL;
  text = g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
  p = strstr (text, "pin-sha256:");
  if (p == NULL)
    {
      g_test_fail_printf ("no pin-sha256: in certtool's output:\n%s", text);
      return NULL;
    }
  p += strlen ("pin-sha256:");
  b64 = g_strndup (p, strcspn (p, " \t\r\n"));
  return g_strconcat ("sha256//", b64, NULL);
}

static void
test_from_certificate (gconstpointer data)
{
  const KeyType *kt = data;
  g_autofree char *openssl = g_find_program_in_path ("openssl");
  g_autofree char *certtool = g_find_program_in_path ("certtool");
  g_autoptr (Workdir) w = NULL;
  g_autoptr (GBytes) der = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *ours = NULL;
  g_autoptr (PhPin) pin = NULL;
  g_autoptr (PhPin) parsed = NULL;

  if (openssl == NULL && certtool == NULL)
    {
      missing_tool ("openssl or certtool");
      return;
    }
  w = workdir_new ();
  if (!generate_certificate (kt, w, openssl, certtool))
    return;
  der = read_der_certificate (w->cert);
  g_assert_cmpint (certificate_algorithm (der), ==, kt->algorithm);

  g_assert_true ((pin = ph_pin_new_from_der_certificate (g_bytes_get_data (der, NULL),
                                                         g_bytes_get_size (der), &error))
                 != NULL);
  g_assert_no_error (error);
  ours = ph_pin_to_string (pin);
  g_test_message ("our pin: %s", ours);
  g_assert_true (g_str_has_prefix (ours, "sha256//"));
  g_assert_cmpuint (strlen (ours), ==, strlen ("sha256//") + 44);

  /* What we print, we read back to the same digest. */
  g_assert_true ((parsed = ph_pin_parse (ours, &error)) != NULL);
  g_assert_no_error (error);
  g_assert_cmpmem (ph_pin_get_digest (parsed), PH_PIN_LEN, ph_pin_get_digest (pin), PH_PIN_LEN);
  g_assert_true (ph_pin_matches_any (pin, &parsed, 1));

  if (openssl != NULL)
    {
      g_autofree char *theirs = openssl_pin (openssl, w->cert);
      g_assert_cmpstr (ours, ==, theirs);
    }
  if (certtool != NULL)
    {
      g_autofree char *theirs = certtool_pin (certtool, w->cert);
      g_assert_cmpstr (ours, ==, theirs);
    }
  if (openssl == NULL)
    missing_tool ("openssl");
  else if (certtool == NULL)
    missing_tool ("certtool");
}

/* Two certificates for different keys have different pins; the same key
 * in a new certificate keeps its pin. */
static void
test_pin_is_the_key (void)
{
  g_autofree char *openssl = g_find_program_in_path ("openssl");
  g_autoptr (Workdir) w = NULL;
  g_autoptr (GBytes) first = NULL;
  g_autoptr (GBytes) same_key = NULL;
  g_autoptr (GBytes) other_key = NULL;
  g_autoptr (PhPin) a = NULL;
  g_autoptr (PhPin) b = NULL;
  g_autoptr (PhPin) c = NULL;

  if (openssl == NULL)
    {
      missing_tool ("openssl");
      return;
    }
  w = workdir_new ();
  if (!generate_certificate (&key_types[1], w, openssl, NULL))
    return;
  first = read_der_certificate (w->cert);
  {
    const char *argv[] = { openssl,       "req",   "-x509", "-new", "-key",  w->key, "-subj",
                           "/CN=renewed", "-days", "3",     "-out", w->cert, NULL };
    g_autoptr (GBytes) out = run (argv, NULL);
    if (out == NULL)
      return;
  }
  same_key = read_der_certificate (w->cert);
  g_assert_false (g_bytes_equal (first, same_key));
  if (!generate_certificate (&key_types[1], w, openssl, NULL))
    return;
  other_key = read_der_certificate (w->cert);

  g_assert_true ((a = ph_pin_new_from_der_certificate (g_bytes_get_data (first, NULL),
                                                       g_bytes_get_size (first), NULL))
                 != NULL);
  g_assert_true ((b = ph_pin_new_from_der_certificate (g_bytes_get_data (same_key, NULL),
                                                       g_bytes_get_size (same_key), NULL))
                 != NULL);
  g_assert_true ((c = ph_pin_new_from_der_certificate (g_bytes_get_data (other_key, NULL),
                                                       g_bytes_get_size (other_key), NULL))
                 != NULL);
  g_assert_cmpmem (ph_pin_get_digest (a), PH_PIN_LEN, ph_pin_get_digest (b), PH_PIN_LEN);
  g_assert_false (ph_pin_matches_any (a, &c, 1));
}

static void
test_from_garbage (void)
{
  const guint8 junk[] = { 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00, 0xde, 0xad };
  const char *pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  const struct
  {
    const guint8 *data;
    gsize len;
  } cases[] = {
    { junk, sizeof junk },
    { (const guint8 *) pem, strlen (pem) },
    { junk, 0 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (PhPin) pin = NULL;

      g_assert_false ((pin = ph_pin_new_from_der_certificate (cases[i].data, cases[i].len, &error))
                      != NULL);
      g_assert_error (error, PH_ERROR, PH_ERROR_UPSTREAM_TLS);
    }
}

static void
test_parse_valid (void)
{
  /* 32 bytes of 0x00..0x1f */
  const char *text = "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  const char *all_ones = "sha256////////////////////////////////////////////8=";
  g_autoptr (PhPin) pin = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *back = NULL;

  g_assert_true ((pin = ph_pin_parse (text, &error)) != NULL);
  g_assert_no_error (error);
  for (guint i = 0; i < PH_PIN_LEN; i++)
    g_assert_cmpuint (ph_pin_get_digest (pin)[i], ==, i);
  back = ph_pin_to_string (pin);
  g_assert_cmpstr (back, ==, text);

  g_clear_pointer (&pin, ph_pin_free);
  g_assert_true ((pin = ph_pin_parse (all_ones, &error)) != NULL);
  g_assert_no_error (error);
  for (guint i = 0; i < PH_PIN_LEN; i++)
    g_assert_cmpuint (ph_pin_get_digest (pin)[i], ==, 0xff);
}

static void
test_parse_invalid (void)
{
  const char *cases[] = {
    "",
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",             /* no prefix */
    "sha1//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",       /* sha1 */
    "sha1//AAECAwQFBgcICQoLDA0ODxAREhM=",                       /* a real sha1 length */
    "sha512//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",     /* other hash */
    "sha256/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",      /* one slash */
    "pin-sha256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",  /* HPKP form */
    "sha256//",                                                 /* empty */
    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",      /* 43 characters */
    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==",    /* 45 characters */
    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==",     /* 31 bytes */
    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==", /* 34 bytes */
    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g",     /* 33 bytes */
    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh!=",     /* not base64 */
    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8!",     /* not padding */
    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8=",     /* base64url */
    "sha256//AAECAwQFBgcICQoLDA0ODx=REhMUFRYXGBkaGxwdHh8=",     /* padding inside */
    "sha256// AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",     /* space */
    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",   /* newline */
    "sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=;",    /* a list's separator */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (PhPin) pin = NULL;

      if ((pin = ph_pin_parse (cases[i], &error)) != NULL)
        g_test_fail_printf ("“%s” was accepted", cases[i]);
      else
        g_assert_error (error, PH_ERROR, PH_ERROR_INVALID_CONFIG);
    }
}

static void
test_matches_any (void)
{
  PhPin *pins[4];
  g_autoptr (PhPin) seen = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (pins); i++)
    {
      guint8 digest[PH_PIN_LEN];

      memset (digest, 0x10 * (i + 1), PH_PIN_LEN);
      pins[i] = ph_pin_new (digest);
    }
  seen = ph_pin_copy (pins[2]);

  /* None configured: nothing matches. */
  g_assert_false (ph_pin_matches_any (seen, NULL, 0));
  g_assert_false (ph_pin_matches_any (seen, pins, 0));
  /* One. */
  g_assert_true (ph_pin_matches_any (seen, &pins[2], 1));
  g_assert_false (ph_pin_matches_any (seen, &pins[0], 1));
  /* Several: first, middle, last, none. */
  g_assert_true (ph_pin_matches_any (seen, &pins[2], 2));
  g_assert_true (ph_pin_matches_any (seen, &pins[1], 3));
  g_assert_true (ph_pin_matches_any (seen, pins, 3));
  g_assert_true (ph_pin_matches_any (seen, pins, 4));
  g_assert_false (ph_pin_matches_any (seen, pins, 2));
  g_assert_false (ph_pin_matches_any (seen, &pins[3], 1));

  /* A single differing bit anywhere is a different pin. */
  for (guint byte = 0; byte < PH_PIN_LEN; byte += 31)
    {
      guint8 digest[PH_PIN_LEN];
      g_autoptr (PhPin) near = NULL;

      memcpy (digest, ph_pin_get_digest (seen), PH_PIN_LEN);
      digest[byte] ^= 0x01;
      near = ph_pin_new (digest);
      g_assert_false (ph_pin_matches_any (near, pins, 4));
    }
  for (guint i = 0; i < G_N_ELEMENTS (pins); i++)
    ph_pin_free (pins[i]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* A failed check fails its case, and the other cases still run. */
  g_test_set_nonfatal_assertions ();

  for (gsize i = 0; i < G_N_ELEMENTS (key_types); i++)
    {
      g_autofree char *path
          = g_strdup_printf ("/pinhole/pin/from-certificate/%s", key_types[i].name);
      g_test_add_data_func (path, &key_types[i], test_from_certificate);
    }
  g_test_add_func ("/pinhole/pin/pin-is-the-key", test_pin_is_the_key);
  g_test_add_func ("/pinhole/pin/from-garbage", test_from_garbage);
  g_test_add_func ("/pinhole/pin/parse-valid", test_parse_valid);
  g_test_add_func ("/pinhole/pin/parse-invalid", test_parse_invalid);
  g_test_add_func ("/pinhole/pin/matches-any", test_matches_any);

  return g_test_run ();
}
