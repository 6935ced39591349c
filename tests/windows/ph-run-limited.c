/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ph-run-limited.c (tests, Windows): ph-run-limited.exe PROGRAM [ARG...] runs PROGRAM with the
 * calling administrator's filtered token (TokenLinkedToken of an elevated token: what Windows
 * gives an administrator's programs unless UAC approves more; Wine 8 has it too), with the same
 * standard handles, waits, and exits with its exit code. So a test under Wine can be a user the
 * agent does not let configure it: the tray and pinholectl as a standard user would run them. */
#include <glib.h>

#include <windows.h>

int
main (void)
{
  HANDLE token = NULL;
  HANDLE primary = NULL;
  TOKEN_LINKED_TOKEN linked = { 0 };
  DWORD len = sizeof linked;
  STARTUPINFOW si = { sizeof si };
  PROCESS_INFORMATION pi;
  DWORD code = 1;
  wchar_t *line = GetCommandLineW ();
  int argc = 0;
  wchar_t **argv = CommandLineToArgvW (line, &argc);
  const wchar_t *rest;

  if (argv == NULL || argc < 2)
    {
      g_printerr ("usage: ph-run-limited.exe PROGRAM [ARG...]\n");
      return 2;
    }
  /* The command line after our own program's name, as it was written. */
  rest = line;
  if (*rest == L'"')
    rest = wcschr (rest + 1, L'"') + 1;
  else
    while (*rest != L'\0' && *rest != L' ' && *rest != L'\t')
      rest++;
  while (*rest == L' ' || *rest == L'\t')
    rest++;
  if (!OpenProcessToken (GetCurrentProcess (), TOKEN_QUERY, &token)
      || !GetTokenInformation (token, TokenLinkedToken, &linked, len, &len)
      || !DuplicateTokenEx (linked.LinkedToken, MAXIMUM_ALLOWED, NULL, SecurityImpersonation,
                            TokenPrimary, &primary))
    {
      g_printerr ("ph-run-limited: no filtered token: %lu\n", GetLastError ());
      return 2;
    }
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = GetStdHandle (STD_INPUT_HANDLE);
  si.hStdOutput = GetStdHandle (STD_OUTPUT_HANDLE);
  si.hStdError = GetStdHandle (STD_ERROR_HANDLE);
  if (!CreateProcessAsUserW (primary, NULL, (wchar_t *) rest, NULL, NULL, TRUE, 0, NULL, NULL, &si,
                             &pi))
    {
      g_printerr ("ph-run-limited: cannot start the program: %lu\n", GetLastError ());
      return 2;
    }
  WaitForSingleObject (pi.hProcess, INFINITE);
  GetExitCodeProcess (pi.hProcess, &code);
  CloseHandle (pi.hThread);
  CloseHandle (pi.hProcess);
  CloseHandle (primary);
  CloseHandle (linked.LinkedToken);
  CloseHandle (token);
  LocalFree (argv);
  return (int) code;
}
