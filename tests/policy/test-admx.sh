#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-admx.sh GEN AGENT SRCDIR: the Group Policy templates in installer/windows/policy/.
#
#   1. ph-admx-gen (GEN) writes them anew from the key table and po/: the committed files must be
#      byte for byte what it writes ("cannot drift"; the fix is ninja -C BUILD pinhole-update-admx),
#      and installer/windows/policy/meson.build installs each culture it writes;
#   2. each file is valid against tests/policy/admx.xsd (xmllint --schema), and broken copies of
#      them are not, so the validation cannot pass by accepting anything;
#   3. what a schema cannot say (admx-check.py): every string and presentation the ADMX refers to
#      is in each ADML, each box fits its element, zh-CN is translated; every key of the table has
#      a policy but the excluded ones, which installer/windows/policy/README.md names;
#   4. the agent (AGENT, pinhole-agent --check-config) takes what the policies write: every
#      policy Enabled, with each number's minimum, maximum and default, each item of a list, each
#      box's default, true and false, as ph-policy.c turns the registry into text; and refuses
#      what the editor would write for a check box (1) or past a number's maximum.
# TAP; skips without xmllint or python3 (a failure under CI=true).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/tap.sh
source "$here/../tap.sh"

gen=${1:?usage: test-admx.sh GEN AGENT SRCDIR}
agent=${2:?usage: test-admx.sh GEN AGENT SRCDIR}
src=$(cd "${3:?usage: test-admx.sh GEN AGENT SRCDIR}" && pwd)
policy=$src/installer/windows/policy
xsd=$here/admx.xsd
check=$here/admx-check.py

for tool in xmllint python3 cmp; do
  command -v "$tool" >/dev/null || skip_all "$tool not found (apt-get install libxml2-utils python3)"
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
files=(pinhole.admx en-US/pinhole.adml zh-CN/pinhole.adml)

# --- 1. the committed files are what the generator writes now ---------------------------------
begin "generated from the key table and po/"
check "ph-admx-gen writes the templates" "$gen" --po-dir "$src/po" --output "$tmp/gen"
committed=$(cd "$policy" && find . -name '*.adm[xl]' | LC_ALL=C sort)
written=$(cd "$tmp/gen" && find . -name '*.adm[xl]' | LC_ALL=C sort)
[[ $committed == "$written" ]]
verdict "the same files are committed as written" "committed: $committed" "written: $written"
# The Windows build installs the cultures meson.build names: the same as the generator writes.
cultures=$(cd "$tmp/gen" && find . -name pinhole.adml | sed 's|^\./||; s|/pinhole.adml$||' | LC_ALL=C sort | xargs)
installed=$(sed -n "s/^policy_cultures = \[\(.*\)\]$/\1/p" "$policy/meson.build" | tr -d "'," | xargs -n1 | LC_ALL=C sort | xargs)
[[ -n $cultures && $cultures == "$installed" ]]
verdict "meson.build installs the cultures written ($cultures)" "policy_cultures: $installed"
for f in "${files[@]}"; do
  cmp -s "$policy/$f" "$tmp/gen/$f"
  verdict_then "$f is what ph-admx-gen writes now (else: ninja -C BUILD pinhole-update-admx)" \
    diff -u "$policy/$f" "$tmp/gen/$f"
done

# --- 2. the schema, and that it refuses -------------------------------------------------------
begin "valid against tests/policy/admx.xsd"
for f in "${files[@]}"; do
  check "$f is valid" xmllint --noout --schema "$xsd" "$policy/$f"
done

