/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-proxy.c: one cloud proxy's state: name, TLS contexts, health and backoff, addresses, its
 * HTTP/2 connection. */
#define G_LOG_DOMAIN "pinhole-upstream"

#include "ph-proxy.h"

#include <string.h>

/* A proxy marked down is tried again in the background after this long, doubling up to
 * DOWN_MAX_MS while it stays down. */
#define DOWN_MIN_MS 1000
#define DOWN_MAX_MS 60000

struct _PhProxy
{
  guint index;
  char *name;
  char *host;
  guint port;
  PhTlsContext *tls;
  GPtrArray *h2; /* its HTTP/2 sessions (references), freed with h2_free; NULL when none */
  GDestroyNotify h2_free;
  PhProxyH2 h2_state;
  PhProxyHealth health;
  GError *error;
  gint64 retry_at_us;
  guint down_ms;
  GStrv addresses;
  GCancellable *cancellable;
  PhProxyChanged changed;
  gpointer changed_data;
};

PhProxy *
ph_proxy_new (PhConfig *config, guint index, PhProxyChanged changed, gpointer user_data,
              GError **error)
{
  PhProxy *p = g_new0 (PhProxy, 1);

  p->index = index;
  p->name = ph_config_dup_proxy_name (config, index);
  p->host = g_strdup (ph_config_get_proxy_host (config, index));
  p->port = ph_config_get_proxy_port (config, index);
  p->down_ms = DOWN_MIN_MS;
  p->cancellable = g_cancellable_new ();
  p->changed = changed;
  p->changed_data = user_data;
  p->tls = ph_tls_context_new (config, ph_config_get_proxy_server_name (config, index), error);
  if (p->tls == NULL)
    {
      ph_proxy_free (p);
      return NULL;
    }
#ifdef PH_HAVE_NGHTTP2
  if (ph_config_get_http2 (config) != PH_HTTP2_OFF)
    {
      static const char *const alpn[] = { "h2", "http/1.1", NULL };

      /* Offered only where ph-upstream asks (ph_tls_handshake_async_alpn). */
      ph_tls_context_set_alpn (p->tls, alpn);
    }
#endif
  return p;
}

void
ph_proxy_free (PhProxy *p)
{
  g_cancellable_cancel (p->cancellable);
  g_clear_object (&p->cancellable);
  if (p->tls != NULL)
    ph_tls_context_unref (p->tls);
  ph_proxy_clear_h2 (p);
  g_free (p->name);
  g_free (p->host);
  g_clear_error (&p->error);
  g_strfreev (p->addresses);
  g_free (p);
}

guint
ph_proxy_get_index (const PhProxy *p)
{
  return p->index;
}

const char *
ph_proxy_get_name (const PhProxy *p)
{
  return p->name;
}

const char *
ph_proxy_get_host (const PhProxy *p)
{
  return p->host;
}

guint
ph_proxy_get_port (const PhProxy *p)
{
  return p->port;
}

PhTlsContext *
ph_proxy_get_tls (const PhProxy *p)
{
  return p->tls;
}

guint
ph_proxy_get_n_h2 (const PhProxy *p)
{
  return p->h2 != NULL ? p->h2->len : 0;
}

gpointer
ph_proxy_get_h2 (const PhProxy *p, guint i)
{
  g_return_val_if_fail (i < ph_proxy_get_n_h2 (p), NULL);
  return g_ptr_array_index (p->h2, i);
}

void
ph_proxy_add_h2 (PhProxy *p, gpointer session, GDestroyNotify free_func)
{
  if (p->h2 == NULL)
    p->h2 = g_ptr_array_new ();
  p->h2_free = free_func;
  g_ptr_array_add (p->h2, session);
}

gboolean
ph_proxy_remove_h2 (PhProxy *p, gpointer session)
{
  if (p->h2 == NULL || !g_ptr_array_remove (p->h2, session))
    return FALSE;
  if (p->h2_free != NULL)
    p->h2_free (session);
  return TRUE;
}

