/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-secret-file.c: the system service's secret store: a key file that only its owner may
 * read, one group per upstream, username = base64 (password), replaced atomically. Windows
 * keeps DPAPI blobs in the same layout (ph-secret-dpapi.c). */
#define G_LOG_DOMAIN "pinhole-secret"

#include "ph-secret-private.h"
#include "ph-error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>
#include <glib/gi18n.h>
#ifdef G_OS_UNIX
#include <unistd.h>
#else
#include <io.h>
#include <windows.h>
#endif

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif
#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif
#ifndef O_BINARY
#define O_BINARY 0
#endif

/* Far more than any set of passwords; a bigger file is not ours. */
#define MAX_FILE_SIZE (1024 * 1024)

/* A heap buffer that held secrets: wiped in full before it is freed. */
typedef struct
{
  char *data;
  gsize size; /* allocated, all of it wiped */
  gsize len;  /* in use */
} PhSecretBuffer;

static void
secret_buffer_clear (PhSecretBuffer *buf)
{
  ph_secret_wipe (buf->data, buf->size);
  g_clear_pointer (&buf->data, g_free);
  buf->size = buf->len = 0;
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PhSecretBuffer, secret_buffer_clear)

/* A NUL-terminated string that holds a password or its encoding. */
typedef char PhSecretText;
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PhSecretText, ph_secret_free)

typedef int PhFd;
static void
fd_close (int fd)
{
  g_close (fd, NULL);
}
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (PhFd, fd_close, -1)

/* GKeyFile cannot take every upstream or username as a group or key name ("[::1]:443" has
 * brackets; a username may hold '=', '#' or spaces), so both are percent-encoded. The encoding
 * is one-to-one, and plain names such as "proxy.example.com:443" and "alice" stay readable. */
static char *
encode_name (const char *name)
{
  return g_uri_escape_string (name, ":@+", FALSE);
}

/* Reads @path into @out, refusing a file that someone other than us could read or control.
 * A missing file leaves @out empty: nothing is stored yet. */
static gboolean
read_private_file (const char *path, PhSecretBuffer *out, GError **error)
{
  g_auto (PhFd) fd = -1;
  struct stat st;

  fd = g_open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_BINARY, 0);
  if (fd < 0)
    {
      int saved = errno;

      if (saved == ENOENT)
        return TRUE;
#ifdef ELOOP
      if (saved == ELOOP)
        {
          g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                       /* TRANSLATORS: %s is the password file's path */
                       _ ("%s is a symbolic link; the password file must be a regular file"), path);
          return FALSE;
        }
#endif
      /* TRANSLATORS: the password file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot open password file %s: %s"), path,
                   g_strerror (saved));
      return FALSE;
    }
  if (fstat (fd, &st) != 0)
    {
      int saved = errno;
      /* TRANSLATORS: "stat" is reading a file's size, owner and mode; the password
       * file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot stat password file %s: %s"), path,
                   g_strerror (saved));
      return FALSE;
    }
#ifdef G_OS_UNIX
  /* Checked on the open descriptor, so the file cannot be swapped between check and read. */
  if (!S_ISREG (st.st_mode))
    {
      /* TRANSLATORS: %s is the password file's path */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("%s is not a regular file"), path);
      return FALSE;
    }
  if (st.st_uid != geteuid ())
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: the password file's path, its owner's user ID, then the
                    * user ID the agent runs as */
                   _ ("Refusing password file %s: it is owned by uid %u, not by uid %u that runs "
                      "Pinhole"),
                   path, (guint) st.st_uid, (guint) geteuid ());
      return FALSE;
    }
  if ((st.st_mode & 077) != 0)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: the password file's path, its mode in octal, then the path
                    * again inside a command to run: keep "chmod 600" */
                   _ ("Refusing password file %s: its mode %04o lets other users read or change "
                      "it; run “chmod 600 %s” and consider the password exposed"),
                   path, (guint) (st.st_mode & 07777), path);
      return FALSE;
    }
