/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-system-proxy-private.h: what one desktop's proxy backend implements for
 * ph-system-proxy.c. Values cross this line as text in the backend's own notation (GVariant
 * text for GSettings, the literal string for KConfig), so that the journal can hold them. */
#pragma once

#include "ph-system-proxy.h"

G_BEGIN_DECLS

typedef struct _PhProxyBackend PhProxyBackend;

/* One key that Pinhole sets and the value it sets it to. */
typedef struct
{
  char *key;
  char *value;
} PhProxyWrite;

/* Inline, so that a backend needs nothing from ph-system-proxy.c (which needs the backends). */
static inline PhProxyWrite *
ph_proxy_write_new (const char *key, const char *value)
{
  PhProxyWrite *write = g_new0 (PhProxyWrite, 1);

  write->key = g_strdup (key);
  write->value = g_strdup (value);
  return write;
}

static inline void
ph_proxy_write_free (PhProxyWrite *write)
{
  if (write == NULL)
    return;
  g_free (write->key);
  g_free (write->value);
  g_free (write);
}

typedef struct
{
  /* Appends (PhProxyWrite *) to @writes: the keys to set so that http and https go to
   * @host:@port and @bypass goes direct, in the order to set them (the key that turns the
   * proxy on last). @host is already in URL form ("[::1]" for IPv6). With @pac_url (not
   * NULL), the desktop's automatic configuration from that URL instead, @host and @port
   * unused. Changes nothing; fails when a key cannot be written, so that enable() can stop
   * before it starts. */
  gboolean (*plan) (PhProxyBackend *backend, const char *host, guint port, const char *pac_url,
                    const char *const *bypass, GPtrArray *writes, GError **error);
  /* *value: the key's current value, NULL when it is not set (a default applies). */
  gboolean (*read) (PhProxyBackend *backend, const char *key, char **value, GError **error);
  /* @value NULL unsets the key, so that the default applies again. */
  gboolean (*write) (PhProxyBackend *backend, const char *key, const char *value, GError **error);
  /* After a batch of writes: makes them durable and tells running applications. */
  gboolean (*commit) (PhProxyBackend *backend, GError **error);
  /* Frees what the backend added; the common part frees the rest. */
  void (*finalize) (PhProxyBackend *backend);
} PhProxyBackendVTable;

/* Backends embed this as their first member. */
struct _PhProxyBackend
{
  const PhProxyBackendVTable *vtable;
  const char *name; /* static: the journal's group and get_backends() */
};

/* Each returns NULL when its desktop's setting is not there to change. */
#ifdef PH_HAVE_PROXY_GNOME
PhProxyBackend *ph_proxy_backend_gnome_new (void);
#endif
#ifdef PH_HAVE_PROXY_KDE
PhProxyBackend *ph_proxy_backend_kde_new (void);
#endif
#ifdef PH_HAVE_PROXY_WININET
PhProxyBackend *ph_proxy_backend_wininet_new (void);
/* Here for their unit tests. @bypass in WinINet's syntax (';'-separated wildcards, "127.*" for
 * 127.0.0.0/8, "[::1]"); an entry WinINet cannot express is left out with a message. */
char *ph_proxy_wininet_bypass_list (const char *const *bypass);
/* The journal key of @field ("flags", "server", "bypass", "autoconfig-url") of the LAN (@entry
 * NULL) or of a dial-up/VPN phonebook entry, and back; *@entry NULL for the LAN. */
char *ph_proxy_wininet_key (const char *entry, const char *field);
gboolean ph_proxy_wininet_split_key (const char *key, char **entry, char **field);
#endif

G_END_DECLS