# refused NAME FILE SED-SCRIPT: a copy of FILE changed by SED-SCRIPT must differ and be invalid.
refused ()
{
  local what=$1 file=$2 script=$3 copy out
  copy=$tmp/broken-$tests_run-$(basename "$file")
  sed "$script" "$policy/$file" >"$copy"
  if cmp -s "$policy/$file" "$copy"; then
    fail "refused: $what" "the change did not apply: sed '$script' matched nothing in $file"
  elif out=$(xmllint --noout --schema "$xsd" "$copy" 2>&1); then
    fail "refused: $what" "xmllint accepted it:" "$out"
  else
    pass "refused: $what"
  fi
}
refused "a policy without class" pinhole.admx '0,/ class="Machine"/s/ class="Machine"//'
refused "a policy name with a hyphen" pinhole.admx '0,/policy name="upstream_port"/s//policy name="upstream-port"/'
# shellcheck disable=SC2016 # sed's $ and (, not the shell's
refused "a displayName that is not \$(string.ID)" pinhole.admx '0,/displayName="\$(string.upstream_port)"/s//displayName="upstream_port"/'
refused "a number's maximum that is not a number" pinhole.admx '0,/maxValue="65535"/s//maxValue="many"/'
refused "a class that is none of User, Machine, Both" pinhole.admx '0,/class="Machine"/s//class="Computer"/'
refused "an element the schema does not know" pinhole.admx '0,/<decimal /s//<longDecimal /'
refused "a string id twice" en-US/pinhole.adml '0,/<string id="Pinhole_listener">/s//<string id="Pinhole">/'
refused "a dropdownList without refId" zh-CN/pinhole.adml '0,/<dropdownList refId="[a-z_]*"/s//<dropdownList/'
refused "a textBox without its label" en-US/pinhole.adml '0,/<label>[^<]*<\/label>/s///'

# --- 3. references, keys, translations --------------------------------------------------------
begin "cross-references and keys"
check "each ADML has what the ADMX refers to, and zh-CN is translated" \
  python3 "$check" refs "$policy/pinhole.admx" "$policy/en-US/pinhole.adml" "$policy/zh-CN/pinhole.adml"
"$gen" --list-keys >"$tmp/keys" && "$gen" --list-excluded >"$tmp/excluded"
verdict "ph-admx-gen lists the keys"
check "every key has a policy but the excluded ones, which the README names ($(wc -l <"$tmp/excluded") excluded)" \
  python3 "$check" keys "$policy/pinhole.admx" "$tmp/keys" "$tmp/excluded" "$policy/README.md"
# The checker itself sees a missing string.
sed '0,/<string id="upstream_port">[^<]*<\/string>/s///' "$policy/en-US/pinhole.adml" >"$tmp/no-string.adml"
! python3 "$check" refs "$policy/pinhole.admx" "$tmp/no-string.adml" >/dev/null
verdict "the checker sees an ADML without a string the ADMX refers to"

# --- 4. the agent takes what the policies write -----------------------------------------------
begin "pinhole-agent --check-config takes every value a policy writes"
check "the registry's values as ph-policy.c reads them" \
  python3 "$check" values "$policy/pinhole.admx" "$policy/en-US/pinhole.adml" "$tmp/values"
n=0
for conf in "$tmp"/values/variant-*.conf; do
  [[ -f $conf ]] || continue
  n=$((n + 1))
  out=$("$agent" --config "$conf" --check-config 2>&1)
  verdict "variant $n: every policy Enabled, the values of $(basename "$conf")" "$out" "$(cat "$conf")"
done
((n >= 2))
verdict "at least two variants ($n)"
printf '[upstream]\nhost=proxy.example.com\n[route]\nresolve-for-cidr=1\n' >"$tmp/checkbox.conf"
! "$agent" --config "$tmp/checkbox.conf" --check-config >/dev/null 2>&1
verdict "refused: 1, what a check box would write for a true/false key (so the policy writes the words)"
printf '[upstream]\nhost=proxy.example.com\nport=65536\n' >"$tmp/past-max.conf"
! "$agent" --config "$tmp/past-max.conf" --check-config >/dev/null 2>&1
verdict "refused: a port past the decimal element's maximum"

tap_done
