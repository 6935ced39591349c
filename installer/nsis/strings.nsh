; SPDX-License-Identifier: GPL-2.0-or-later
; strings.nsh: the installer's own messages, in English and Simplified Chinese (MUI2 translates
; its pages itself). Variables in a string are filled in when the string is shown.

LangString PhNeeds64Bit ${LANG_ENGLISH} "Pinhole needs 64-bit Windows."
LangString PhNeeds64Bit ${LANG_SIMPCHINESE} "Pinhole 需要 64 位 Windows。"

LangString PhNeedsAdmin ${LANG_ENGLISH} "Installing Pinhole needs administrator rights."
LangString PhNeedsAdmin ${LANG_SIMPCHINESE} "安装 Pinhole 需要管理员权限。"

LangString PhConfigMissing ${LANG_ENGLISH} "The configuration file given with /CONFIG= was not found:$\r$\n$PH_CONFIG_ARG"
LangString PhConfigMissing ${LANG_SIMPCHINESE} "找不到 /CONFIG= 指定的配置文件：$\r$\n$PH_CONFIG_ARG"

LangString PhConfigNotConf ${LANG_ENGLISH} "The file given with /CONFIG= must end in .conf: the agent reads only *.conf files from managed.d.$\r$\n$PH_CONFIG_ARG"
LangString PhConfigNotConf ${LANG_SIMPCHINESE} "/CONFIG= 指定的文件名必须以 .conf 结尾：代理只读取 managed.d 中的 *.conf 文件。$\r$\n$PH_CONFIG_ARG"

LangString PhConfigCopyFailed ${LANG_ENGLISH} "Could not copy $PH_CONFIG_ARG to $1."
LangString PhConfigCopyFailed ${LANG_SIMPCHINESE} "无法将 $PH_CONFIG_ARG 复制到 $1。"

LangString PhConfigInstalled ${LANG_ENGLISH} "Installed the managed configuration $1."
LangString PhConfigInstalled ${LANG_SIMPCHINESE} "已安装托管配置 $1。"

LangString PhConfigCreated ${LANG_ENGLISH} "Created $PH_CONFIG_DIR\pinhole.conf from the example."
LangString PhConfigCreated ${LANG_SIMPCHINESE} "已根据示例创建 $PH_CONFIG_DIR\pinhole.conf。"

LangString PhConfigKept ${LANG_ENGLISH} "Keeping the existing $PH_CONFIG_DIR\pinhole.conf."
LangString PhConfigKept ${LANG_SIMPCHINESE} "保留现有的 $PH_CONFIG_DIR\pinhole.conf。"

LangString PhAclFailed ${LANG_ENGLISH} "Could not restrict access to $PH_CONFIG_DIR (error $0)."
LangString PhAclFailed ${LANG_SIMPCHINESE} "无法限制对 $PH_CONFIG_DIR 的访问（错误 $0）。"

LangString PhStoppingService ${LANG_ENGLISH} "Stopping the Pinhole Agent service..."
LangString PhStoppingService ${LANG_SIMPCHINESE} "正在停止 Pinhole Agent 服务……"

LangString PhInstallingService ${LANG_ENGLISH} "Registering the Pinhole Agent service..."
LangString PhInstallingService ${LANG_SIMPCHINESE} "正在注册 Pinhole Agent 服务……"

LangString PhStartingService ${LANG_ENGLISH} "Starting the Pinhole Agent service..."
LangString PhStartingService ${LANG_SIMPCHINESE} "正在启动 Pinhole Agent 服务……"

LangString PhServiceInstallFailed ${LANG_ENGLISH} "The Pinhole Agent service could not be registered (exit code $0). The details above say why."
LangString PhServiceInstallFailed ${LANG_SIMPCHINESE} "无法注册 Pinhole Agent 服务（退出代码 $0）。原因见上方的详细信息。"

LangString PhServiceStartFailed ${LANG_ENGLISH} "Pinhole is installed, but the Pinhole Agent service did not start (exit code $0). See the Windows Event Log, then start it in Services or with:$\r$\n$\"$INSTDIR\bin\pinhole-agent.exe$\" --start-service"
LangString PhServiceStartFailed ${LANG_SIMPCHINESE} "Pinhole 已安装，但 Pinhole Agent 服务未能启动（退出代码 $0）。请查看 Windows 事件日志，然后在“服务”中启动它，或运行：$\r$\n$\"$INSTDIR\bin\pinhole-agent.exe$\" --start-service"

LangString PhClosingTray ${LANG_ENGLISH} "Closing the Pinhole tray..."
LangString PhClosingTray ${LANG_SIMPCHINESE} "正在关闭 Pinhole 托盘程序……"

LangString PhRestoringProxy ${LANG_ENGLISH} "Restoring the system proxy settings..."
LangString PhRestoringProxy ${LANG_SIMPCHINESE} "正在恢复系统代理设置……"

LangString PhRestoringMachineProxy ${LANG_ENGLISH} "Restoring the machine-wide proxy (WinHTTP)..."
LangString PhRestoringMachineProxy ${LANG_SIMPCHINESE} "正在恢复全机代理设置（WinHTTP）……"

LangString PhRemovingService ${LANG_ENGLISH} "Removing the Pinhole Agent service..."
LangString PhRemovingService ${LANG_SIMPCHINESE} "正在删除 Pinhole Agent 服务……"

LangString PhServiceRemoveFailed ${LANG_ENGLISH} "The Pinhole Agent service could not be removed (exit code $0)."
LangString PhServiceRemoveFailed ${LANG_SIMPCHINESE} "无法删除 Pinhole Agent 服务（退出代码 $0）。"

LangString PhKeepingConfig ${LANG_ENGLISH} "Keeping the configuration in $PH_CONFIG_DIR (uninstall with /PURGE to remove it)."
LangString PhKeepingConfig ${LANG_SIMPCHINESE} "保留 $PH_CONFIG_DIR 中的配置（使用 /PURGE 参数卸载可将其删除）。"

LangString PhPurgingConfig ${LANG_ENGLISH} "Removing the configuration, state and stored credentials in $PH_CONFIG_DIR."
LangString PhPurgingConfig ${LANG_SIMPCHINESE} "正在删除 $PH_CONFIG_DIR 中的配置、状态和已保存的凭据。"

LangString PhRunTray ${LANG_ENGLISH} "Start Pinhole now"
LangString PhRunTray ${LANG_SIMPCHINESE} "立即启动 Pinhole"

LangString PhShortcutComment ${LANG_ENGLISH} "Every connection of this computer through one trusted cloud proxy"
LangString PhShortcutComment ${LANG_SIMPCHINESE} "让本机的每个连接都经由一个受信任的云代理"
