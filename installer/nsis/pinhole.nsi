; SPDX-License-Identifier: GPL-2.0-or-later
; pinhole.nsi: the Windows installer: Pinhole into Program Files, its configuration into
; %ProgramData%\Pinhole, the agent as the service "pinhole-agent" (registered and controlled by
; pinhole-agent.exe itself), the tray at every user's logon. Built by build-installer.sh, which
; passes the defines below and generates the file lists from `meson install`.
;
; Command line (besides NSIS's own /S and /D=DIR):
;   setup /S [/CONFIG=FILE.conf]   silent; FILE.conf is copied into %ProgramData%\Pinhole\managed.d
;                                  (an IT-managed drop-in: the keys it sets are locked)
;   uninstall /S [/PURGE]          /PURGE also removes %ProgramData%\Pinhole (configuration, state,
;                                  stored credentials); without it they stay for a reinstall
; Exit codes: 0 done, 1 cancelled, 2 refused or failed (32-bit Windows, no administrator
; rights, a bad /CONFIG, a file that could not be written, the service not registered),
; 3 installed but the service did not start.

!macro PH_REQUIRE name
  !ifndef ${name}
    !error "${name} is not defined: build with installer/nsis/build-installer.sh"
  !endif
!macroend
!insertmacro PH_REQUIRE PH_VERSION
!insertmacro PH_REQUIRE PH_VERSION_QUAD
!insertmacro PH_REQUIRE PH_GENDIR
!insertmacro PH_REQUIRE PH_ICON
!insertmacro PH_REQUIRE PH_OUTFILE

Target amd64-unicode
SetCompressor /SOLID lzma
ManifestDPIAware true
ManifestSupportedOS all
RequestExecutionLevel admin

!define PH_UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Pinhole"
!define PH_RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define PH_AGENT "$INSTDIR\bin\pinhole-agent.exe"
!define PH_TRAY "$INSTDIR\bin\pinhole-tray.exe"
!define PH_MANIFEST "pinhole-files.txt"
; SYSTEM (the service) and Administrators change the configuration; users read it. Protected, so
; ProgramData's own grant (users may create files in every subfolder) does not reach managed.d,
; where a file would lock keys.
!define PH_CONFIG_SDDL "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1200a9;;;BU)"

Name "Pinhole"
OutFile "${PH_OUTFILE}"
InstallDir "$PROGRAMFILES64\Pinhole"
InstallDirRegKey HKLM "${PH_UNINST_KEY}" "InstallLocation"
BrandingText "Pinhole ${PH_VERSION}"
ShowInstDetails show
ShowUninstDetails show
; A file that cannot be written offers Retry or Cancel, never Ignore: a silent install stops
; (exit code 2) rather than leave a mix of two versions.
AllowSkipFiles off

VIProductVersion "${PH_VERSION_QUAD}"
VIFileVersion "${PH_VERSION_QUAD}"
VIAddVersionKey /LANG=0 "ProductName" "Pinhole"
VIAddVersionKey /LANG=0 "ProductVersion" "${PH_VERSION}"
VIAddVersionKey /LANG=0 "FileVersion" "${PH_VERSION}"
VIAddVersionKey /LANG=0 "FileDescription" "Pinhole ${PH_VERSION} Setup"
VIAddVersionKey /LANG=0 "CompanyName" "Pinhole contributors"
VIAddVersionKey /LANG=0 "LegalCopyright" "GPL-2.0-or-later"

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "x64.nsh"

Var PH_CONFIG_DIR  ; %ProgramData%\Pinhole
Var PH_CONFIG_ARG  ; /CONFIG=
Var PH_UPGRADE     ; 1 when a Pinhole is installed already

; --- pages -------------------------------------------------------------------------------------
!define MUI_ICON "${PH_ICON}"
!define MUI_UNICON "${PH_ICON}"
!define MUI_ABORTWARNING
; The details stay on screen: they carry the service commands' own messages.
!define MUI_FINISHPAGE_NOAUTOCLOSE
!define MUI_UNFINISHPAGE_NOAUTOCLOSE
!define MUI_LANGDLL_REGISTRY_ROOT HKLM
!define MUI_LANGDLL_REGISTRY_KEY "${PH_UNINST_KEY}"
!define MUI_LANGDLL_REGISTRY_VALUENAME "InstallerLanguage"

!insertmacro MUI_PAGE_WELCOME
!define MUI_PAGE_CUSTOMFUNCTION_PRE SkipOnUpgrade
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!ifdef PH_HAVE_TRAY
  !define MUI_FINISHPAGE_RUN
  !define MUI_FINISHPAGE_RUN_TEXT "$(PhRunTray)"
  !define MUI_FINISHPAGE_RUN_FUNCTION LaunchTray
!endif
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"
!insertmacro MUI_LANGUAGE "SimpChinese"
!include "${__FILEDIR__}\strings.nsh"

; --- shared by installer and uninstaller ------------------------------------------------------

; Every user's tray goes, so that its executable and GTK's DLLs can be replaced or removed. Asked
; first (WM_CLOSE: the tray puts the user's system proxy back and quits), then forced; a tray that
; did not get to restore does so from its journal when it next starts (or --restore-proxy below).
!macro PH_CLOSE_TRAY
  ${If} ${FileExists} "${PH_TRAY}"
    DetailPrint "$(PhClosingTray)"
    nsExec::ExecToLog '"$SYSDIR\taskkill.exe" /IM pinhole-tray.exe'
    Pop $0
    Sleep 2000
    nsExec::ExecToLog '"$SYSDIR\taskkill.exe" /F /IM pinhole-tray.exe'
    Pop $0
    ; TerminateProcess returns before the process has let go of its files.
    Sleep 500
  ${EndIf}
!macroend

; Removes what the installed version's manifest lists: files, then its directories when empty.
; Lines are "F path" or "D path", relative to $INSTDIR. A file still in use (a program this
; installer could not stop) is moved aside as FILE.pinhole-old, which Windows allows, so the new
; version can be written; it and the uninstaller's leftovers go at the next reboot.
!macro PH_REMOVE_INSTALLED_FILES un
  Function ${un}RemoveInstalledFiles
    Push $0
    Push $1
    Push $2
    Push $3
    ${If} ${FileExists} "$INSTDIR\${PH_MANIFEST}"
      FileOpen $0 "$INSTDIR\${PH_MANIFEST}" r
      ${Do}
        ClearErrors
        FileRead $0 $1
        ${IfThen} ${Errors} ${|} ${ExitDo} ${|}
        ; Drop the line end.
        ${Do}
          StrCpy $2 $1 1 -1
          ${If} $2 == "$\r"
          ${OrIf} $2 == "$\n"
            StrCpy $1 $1 -1
          ${Else}
            ${ExitDo}
          ${EndIf}
        ${Loop}
        StrCpy $2 $1 2
        StrCpy $3 $1 "" 2
        ${If} $3 == ""
          ${Continue}
        ${ElseIf} $2 == "F "
          ClearErrors
          Delete "$INSTDIR\$3"
          ${If} ${Errors}
            Delete "$INSTDIR\$3.pinhole-old"
            Rename "$INSTDIR\$3" "$INSTDIR\$3.pinhole-old"
            Delete /REBOOTOK "$INSTDIR\$3.pinhole-old"
          ${EndIf}
        ${ElseIf} $2 == "D "
          Delete /REBOOTOK "$INSTDIR\$3\*.pinhole-old"
          RMDir /REBOOTOK "$INSTDIR\$3"
        ${EndIf}
      ${Loop}
      FileClose $0
      Delete /REBOOTOK "$INSTDIR\${PH_MANIFEST}"
    ${EndIf}
    Pop $3
    Pop $2
    Pop $1
    Pop $0
  FunctionEnd
!macroend
!insertmacro PH_REMOVE_INSTALLED_FILES ""
!insertmacro PH_REMOVE_INSTALLED_FILES "un."

!macro PH_INIT
  SetShellVarContext all
  SetRegView 64
  StrCpy $PH_CONFIG_DIR "$APPDATA\Pinhole"
!macroend

; --- installer ----------------------------------------------------------------------------------

Function .onInit
  !insertmacro PH_INIT
  !insertmacro MUI_LANGDLL_DISPLAY

  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP|MB_OK "$(PhNeeds64Bit)" /SD IDOK
    SetErrorLevel 2
    Quit
  ${EndIf}
  UserInfo::GetAccountType
  Pop $0
  ${If} $0 != "Admin"
    MessageBox MB_ICONSTOP|MB_OK "$(PhNeedsAdmin)" /SD IDOK
    SetErrorLevel 2
    Quit
  ${EndIf}

  ; /CONFIG=FILE: checked now, before anything changes.
  ClearErrors
  Call ParseConfigOption
  ${If} ${Errors}
  ${OrIf} $PH_CONFIG_ARG == "-"
    StrCpy $PH_CONFIG_ARG ""
    MessageBox MB_ICONSTOP|MB_OK "$(PhConfigMissing)" /SD IDOK
    SetErrorLevel 2
    Quit
  ${ElseIf} $PH_CONFIG_ARG == ""
  ${ElseIfNot} ${FileExists} "$PH_CONFIG_ARG"
    MessageBox MB_ICONSTOP|MB_OK "$(PhConfigMissing)" /SD IDOK
    SetErrorLevel 2
    Quit
  ${Else}
    StrCpy $0 $PH_CONFIG_ARG 5 -5
    ${If} $0 != ".conf"
      MessageBox MB_ICONSTOP|MB_OK "$(PhConfigNotConf)" /SD IDOK
      SetErrorLevel 2
      Quit
    ${EndIf}
    ; A relative path means the directory setup was started in, which SetOutPath changes.
    GetFullPathName $PH_CONFIG_ARG $PH_CONFIG_ARG
  ${EndIf}

  ; An installed Pinhole is upgraded where it is.
  StrCpy $PH_UPGRADE 0
  ReadRegStr $0 HKLM "${PH_UNINST_KEY}" "InstallLocation"
  ${If} $0 != ""
  ${AndIf} ${FileExists} "$0\*.*"
    StrCpy $INSTDIR $0
    StrCpy $PH_UPGRADE 1
  ${EndIf}
FunctionEnd

; $PH_CONFIG_ARG from /CONFIG=FILE on the command line, "" without one; the error flag when
; /CONFIG has no file. FileFunc's GetOptions misses a whole argument in quotes, which is how a
; path with spaces arrives from most tools ("/CONFIG=C:\IT files\pinhole.conf"), and would
; quietly install without the drop-in; this takes that form, /CONFIG="C:\IT files\x.conf"
; (cmd's) and an unquoted path.
Function ParseConfigOption
  Push $0
  Push $1
  Push $2
  Push $3
  Push $4
  StrCpy $PH_CONFIG_ARG ""
  ${GetParameters} $0
  StrLen $1 $0
  StrCpy $2 0
  ${DoWhile} $2 < $1
    StrCpy $3 $0 7 $2
    ${If} $3 == "/CONFIG"
      IntOp $2 $2 + 7
      StrCpy $3 $0 1 $2
      ${If} $3 != "="
        SetErrors
        ${Break}
      ${EndIf}
      IntOp $2 $2 + 1
      ; The character that ends the value: a quote when the argument or the value is quoted.
      StrCpy $4 " "
      IntOp $3 $2 - 9
      ${If} $3 >= 0
        StrCpy $3 $0 1 $3
        ${IfThen} $3 == "$\"" ${|} StrCpy $4 "$\"" ${|}
      ${EndIf}
      StrCpy $3 $0 1 $2
      ${If} $3 == "$\""
        StrCpy $4 "$\""
        IntOp $2 $2 + 1
      ${EndIf}
      ${Do}
        StrCpy $3 $0 1 $2
        ${IfThen} $3 == "" ${|} ${ExitDo} ${|}
        ${IfThen} $3 == $4 ${|} ${ExitDo} ${|}
        StrCpy $PH_CONFIG_ARG "$PH_CONFIG_ARG$3"
        IntOp $2 $2 + 1
      ${Loop}
      ; Given, but empty: say so rather than install without it.
      ${IfThen} $PH_CONFIG_ARG == "" ${|} StrCpy $PH_CONFIG_ARG "-" ${|}
      ${Break}
    ${EndIf}
    IntOp $2 $2 + 1
  ${Loop}
  Pop $4
  Pop $3
  Pop $2
  Pop $1
  Pop $0
FunctionEnd

Function SkipOnUpgrade
  ${If} $PH_UPGRADE == 1
    Abort
  ${EndIf}
FunctionEnd

!ifdef PH_HAVE_TRAY
; The finish page's "start now": through Explorer, so that the tray runs as the logged-on user
; and not elevated like this installer.
Function LaunchTray
  Exec '"$WINDIR\explorer.exe" "${PH_TRAY}"'
FunctionEnd
!endif

; Replaces the DACL of $PH_CONFIG_DIR (and, by inheritance, of what is in it) with
; PH_CONFIG_SDDL. Files that protect their own DACL (the stored credentials) keep it.
Function RestrictConfigDir
  ; ?e: the call's GetLastError() on the stack.
  System::Call 'advapi32::ConvertStringSecurityDescriptorToSecurityDescriptorW(w "${PH_CONFIG_SDDL}", i 1, *p .r1, p 0) i .r0 ?e'
  Pop $2
  ${If} $0 == 0
    StrCpy $0 $2
    DetailPrint "$(PhAclFailed)"
    Return
  ${EndIf}
  System::Call 'advapi32::GetSecurityDescriptorDacl(p r1, *i .r2, *p .r3, *i .r4) i .r0'
  ; SE_FILE_OBJECT, DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION; returns
  ; the Win32 error code itself.
  System::Call 'advapi32::SetNamedSecurityInfoW(w "$PH_CONFIG_DIR", i 1, i 0x80000004, p 0, p 0, p r3, p 0) i .r0'
  ${If} $0 != 0
    DetailPrint "$(PhAclFailed)"
  ${EndIf}
  System::Call 'kernel32::LocalFree(p r1)'
FunctionEnd

Section "Pinhole" SecPinhole
  SectionIn RO

  ; 1. Stop what runs from $INSTDIR: the service (an upgrade), every user's tray.
  ${If} ${FileExists} "${PH_AGENT}"
    DetailPrint "$(PhStoppingService)"
    nsExec::ExecToLog '"${PH_AGENT}" --stop-service'
    Pop $0
  ${EndIf}
  !insertmacro PH_CLOSE_TRAY

  ; 2. Replace the files: the previous version's go first, so none of them lingers.
  Call RemoveInstalledFiles
  !include "${PH_GENDIR}\files.nsh"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; 3. The configuration: created once, never overwritten. The directory is locked down first:
  ; ProgramData lets any user create it, or files in it, before Pinhole is installed, and an
  ; owner keeps the right to change the DACL, so Administrators take ownership of all of it.
  CreateDirectory "$PH_CONFIG_DIR\managed.d"
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$PH_CONFIG_DIR" /setowner *S-1-5-32-544 /T /C /Q'
  Pop $0
  Call RestrictConfigDir
  !include "${PH_GENDIR}\programdata.nsh"
  ${If} ${FileExists} "$PH_CONFIG_DIR\pinhole.conf"
    DetailPrint "$(PhConfigKept)"
  ${Else}
    CopyFiles /SILENT /FILESONLY "$INSTDIR\share\pinhole\pinhole.conf.example" "$PH_CONFIG_DIR\pinhole.conf"
    DetailPrint "$(PhConfigCreated)"
  ${EndIf}
  ${If} $PH_CONFIG_ARG != ""
    ${GetFileName} "$PH_CONFIG_ARG" $1
    StrCpy $1 "$PH_CONFIG_DIR\managed.d\$1"
    ClearErrors
    CopyFiles /SILENT /FILESONLY "$PH_CONFIG_ARG" "$1"
    ${If} ${Errors}
    ${OrIfNot} ${FileExists} "$1"
      MessageBox MB_ICONSTOP|MB_OK "$(PhConfigCopyFailed)" /SD IDOK
      SetErrorLevel 2
      Abort
    ${EndIf}
    DetailPrint "$(PhConfigInstalled)"
  ${EndIf}

  ; 4. Add/Remove Programs, the tray's shortcut and its start at every user's logon.
  WriteRegStr HKLM "${PH_UNINST_KEY}" "DisplayName" "Pinhole"
  WriteRegStr HKLM "${PH_UNINST_KEY}" "DisplayVersion" "${PH_VERSION}"
  WriteRegStr HKLM "${PH_UNINST_KEY}" "Publisher" "Pinhole contributors"
  WriteRegStr HKLM "${PH_UNINST_KEY}" "DisplayIcon" "$INSTDIR\share\pinhole\pinhole.ico"
  WriteRegStr HKLM "${PH_UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${PH_UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${PH_UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${PH_UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${PH_UNINST_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKLM "${PH_UNINST_KEY}" "EstimatedSize" $0
!ifdef PH_HAVE_TRAY
  CreateShortcut "$SMPROGRAMS\Pinhole.lnk" "${PH_TRAY}" "" "$INSTDIR\share\pinhole\pinhole.ico" 0 \
    SW_SHOWNORMAL "" "$(PhShortcutComment)"
  WriteRegStr HKLM "${PH_RUN_KEY}" "Pinhole" '"${PH_TRAY}"'
!endif

  ; 5. The service: registered (or updated to this path) and started by the agent itself.
  DetailPrint "$(PhInstallingService)"
  nsExec::ExecToLog '"${PH_AGENT}" --install-service'
  Pop $0
  ${If} $0 != 0
    MessageBox MB_ICONSTOP|MB_OK "$(PhServiceInstallFailed)" /SD IDOK
    SetErrorLevel 2
    Abort
  ${EndIf}
  DetailPrint "$(PhStartingService)"
  nsExec::ExecToLog '"${PH_AGENT}" --start-service'
  Pop $0
  ${If} $0 != 0
    MessageBox MB_ICONEXCLAMATION|MB_OK "$(PhServiceStartFailed)" /SD IDOK
    SetErrorLevel 3
  ${EndIf}
SectionEnd

; --- uninstaller --------------------------------------------------------------------------------

Function un.onInit
  !insertmacro PH_INIT
  !insertmacro MUI_UNGETLANGUAGE
FunctionEnd

Section "Uninstall"
  ; The tray first, then it puts back each proxy setting it changed for this user.
  !insertmacro PH_CLOSE_TRAY
  ${If} ${FileExists} "${PH_TRAY}"
    DetailPrint "$(PhRestoringProxy)"
    nsExec::ExecToLog /TIMEOUT=30000 '"${PH_TRAY}" --restore-proxy'
    Pop $0
  ${EndIf}

  ${If} ${FileExists} "${PH_AGENT}"
    DetailPrint "$(PhRemovingService)"
    nsExec::ExecToLog '"${PH_AGENT}" --uninstall-service'
    Pop $0
    ${If} $0 != 0
      MessageBox MB_ICONEXCLAMATION|MB_OK "$(PhServiceRemoveFailed)" /SD IDOK
    ${EndIf}
    ; The service put WinHTTP's default proxy ([system-proxy] machine=winhttp) back as it
    ; stopped; one that did not get to (a crash) left its journal, which this follows. Nothing
    ; to do (exit 0) without one.
    DetailPrint "$(PhRestoringMachineProxy)"
    nsExec::ExecToLog '"${PH_AGENT}" --restore-machine-proxy'
    Pop $0
  ${EndIf}

  DeleteRegValue HKLM "${PH_RUN_KEY}" "Pinhole"
  Delete "$SMPROGRAMS\Pinhole.lnk"
  Call un.RemoveInstalledFiles
  Delete "$INSTDIR\uninstall.exe"
  RMDir /REBOOTOK "$INSTDIR"
  DeleteRegKey HKLM "${PH_UNINST_KEY}"

  ${GetParameters} $0
  ClearErrors
  ${GetOptions} $0 "/PURGE" $1
  ${If} ${Errors}
    !include "${PH_GENDIR}\programdata-uninstall.nsh"
    DetailPrint "$(PhKeepingConfig)"
  ${Else}
    DetailPrint "$(PhPurgingConfig)"
    RMDir /r /REBOOTOK "$PH_CONFIG_DIR"
  ${EndIf}
SectionEnd