#endif
  if (st.st_size < 0 || st.st_size > MAX_FILE_SIZE)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: the password file's path, then its size in bytes */
                   _ ("Refusing password file %s: %lld bytes is too large for one"), path,
                   (long long) st.st_size);
      return FALSE;
    }

  out->size = (gsize) st.st_size + 1;
  out->data = g_malloc0 (out->size);
  while (out->len < (gsize) st.st_size)
    {
      gssize n = read (fd, out->data + out->len, (gsize) st.st_size - out->len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;
          /* TRANSLATORS: the password file's path, then why */
          g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot read password file %s: %s"),
                       path, g_strerror (saved));
          return FALSE;
        }
      if (n == 0)
        break;
      out->len += (gsize) n;
    }
  return TRUE;
}

static gboolean
write_all (int fd, const char *data, gsize len, const char *path, GError **error)
{
  while (len > 0)
    {
      gssize n = write (fd, data, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved = errno;
          /* TRANSLATORS: a file's path, then why */
          g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot write %s: %s"), path,
                       g_strerror (saved));
          return FALSE;
        }
      data += n;
      len -= (gsize) n;
    }
  return TRUE;
}

static gboolean
sync_and_close (int *fd, const char *path, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  int fd_ = *fd;

  if (g_fsync (fd_) != 0)
    {
      int saved = errno;
      /* TRANSLATORS: a file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot flush %s to disk: %s"), path,
                   g_strerror (saved));
      return FALSE;
    }
  *fd = -1;
  if (!g_close (fd_, &local_error))
    {
      /* TRANSLATORS: a file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot write %s: %s"), path,
                   local_error->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
rename_into_place (const char *tmp, const char *path, GError **error)
{
#ifdef G_OS_WIN32
  g_autofree gunichar2 *wtmp = g_utf8_to_utf16 (tmp, -1, NULL, NULL, NULL);
  g_autofree gunichar2 *wpath = g_utf8_to_utf16 (path, -1, NULL, NULL, NULL);

  /* g_rename() does not write through: this makes the rename survive a crash, as
   * sync_directory() does on Unix. */
  if (wtmp == NULL || wpath == NULL
      || !MoveFileExW (wtmp, wpath, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
    {
      DWORD code = wtmp == NULL || wpath == NULL ? ERROR_INVALID_NAME : GetLastError ();
      g_autofree char *why = g_win32_error_message ((int) code);
      /* TRANSLATORS: a file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot replace %s: %s"), path, why);
      return FALSE;
    }
  return TRUE;
#else
  if (g_rename (tmp, path) != 0)
    {
      int saved = errno;
      /* TRANSLATORS: a file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot replace %s: %s"), path,
                   g_strerror (saved));
      return FALSE;
    }
  return TRUE;
#endif
}

/* Makes a completed rename survive a crash. The new file is in place whatever happens here, so
 * a failure is only worth a warning. */
static void
sync_directory (const char *dir)
{
#ifdef G_OS_UNIX
  g_auto (PhFd) fd = g_open (dir, O_RDONLY | O_CLOEXEC, 0);

  if (fd < 0 || g_fsync (fd) != 0)
    g_warning ("Cannot flush directory %s to disk: %s", dir, g_strerror (errno));
#endif
}

/* Creates the temporary file named by @tmpl in @dir, mode 0600; see PhSecretFileFormat. */
static int
create_temp_private (char *tmpl, const char *dir, GError **error)
{
  g_auto (PhFd) fd = -1;

  /* O_EXCL with mode 0600 from the start, unlike g_file_set_contents(), which may create its
   * temporary file with the umask's wider mode before it can be narrowed. */
  fd = g_mkstemp_full (tmpl, O_RDWR | O_CLOEXEC | O_BINARY, 0600);
  if (fd < 0)
    {
      int saved = errno;
      /* TRANSLATORS: a folder's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot create a temporary file in %s: %s"),
                   dir, g_strerror (saved));
      return -1;
    }
#ifdef G_OS_UNIX
  /* A strict umask may have taken bits the owner needs; the result is exactly 0600. */
  if (fchmod (fd, 0600) != 0)
    {
      int saved = errno;
      /* TRANSLATORS: a file's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot set the mode of %s: %s"), tmpl,
                   g_strerror (saved));
      g_unlink (tmpl);
      return -1;
    }
#endif
  return g_steal_fd (&fd);
}

/* Replaces the store's file by @data: a temporary file, created in the same directory so that
 * no one else can ever open it, is filled, flushed and renamed over it. Readers see the old
 * file or the new one, never a part. */
static gboolean
write_atomically (PhSecretFileStore *self, const char *data, gsize len, GError **error)
{
  const char *path = self->path;
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmp = NULL;
  g_auto (PhFd) fd = -1;
  gboolean ok;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;
      /* TRANSLATORS: a folder's path, then why */
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED, _ ("Cannot create directory %s: %s"), dir,
                   g_strerror (saved));
      return FALSE;
    }
  tmp = g_strdup_printf ("%s%c.%s.XXXXXX", dir, G_DIR_SEPARATOR, base);
  if (self->format->create_temp != NULL)
    fd = self->format->create_temp (self, tmp, error);
  else
    fd = create_temp_private (tmp, dir, error);
  if (fd < 0)
    return FALSE;

  ok = write_all (fd, data, len, tmp, error) && sync_and_close (&fd, tmp, error)
       && rename_into_place (tmp, path, error);
  if (!ok)
    {
      g_unlink (tmp);
      return FALSE;
    }
  sync_directory (dir);
  return TRUE;
}

/* Loads the store into @keys; a missing file leaves @keys empty. */
static gboolean
load_keys (PhSecretFileStore *self, GKeyFile *keys, GError **error)
{
  g_auto (PhSecretBuffer) buf = { NULL, 0, 0 };

  if (!read_private_file (self->path, &buf, error))
    return FALSE;
  if (buf.data == NULL)
    return TRUE;
  if (memchr (buf.data, '\0', buf.len) != NULL)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: %s is the password file's path */
                   _ ("Password file %s holds NUL bytes; it is not a key file"), self->path);
      return FALSE;
    }
  /* GKeyFile's parse errors quote the offending line, which may be a password typed by hand,
   * so they are not passed on. */
  if (!g_key_file_load_from_data (keys, buf.data, buf.len, G_KEY_FILE_KEEP_COMMENTS, NULL))
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: %s is the password file's path; the key-file format is
                    * the INI-like [group] and key=value lines */
                   _ ("Password file %s is not in key-file format (the offending line is not "
                      "shown, as it may hold a password)"),
                   self->path);
      return FALSE;
    }
  return TRUE;
}

static gboolean
store_keys (PhSecretFileStore *self, GKeyFile *keys, GError **error)
{
  g_autoptr (PhSecretText) data = NULL;
  g_autofree char *top = g_key_file_get_comment (keys, NULL, NULL, NULL);
  gsize len = 0;

  /* Whoever finds the file should learn what it is without reading this code. */
  if (top == NULL || *top == '\0')
    g_key_file_set_comment (keys, NULL, NULL, self->format->header, NULL);
  data = g_key_file_to_data (keys, &len, NULL);
  return write_atomically (self, data, len, error);
}

/* Turns the stored base64 in *@value into the password: in place, or through the format's
 * open(), which replaces *@value. On failure *@value is still the caller's to wipe and free. */
static gboolean
decode_password (PhSecretFileStore *self, const char *username, char **value, GError **error)
{
  gsize encoded_len = strlen (*value);
  gsize len = 0;

  /* The empty password; g_base64_decode_inplace() wants at least two characters. */
  if (encoded_len == 0 && self->format->open == NULL)
    return TRUE;

  if (encoded_len % 4 != 0
      || strspn (*value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
             != encoded_len)
    {
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: the password file's path, then the proxy user name */
                   _ ("Password file %s: the entry for “%s” is not base64; set the password "
                      "again"),
                   self->path, username);
      return FALSE;
    }
  if (encoded_len > 0)
    g_base64_decode_inplace (*value, &len);
  /* The tail still holds part of the encoding. */
  ph_secret_wipe (*value + len, encoded_len - len);
  if (self->format->open != NULL)
    {
      gsize password_len = 0;
      char *password
          = self->format->open (self, username, (const guint8 *) *value, len, &password_len, error);

      if (password == NULL)
        return FALSE;
      /* What was opened is not the password, but it is wiped all the same. */
      ph_secret_wipe (*value, len);
      g_free (*value);
      *value = password;
      len = password_len;
    }
  if (memchr (*value, '\0', len) != NULL)
    {
      /* The caller's wipe stops at the first NUL. */
      ph_secret_wipe (*value, len);
      g_set_error (error, PH_ERROR, PH_ERROR_FAILED,
                   /* TRANSLATORS: the password file's path, then the proxy user name */
                   _ ("Password file %s: the entry for “%s” holds a NUL byte; set the password "
                      "again"),
                   self->path, username);
      return FALSE;
    }
  return TRUE;
}

/* GKeyFile keeps its own copies of the values, which it frees without wiping; every buffer this
 * file owns is wiped. */
static gboolean
file_lookup (PhSecretStore *store, const char *upstream, const char *username, char **password,
             GError **error)
{
  PhSecretFileStore *self = (PhSecretFileStore *) store;
  g_autoptr (GKeyFile) keys = g_key_file_new ();
  g_autofree char *group = encode_name (upstream);
  g_autofree char *key = encode_name (username);
  g_autoptr (PhSecretText) value = NULL;

  if (!load_keys (self, keys, error))
    return FALSE;
  value = g_key_file_get_value (keys, group, key, NULL);
  if (value == NULL)
    return TRUE;
  if (!decode_password (self, username, &value, error))
    return FALSE;
  *password = g_steal_pointer (&value);
  return TRUE;
}

static gboolean
file_save (PhSecretStore *store, const char *upstream, const char *username, const char *password,
           GError **error)
{
  PhSecretFileStore *self = (PhSecretFileStore *) store;
  g_autoptr (GKeyFile) keys = g_key_file_new ();
  g_autofree char *group = encode_name (upstream);
  g_autofree char *key = encode_name (username);
  g_autoptr (PhSecretText) encoded = NULL;

  /* An existing file that fails the checks is not silently replaced: it may hold other
   * upstreams' passwords, and its owner should learn that it was exposed. */
  if (!load_keys (self, keys, error))
    return FALSE;
  if (self->format->seal != NULL)
    {
      g_autoptr (GBytes) sealed = self->format->seal (self, password, error);
      gsize sealed_len = 0;
      const guint8 *sealed_data;

      if (sealed == NULL)
        return FALSE;
      sealed_data = g_bytes_get_data (sealed, &sealed_len);
      encoded = g_base64_encode (sealed_data, sealed_len);
    }
  else
    encoded = g_base64_encode ((const guchar *) password, strlen (password));
  g_key_file_set_value (keys, group, key, encoded);
  return store_keys (self, keys, error);
}

static gboolean
file_clear (PhSecretStore *store, const char *upstream, GError **error)
{
  PhSecretFileStore *self = (PhSecretFileStore *) store;
  g_autoptr (GKeyFile) keys = g_key_file_new ();
  g_autofree char *group = encode_name (upstream);

  if (!load_keys (self, keys, error))
    return FALSE;
  if (!g_key_file_has_group (keys, group))
    return TRUE;
  g_key_file_remove_group (keys, group, NULL);
  return store_keys (self, keys, error);
}

static void
file_finalize (PhSecretStore *store)
{
  PhSecretFileStore *self = (PhSecretFileStore *) store;

  g_free (self->path);
}

static const PhSecretStoreVTable file_vtable = {
  .lookup = file_lookup,
  .save = file_save,
  .clear = file_clear,
  .finalize = file_finalize,
};

PhSecretFileStore *
ph_secret_file_store_new (gsize size, const char *path, char *description,
                          const PhSecretFileFormat *format)
{
  PhSecretFileStore *self;

  g_return_val_if_fail (size >= sizeof (PhSecretFileStore), NULL);
  g_return_val_if_fail (path != NULL && *path != '\0', NULL);
  g_return_val_if_fail (format != NULL && (format->seal == NULL) == (format->open == NULL), NULL);

  self = g_malloc0 (size);
  self->parent.vtable = &file_vtable;
  self->parent.description = description;
  self->format = format;
  self->path = g_strdup (path);
  return self;
}

/* The password itself, base64-encoded so that any byte fits in a key file. */
static const PhSecretFileFormat plain_format = {
  .header = " Pinhole proxy passwords: one group per upstream, username = base64\n"
            " (password); names are percent-encoded. Keep this file mode 0600.",
};

PhSecretStore *
ph_secret_store_new_file (const char *path)
{
  PhSecretFileStore *self;

  g_return_val_if_fail (path != NULL && *path != '\0', NULL);

  self = ph_secret_file_store_new (sizeof (PhSecretFileStore), path,
                                   g_strdup_printf ("file %s", path), &plain_format);
  return &self->parent;
}
