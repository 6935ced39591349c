#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# check-po.sh: fails when a translation is stale or incomplete, when
# po/POTFILES misses a file with translatable strings, or when a user-visible
# string is not marked for translation (tests/i18n/check-marked.py).
#
#   check-po.sh SRCDIR [XGETTEXT-ARG…]   check the tree at SRCDIR
#   check-po.sh --self-test SRCDIR [XGETTEXT-ARG…]
#                                        run the checks on a small built-in tree,
#                                        broken on purpose in each way they must
#                                        catch; fail unless every break is caught
#
# The fix for a stale catalogue is `ninja -C BUILD pinhole-update-po`, then
# translating what it leaves untranslated or fuzzy in po/LANG.po.
# Exit 77 (skip) without gettext's tools or python3; under CI=true that fails.
set -euo pipefail

self_test=false
if [ "${1:-}" = --self-test ]; then
  self_test=true
  shift
fi
srcdir=$(cd "${1:-${PH_SRCDIR:-$(dirname "$0")/../..}}" && pwd)
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)

# Meson's glib preset (mesonbuild/modules/i18n.py), which po/meson.build uses:
# the keywords decide what is extracted, so they must be the same.
# shellcheck disable=SC2054 # the commas are xgettext's, inside one argument
xgettext_args=(
  --from-code=UTF-8 --add-comments
  --keyword=_ --keyword=N_ --keyword=C_:1c,2 --keyword=NC_:1c,2 --keyword=g_dcgettext:2
  --keyword=g_dngettext:2,3 --keyword=g_dpgettext2:2c,3
  --flag=N_:1:pass-c-format --flag=C_:2:pass-c-format --flag=NC_:2:pass-c-format
  --flag=g_dngettext:2:pass-c-format --flag=g_strdup_printf:1:c-format
  --flag=g_string_printf:2:c-format --flag=g_string_append_printf:2:c-format
  --flag=g_error_new:3:c-format --flag=g_set_error:4:c-format
  --flag=g_markup_printf_escaped:1:c-format --flag=g_log:3:c-format --flag=g_print:1:c-format
  --flag=g_printerr:1:c-format --flag=g_printf:1:c-format --flag=g_fprintf:2:c-format
  --flag=g_sprintf:2:c-format --flag=g_snprintf:3:c-format
  "$@"
)

missing=()
for tool in xgettext msgmerge msgfmt msgattrib python3; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "check-po: ${missing[*]} not found (apt-get install gettext python3)" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The msgids of a PO file on stdin, one line each (the first of a long one).
list_msgids() {
  awk -v kind="$1" '/^msgid "/ {
      if ($0 == "msgid \"\"") { getline; if ($0 ~ /^msgstr/) next }
      print "  " kind ": " $0 }'
}

