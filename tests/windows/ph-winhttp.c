/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-winhttp.c: a stand-in for `netsh winhttp show|set|reset proxy` for
 * tests/windows/test-machine-proxy.sh: Wine 8's netsh has no winhttp context (it prints nothing
 * and sets nothing). It goes through WinHTTP's own calls, so `show` is what a WinHTTP client of
 * this (64-bit) view gets, printed as netsh prints it:
 *
 *   ph-winhttp show                  Current WinHTTP proxy settings: … Proxy Server(s) / Bypass
 * List ph-winhttp set PROXY [BYPASS]    WinHttpSetDefaultProxyConfiguration, a named proxy
 *   ph-winhttp reset                 the same, direct access
 *
 * Exit 0 when done, 1 when WinHTTP failed (its error code printed), 2 on a bad command line. */
#include <stdio.h>
#include <string.h>
#include <windows.h>
#include <winhttp.h>

static int
show (void)
{
  WINHTTP_PROXY_INFO info = { 0 };

  if (!WinHttpGetDefaultProxyConfiguration (&info))
    {
      fprintf (stderr, "WinHttpGetDefaultProxyConfiguration failed: %lu\n", GetLastError ());
      return 1;
    }
  printf ("\nCurrent WinHTTP proxy settings:\n\n");
  if (info.dwAccessType == WINHTTP_ACCESS_TYPE_NAMED_PROXY && info.lpszProxy != NULL)
    printf ("    Proxy Server(s) :  %ls\n    Bypass List     :  %ls\n\n", info.lpszProxy,
            info.lpszProxyBypass != NULL && info.lpszProxyBypass[0] != L'\0' ? info.lpszProxyBypass
                                                                             : L"(none)");
  else
    printf ("    Direct access (no proxy server).\n\n");
  if (info.lpszProxy != NULL)
    GlobalFree (info.lpszProxy);
  if (info.lpszProxyBypass != NULL)
    GlobalFree (info.lpszProxyBypass);
  return 0;
}

/* @proxy NULL: direct access. */
static int
set (const char *proxy, const char *bypass)
{
  wchar_t wproxy[1024], wbypass[4096];
  WINHTTP_PROXY_INFO info = { WINHTTP_ACCESS_TYPE_NO_PROXY, NULL, NULL };

  if (proxy != NULL)
    {
      if (!MultiByteToWideChar (CP_UTF8, 0, proxy, -1, wproxy, 1024)
          || !MultiByteToWideChar (CP_UTF8, 0, bypass != NULL ? bypass : "", -1, wbypass, 4096))
        {
          fprintf (stderr, "the proxy or the bypass list is too long\n");
          return 2;
        }
      info.dwAccessType = WINHTTP_ACCESS_TYPE_NAMED_PROXY;
      info.lpszProxy = wproxy;
      info.lpszProxyBypass = bypass != NULL ? wbypass : NULL;
    }
  if (!WinHttpSetDefaultProxyConfiguration (&info))
    {
      fprintf (stderr, "WinHttpSetDefaultProxyConfiguration failed: %lu\n", GetLastError ());
      return 1;
    }
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc == 2 && strcmp (argv[1], "show") == 0)
    return show ();
  if ((argc == 3 || argc == 4) && strcmp (argv[1], "set") == 0)
    return set (argv[2], argc == 4 ? argv[3] : NULL);
  if (argc == 2 && strcmp (argv[1], "reset") == 0)
    return set (NULL, NULL);
  fprintf (stderr, "usage: ph-winhttp show | set PROXY [BYPASS] | reset\n");
  return 2;
}
