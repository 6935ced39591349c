/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-network-watch-win32.c: the network watch on Windows: the IP Helper's interface and address
 * notifications (NotifyIpInterfaceChange, NotifyUnicastIpAddressChange) and the power
 * notification PBT_APMRESUMEAUTOMATIC (PowerRegisterSuspendResumeNotification, a callback that
 * needs no window, so it works in the service too). Both come on a thread pool's thread and are
 * handed to the watch's main context. */
#define G_LOG_DOMAIN "pinhole-platform"

/* winsock2.h before anything that may bring windows.h. */
#include <winsock2.h>
#include <ws2ipdef.h>
#include <iphlpapi.h>
#include <netioapi.h>
#include <windows.h>

#include "ph-network-watch-private.h"

/* powrprof.h of mingw-w64 declares neither of these: PowerRegisterSuspendResumeNotification is
 * looked up at run time (Windows 8 and later), with the types its documentation gives. */
#define PH_DEVICE_NOTIFY_CALLBACK 2
typedef ULONG (CALLBACK *PhPowerCallback) (PVOID context, ULONG type, PVOID setting);
typedef struct
{
  PhPowerCallback callback;
  PVOID context;
} PhPowerSubscribe;
typedef DWORD (WINAPI *PhPowerRegisterFunc) (DWORD flags, HANDLE recipient, PVOID *handle);
typedef DWORD (WINAPI *PhPowerUnregisterFunc) (PVOID handle);

/* What the notification threads may touch: a reference-counted box with the main context to
 * report in and, for the main context only, the watch (cleared when the watch goes). */
typedef struct
{
  gatomicrefcount rc;
  GMainContext *context;
  PhNetworkWatch *watch; /* read and cleared in @context only */
} Inbox;

typedef struct
{
  Inbox *inbox;
  PhNetworkEvent event;
  const char *detail; /* static */
} Delivery;

struct _PhNetworkSources
{
  Inbox *inbox;
  HANDLE interface_handle;
  HANDLE address_handle;
  PVOID power_handle;
  PhPowerUnregisterFunc power_unregister;
  PhPowerSubscribe power; /* the documentation wants it to outlive the registration */
};

static Inbox *
inbox_ref (Inbox *inbox)
{
  g_atomic_ref_count_inc (&inbox->rc);
  return inbox;
}

static void
inbox_unref (Inbox *inbox)
{
  if (!g_atomic_ref_count_dec (&inbox->rc))
    return;
  g_main_context_unref (inbox->context);
  g_free (inbox);
}

static gboolean
deliver (gpointer data)
{
  Delivery *d = data;

  if (d->inbox->watch != NULL)
    ph_network_watch_report (d->inbox->watch, d->event, d->detail);
  return G_SOURCE_REMOVE;
}

static void
delivery_free (gpointer data)
{
  Delivery *d = data;

  inbox_unref (d->inbox);
  g_free (d);
}

/* On a notification thread. */
static void
post (Inbox *inbox, PhNetworkEvent event, const char *detail)
{
  Delivery *d = g_new0 (Delivery, 1);
  GSource *source = g_idle_source_new ();

  d->inbox = inbox_ref (inbox);
  d->event = event;
  d->detail = detail;
  g_source_set_callback (source, deliver, d, delivery_free);
  g_source_attach (source, inbox->context);
  g_source_unref (source);
}

static VOID NETIOAPI_API_
on_interface_change (PVOID context, PMIB_IPINTERFACE_ROW row, MIB_NOTIFICATION_TYPE type)
{
  if (type == MibInitialNotification)
    return;
  post (context, PH_NETWORK_CHANGED,
        type == MibAddInstance      ? "an interface came up"
        : type == MibDeleteInstance ? "an interface went away"
                                    : "an interface changed");
}

static VOID NETIOAPI_API_
on_address_change (PVOID context, PMIB_UNICASTIPADDRESS_ROW row, MIB_NOTIFICATION_TYPE type)
{
  if (type == MibInitialNotification)
    return;
  post (context, PH_NETWORK_CHANGED,
        type == MibAddInstance      ? "an address was added"
        : type == MibDeleteInstance ? "an address was removed"
                                    : "an address changed");
}

static ULONG CALLBACK
on_power (PVOID context, ULONG type, PVOID setting)
{
  /* Automatic resume comes for every wake-up, with or without a user at the keyboard. */
  if (type == PBT_APMRESUMEAUTOMATIC)
    post (context, PH_NETWORK_RESUMED, "Windows woke from sleep");
  else if (type == PBT_APMSUSPEND)
    g_debug ("Windows is going to sleep");
  return ERROR_SUCCESS;
}

PhNetworkSources *
ph_network_sources_new (PhNetworkWatch *watch)
{
  PhNetworkSources *s = g_new0 (PhNetworkSources, 1);
  HMODULE powrprof;
  DWORD err;

  s->inbox = g_new0 (Inbox, 1);
  g_atomic_ref_count_init (&s->inbox->rc);
  s->inbox->context = g_main_context_ref_thread_default ();
  s->inbox->watch = watch;

  err = NotifyIpInterfaceChange (AF_UNSPEC, on_interface_change, s->inbox, FALSE,
                                 &s->interface_handle);
  if (err != NO_ERROR)
    {
      g_debug ("NotifyIpInterfaceChange failed (%lu): no interface events", (gulong) err);
      s->interface_handle = NULL;
    }
  err = NotifyUnicastIpAddressChange (AF_UNSPEC, on_address_change, s->inbox, FALSE,
                                      &s->address_handle);
  if (err != NO_ERROR)
    {
      g_debug ("NotifyUnicastIpAddressChange failed (%lu): no address events", (gulong) err);
      s->address_handle = NULL;
    }

  powrprof = LoadLibraryExW (L"powrprof.dll", NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
  if (powrprof != NULL)
    {
      PhPowerRegisterFunc reg = (PhPowerRegisterFunc) (void (*) (void)) GetProcAddress (
          powrprof, "PowerRegisterSuspendResumeNotification");
      s->power_unregister = (PhPowerUnregisterFunc) (void (*) (void)) GetProcAddress (
          powrprof, "PowerUnregisterSuspendResumeNotification");
      s->power.callback = on_power;
      s->power.context = s->inbox;
      if (reg == NULL || s->power_unregister == NULL)
        g_debug ("no PowerRegisterSuspendResumeNotification: no wake-up events");
      else if ((err = reg (PH_DEVICE_NOTIFY_CALLBACK, &s->power, &s->power_handle))
               != ERROR_SUCCESS)
        {
          g_debug ("PowerRegisterSuspendResumeNotification failed (%lu): no wake-up events",
                   (gulong) err);
          s->power_handle = NULL;
        }
      /* powrprof.dll stays loaded: the registration calls into it. */
    }
  return s;
}

void
ph_network_sources_free (PhNetworkSources *s)
{
  if (s == NULL)
    return;
  /* Each of these waits for a callback under way, so none runs after them. */
  if (s->interface_handle != NULL)
    CancelMibChangeNotify2 (s->interface_handle);
  if (s->address_handle != NULL)
    CancelMibChangeNotify2 (s->address_handle);
  if (s->power_handle != NULL)
    s->power_unregister (s->power_handle);
  /* Deliveries already posted find no watch. */
  s->inbox->watch = NULL;
  inbox_unref (s->inbox);
  g_free (s);
}