# Checks the tree at $1; prints every problem, returns 1 if there was one.
check_tree() {
  local src=$1 work=$2 failed=0 lang po merged stats before after

  mkdir -p "$work"
  python3 "$here/check-marked.py" "$src" || failed=1

  # The template, as `ninja pinhole-pot` would make it, but not in the tree.
  # (Without GTK's own rules for .ui files gettext warns that it uses its copy.)
  if ! (cd "$src" && xgettext --package-name=pinhole -f po/POTFILES -D "$src" -k_ \
          -o "$work/pinhole.pot" "${xgettext_args[@]}") 2>"$work/xgettext.err"; then
    cat "$work/xgettext.err"
    echo "po/POTFILES: xgettext failed on the files it lists"
    return 1
  fi
  grep -v 'fallback ITS rule file' "$work/xgettext.err" || true

  while read -r lang; do
    po=$src/po/$lang.po
    merged=$work/$lang.po
    if [ ! -f "$po" ]; then
      echo "po/LINGUAS names $lang but po/$lang.po does not exist"
      failed=1
      continue
    fi
    # Format strings that do not match, a bad header or plural forms.
    if ! msgfmt --check --check-accelerators=_ -o /dev/null "$po" 2>"$work/msgfmt.err"; then
      sed "s|^|po/$lang.po: |" "$work/msgfmt.err"
      failed=1
    fi
    if ! grep -q '^"Plural-Forms: nplurals=[0-9]*; plural=[^;]*;\\n"' "$po"; then
      echo "po/$lang.po: no Plural-Forms header"
      failed=1
    fi
    if ! msgmerge --quiet --no-wrap -o "$merged" "$po" "$work/pinhole.pot"; then
      echo "po/$lang.po: msgmerge failed"
      failed=1
      continue
    fi
    stats=$(msgfmt --statistics -o /dev/null "$merged" 2>&1 || true)
    if ! printf '%s' "$stats" | grep -Eq '^[0-9]+ translated messages?\.$'; then
      echo "po/$lang.po is stale or incomplete against the sources: $stats"
      msgattrib --no-wrap --no-obsolete --untranslated "$merged" | list_msgids untranslated
      msgattrib --no-wrap --no-obsolete --only-fuzzy "$merged" | list_msgids fuzzy
      failed=1
    fi
    # Translations of strings the sources no longer have.
    before=$(grep -c '^#~ msgid ' "$po" || true)
    after=$(grep -c '^#~ msgid ' "$merged" || true)
    if [ "$after" -gt "$before" ]; then
      echo "po/$lang.po translates $((after - before)) string(s) the sources no longer have"
      diff <(grep '^#~ msgid ' "$po") <(grep '^#~ msgid ' "$merged") | sed -n 's/^> #~ /  gone: /p'
      failed=1
    fi
  done < <(sed -e 's/#.*//' -e 's/[[:space:]]\+/\n/g' "$src/po/LINGUAS" | grep -v '^$')

  if [ "$failed" -ne 0 ]; then
    echo "To bring the catalogue up to date: ninja -C BUILD pinhole-update-po, then translate"
    echo "what is untranslated or fuzzy in po/LANG.po (and drop the fuzzy flags)."
  fi
  return "$failed"
}

if ! $self_test; then
  check_tree "$srcdir" "$tmp/work" && echo "check-po: translations complete and current"
  exit
fi

# ---- --self-test: a small tree that passes, then copies of it broken one way
# each; every break must make check_tree fail, and say why. ----

make_tree() {
  local t=$tmp/tree
  rm -rf "$t"
  mkdir -p "$t/po" "$t/agent/ctl" "$t/gui" "$t/platform" "$t/tests/i18n"
  printf '# none\n' >"$t/tests/i18n/unmarked-allowed.txt"
  printf 'zh_CN\n' >"$t/po/LINGUAS"
  printf 'agent/ctl/ph-ctl.c\ngui/ph-window.ui\n' >"$t/po/POTFILES"
  cat >"$t/agent/ctl/ph-ctl.c" <<'EOF'
#include <glib/gi18n.h>

static void
show (guint n)
{
  g_print ("%s\n", _ ("Hello"));
  g_print (ngettext ("%u tunnel\n", "%u tunnels\n", n), n);
}
EOF
  cat >"$t/gui/ph-window.ui" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<interface domain="pinhole">
  <object class="GtkButton" id="quit">
    <property name="label" translatable="yes">_Quit</property>
    <property name="use-underline">True</property>
    <property name="icon-name">application-exit</property>
  </object>
</interface>
EOF
  cat >"$t/po/zh_CN.po" <<'EOF'
msgid ""
msgstr ""
"Project-Id-Version: pinhole 0.1.0\n"
"Report-Msgid-Bugs-To: \n"
"POT-Creation-Date: 2026-01-01 00:00+0000\n"
"PO-Revision-Date: 2026-01-01 00:00+0000\n"
"Last-Translator: Pinhole contributors <pinhole@example.org>\n"
"Language-Team: Chinese (simplified) <pinhole@example.org>\n"
"Language: zh_CN\n"
"MIME-Version: 1.0\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Content-Transfer-Encoding: 8bit\n"
"Plural-Forms: nplurals=1; plural=0;\n"

msgid "Hello"
msgstr "你好"

#, c-format
msgid "%u tunnel\n"
msgid_plural "%u tunnels\n"
msgstr[0] "%u 条隧道\n"

msgid "_Quit"
msgstr "退出(_Q)"
EOF
}

status=0
expect_failure() {
  local what=$1 pattern=$2 out
  if out=$(check_tree "$tmp/tree" "$tmp/work-$RANDOM" 2>&1); then
    echo "not caught: $what"
    status=1
  elif ! printf '%s\n' "$out" | grep -q -- "$pattern"; then
    echo "caught, but without \"$pattern\": $what"
    printf '%s\n' "$out" | sed 's/^/  /'
    status=1
  else
    echo "caught: $what"
    printf '%s\n' "$out" | grep -- "$pattern" | head -2 | sed 's/^/    /'
  fi
}