void
ph_proxy_clear_h2 (PhProxy *p)
{
  g_autoptr (GPtrArray) all = g_steal_pointer (&p->h2);

  /* Taken first: a free function may call back. */
  for (guint i = 0; all != NULL && i < all->len; i++)
    if (p->h2_free != NULL)
      p->h2_free (g_ptr_array_index (all, i));
}

PhProxyH2
ph_proxy_get_h2_state (const PhProxy *p)
{
  return p->h2_state;
}

void
ph_proxy_set_h2_state (PhProxy *p, PhProxyH2 state)
{
  p->h2_state = state;
}

PhProxyHealth
ph_proxy_get_health (const PhProxy *p)
{
  return p->health;
}

gboolean
ph_proxy_is_usable (const PhProxy *p)
{
  return p->health == PH_PROXY_UP || p->health == PH_PROXY_UNKNOWN;
}

const GError *
ph_proxy_get_error (const PhProxy *p)
{
  return p->error;
}

gint64
ph_proxy_get_retry_at (const PhProxy *p)
{
  return p->retry_at_us;
}

GCancellable *
ph_proxy_get_cancellable (const PhProxy *p)
{
  return p->cancellable;
}

const char *const *
ph_proxy_get_addresses (const PhProxy *p)
{
  return (const char *const *) p->addresses;
}

void
ph_proxy_set_health (PhProxy *p, PhProxyHealth health, const GError *error)
{
  PhProxyHealth was = p->health;
  gint64 now = g_get_monotonic_time ();

  g_clear_error (&p->error);
  if (error != NULL)
    p->error = g_error_copy (error);
  p->health = health;
  if (health == PH_PROXY_DOWN || health == PH_PROXY_REFUSED)
    {
      /* A failure of the probe that was due schedules the next one, further off; a request's
       * own attempt while a probe is scheduled (its last resort) does not push that back. */
      if (was != health || p->retry_at_us <= now)
        {
          p->retry_at_us = now + (gint64) p->down_ms * 1000;
          p->down_ms = MIN (p->down_ms * 2, DOWN_MAX_MS);
        }
    }
  else
    {
      p->retry_at_us = 0;
      p->down_ms = DOWN_MIN_MS;
    }
  if (was != health)
    p->changed (p, was, p->changed_data);
}

static void
resolved (GObject *source, GAsyncResult *result, gpointer data)
{
  g_autoptr (GError) error = NULL;
  GList *list = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);
  g_autoptr (GStrvBuilder) b = NULL;
  PhProxy *p = data;

  /* Cancelled: @p may be gone. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  b = g_strv_builder_new ();
  for (GList *l = list; l != NULL; l = l->next)
    {
      g_autofree char *text = g_inet_address_to_string (l->data);
      g_strv_builder_add (b, text);
    }
  g_resolver_free_addresses (list);
  g_strfreev (p->addresses);
  p->addresses = g_strv_builder_end (b);
  if (error != NULL)
    g_debug ("resolving %s: %s", p->name, error->message);
  p->changed (p, p->health, p->changed_data);
}

void
ph_proxy_resolve (PhProxy *p)
{
  g_autoptr (GResolver) resolver = NULL;

  if (g_hostname_is_ip_address (p->host))
    {
      const char *one[] = { p->host, NULL };

      g_strfreev (p->addresses);
      p->addresses = g_strdupv ((char **) one);
      return;
    }
  resolver = g_resolver_get_default ();
  g_resolver_lookup_by_name_async (resolver, p->host, p->cancellable, resolved, p);
}

void
ph_proxy_forget (PhProxy *p)
{
  g_cancellable_cancel (p->cancellable);
  g_object_unref (p->cancellable);
  p->cancellable = g_cancellable_new ();
  p->health = PH_PROXY_UNKNOWN;
  g_clear_error (&p->error);
  p->retry_at_us = 0;
  p->down_ms = DOWN_MIN_MS;
  /* Its HTTP/2 connection was made over the old network: new tunnels make another (the open
   * ones keep theirs while it works). */
  ph_proxy_clear_h2 (p);
  p->h2_state = PH_PROXY_H2_UNKNOWN;
}