make_tree
if ! out=$(check_tree "$tmp/tree" "$tmp/work-clean" 2>&1); then
  echo "the unbroken self-test tree fails, so the checker is wrong:"
  printf '%s\n' "$out" | sed 's/^/  /'
  exit 1
fi
echo "passes: the unbroken self-test tree"

make_tree
sed -i 's/_ ("Hello")/_ ("Hello, world")/' "$tmp/tree/agent/ctl/ph-ctl.c"
expect_failure "a changed string" 'msgid "Hello, world"'

make_tree
printf 'static const char *s = N_ ("A string nobody has translated");\n' >>"$tmp/tree/agent/ctl/ph-ctl.c"
expect_failure "a new string without a translation" 'untranslated: msgid "A string nobody'

make_tree
sed -i 's/^msgid "Hello"$/#, fuzzy\n&/' "$tmp/tree/po/zh_CN.po"
expect_failure "a translation left fuzzy" "1 fuzzy translation"

make_tree
printf '\nmsgid "A string the sources dropped"\nmsgstr "已删除"\n' >>"$tmp/tree/po/zh_CN.po"
expect_failure "a translation of a string the sources no longer have" "no longer have"

make_tree
sed -i 's/^msgstr\[0\] "%u 条隧道/msgstr[0] "%s 条隧道/' "$tmp/tree/po/zh_CN.po"
expect_failure "a translation whose format does not match" "po/zh_CN.po: .*format"

make_tree
sed -i '/^"Plural-Forms: /d' "$tmp/tree/po/zh_CN.po"
expect_failure "no Plural-Forms header" "Plural-Forms"

make_tree
printf 'static const char *s = N_ ("Hello");\n' >"$tmp/tree/platform/ph-other.c"
expect_failure "a file with marked strings missing from POTFILES" \
  "ph-other.c has translatable strings but is not listed"

make_tree
printf 'gui/ph-window.ui\nagent/ctl/ph-ctl.c\n' >"$tmp/tree/po/POTFILES"
expect_failure "POTFILES out of order" "not sorted"

make_tree
sed -i 's|^\( *\)<property name="icon-name">|\1<property name="tooltip-text">Nobody marked me</property>\n&|' \
  "$tmp/tree/gui/ph-window.ui"
expect_failure "a GtkBuilder tooltip without translatable=\"yes\"" "Nobody marked me"

make_tree
cat >"$tmp/tree/gui/ph-window.c" <<'EOF'
static void
set_up (GtkWidget *window, GtkWidget *label, gboolean on)
{
  gtk_window_set_title (GTK_WINDOW (window), "Bare title");
  gtk_label_set_text (GTK_LABEL (label), on ? _ ("Hello") : "Bare label");
  gtk_widget_set_tooltip_text (label, "%s: %u");
}
EOF
printf 'agent/ctl/ph-ctl.c\ngui/ph-window.c\ngui/ph-window.ui\n' >"$tmp/tree/po/POTFILES"
expect_failure "a bare literal given to gtk_window_set_title" 'gtk_window_set_title shows "Bare title"'
expect_failure "a bare literal in a ?: given to gtk_label_set_text" 'gtk_label_set_text shows "Bare label"'

make_tree
sed -i 's/g_print ("%s\\n", _ ("Hello"));/g_print ("%s\\n", _ ("Hello")); g_printerr ("Bare message\\n");/' \
  "$tmp/tree/agent/ctl/ph-ctl.c"
expect_failure "a bare g_printerr message in pinholectl" 'g_printerr shows "Bare message'
printf 'agent/ctl/ph-ctl.c|Bare message\\n\n' >>"$tmp/tree/tests/i18n/unmarked-allowed.txt"
if out=$(check_tree "$tmp/tree" "$tmp/work-allowed" 2>&1); then
  echo "passes: the same message once the allow-list names it"
else
  echo "not allowed: a bare message that the allow-list names"
  printf '%s\n' "$out" | sed 's/^/  /'
  status=1
fi

[ "$status" -eq 0 ] && echo "check-po --self-test: every break was caught"
exit "$status"
