#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# test-doctor.sh: pinholectl doctor end to end, TAP output: the real pinhole-agent in --session
# mode on a private dbus-daemon, Diagnose against real cloud ends (stunnel + Squid +
# ph-test-origin, and a second stunnel + Squid presenting a certificate of a test CA, as a
# TLS-inspecting device would), and ports that refuse or stay silent. Each case writes the
# agent's configuration, starts the agent, runs pinholectl doctor --json and checks the code of
# the step that should fail, the exit status, the JSON's shape and that no secret is in it.
#
# Environment (set by tests/cloud/meson.build): PINHOLECTL, PH_AGENT, PH_SRCDIR, PH_TEST_ORIGIN.
# Under CI=true a missing dbus-daemon, stunnel or Squid fails the test; otherwise it is skipped.

set -uo pipefail

CTL=${PINHOLECTL:?PINHOLECTL must name the pinholectl binary}
AGENT=${PH_AGENT:?PH_AGENT must name the pinhole-agent binary}
SRCDIR=${PH_SRCDIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}

silent_pid=""
# shellcheck source=tests/tap.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tap.sh"
# shellcheck source=tests/ph-test-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../ph-test-lib.sh"

dump_logs ()
{
  dump_files agent.log
}

cleanup ()
{
  ph_cleanup
  [[ -n $silent_pid ]] && kill "$silent_pid" 2>/dev/null
  if [[ -n $tmp ]]; then
    bash "$CLOUD_SCRIPT" stop "$tmp/inspector" >/dev/null 2>&1
    bash "$CLOUD_SCRIPT" stop "$tmp/expiring" >/dev/null 2>&1
  fi
  ph_remove_tmp
}

# write_config HOSTS [EXTRA-UPSTREAM-LINES...]: the agent's configuration for one case (verify=
# $verify, pin by default): the
# cloud end's pin, alice's password file, a 1 s connect timeout (so a silent port is one in
# 1 s), and a probe target the cloud end can reach (the origin's HTTPS port).
write_config ()
{
  local hosts=$1 line
  shift
  {
    printf '[listener]\naddress=127.0.0.1:%s\n\n[upstream]\nhost=%s\n' "$listen_port" "$hosts"
    printf 'server-name=%s\nverify=%s\nconnect-timeout=1s\n' "$PH_CLOUD_SERVER_NAME" "${verify:-pin}"
    for line in "$@"; do
      printf '%s\n' "$line"
    done
    printf '\n[doctor]\ntarget=127.0.0.1:%s\n' "$PH_ORIGIN_HTTPS_PORT"
  } >"$tmp/system.conf"
}

# json_check DESCRIPTION PYTHON-EXPR: evaluates EXPR with d = the JSON in $out, p = its first
# proxy, s = that proxy's steps by name.
json_check ()
{
  local what=$1 expr=$2 result
  if result=$(printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
p = d["proxies"][0] if d.get("proxies") else {}
s = {x["step"]: x for x in p.get("steps", [])}
if not eval("(" + sys.argv[1] + ")", dict(d=d, p=p, s=s)):
    print("false: " + sys.argv[1])
    sys.exit(1)
' "$expr" 2>&1); then
    pass "$what"
  else
    fail "$what" "$result" "json: $out"
  fi
}

# The contract's shape (org.pinhole.Agent1.xml, Diagnose; CONTRACT.md): keys in snake_case.
shape_expr='d["version"] == 1 and list(d) == ["version", "ok", "summary", "url", "proxies"]
  and all(list(x) == ["name", "host", "port", "server_name", "steps"] for x in d["proxies"])
  and all([t["step"] for t in x["steps"]] == ["dns", "tcp", "tls", "auth", "target"]
          and all(list(t) == ["step", "status", "code", "verdict", "advice", "ms", "details"]
                  and t["status"] in ("ok", "warning", "failed", "skipped") for t in x["steps"])
          for x in d["proxies"])
  and d["ok"] == all(t["status"] != "failed" for x in d["proxies"] for t in x["steps"])'

# doctor_case NAME WANT-RC PYTHON-EXPR [URL]: starts the agent on the case's configuration, runs
# pinholectl doctor --json, and checks the exit status, the JSON's shape, EXPR, that no secret
# is in the output, and that the text form gives the same exit status.
doctor_case ()
{
  local name=$1 want=$2 expr=$3 url=${4:-}
  local -a args=(--session doctor --json)
  [[ -n $url ]] && args+=("$url")
  if ! start_agent; then
    fail "$name: the agent starts" "$(tail -n 20 "$tmp/agent.log")"
    stop_agent
    return
  fi
  ctl "${args[@]}"
  if [[ $rc == "$want" ]]; then
    pass "$name: exit status $want"
  else
    fail "$name: exit status $want" "pinholectl ${args[*]} exited $rc" "stdout: $out" \
      "stderr: $err"
  fi
  json_check "$name: JSON version 1 with the contract's keys" "$shape_expr"
  json_check "$name: verdict" "$expr"
  [[ $out != *"$password"* && $out != *"$wrong_password"* && $out != *Proxy-Authorization* &&
    $out != *"$basic_b64"* ]]
  verdict "$name: no password or Proxy-Authorization in the report"
  ctl --session doctor ${url:+"$url"}
  [[ $rc == "$want" && $out != *"$password"* && $out != *"$wrong_password"* ]]
  verdict "$name: the text form exits $want too, without a secret" "rc $rc" "$out"
  echo "$out" >>"$tmp/doctor-text.log"
  [[ -n ${after_case:-} ]] && "$after_case" "$name"
  after_case=""
  stop_agent
}

# After a diagnosis that found the password rejected: the agent's own state says nothing of it
# (the doctor's upstream is its own).
agent_state_untouched ()
{
  ctl --session status --json
  printf '%s' "$out" | python3 -c 'import json, sys; d = json.load(sys.stdin)
sys.exit(0 if d["state"] in ("on", "connecting") and "AuthRejected" not in json.dumps(d) else 1)'
  verdict "$1: the agent's own state is left as it was (no error, no AuthRejected)" "$out"
}

# ---- prerequisites ----

ph_require dbus-daemon python3 openssl

trap cleanup EXIT
trap 'exit 130' INT TERM

ph_make_tmp doctor
start_session_bus

# The cloud end, and its origin.
start_cloud
pin_a=$PH_CLOUD_PIN
port_a=$PH_CLOUD_TLS_PORT
password=$(<"$PH_CLOUD_PASSWORD_FILE")
basic_b64=$(printf 'alice:%s' "$password" | base64)

# A TLS-inspecting device: a certificate for the cloud's name issued by a CA of its own.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$tmp/inspection-ca-key.pem" -out "$tmp/inspection-ca.pem" -days 30 \
  -subj "/CN=Pinhole test inspection CA" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || bail "openssl: inspection CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$tmp/inspector-key.pem" -out "$tmp/inspector.csr" -subj "/CN=$PH_CLOUD_SERVER_NAME" \
  2>/dev/null || bail "openssl: inspector CSR"
printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
  "$PH_CLOUD_SERVER_NAME" >"$tmp/inspector.ext"
openssl x509 -req -in "$tmp/inspector.csr" -CA "$tmp/inspection-ca.pem" \
  -CAkey "$tmp/inspection-ca-key.pem" -CAcreateserial -out "$tmp/inspector-cert.pem" -days 30 \
  -extfile "$tmp/inspector.ext" 2>/dev/null || bail "openssl: inspector cert"
if ! PH_CLOUD_CERT=$tmp/inspector-cert.pem PH_CLOUD_KEY=$tmp/inspector-key.pem \
  PH_CLOUD_OWNER_PID=$$ bash "$CLOUD_SCRIPT" start "$tmp/inspector" >"$tmp/inspector.out" 2>&1; then
  sed 's/^/# /' "$tmp/inspector.out"
  bail "the inspecting cloud end did not start"
fi
pin_b=$(. "$tmp/inspector/cloud.env" && echo "$PH_CLOUD_PIN")
port_b=$(. "$tmp/inspector/cloud.env" && echo "$PH_CLOUD_TLS_PORT")
[[ $pin_b != "$pin_a" ]] || bail "the two cloud ends have the same key"

# A cloud end whose certificate ends in 10 days.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$tmp/expiring-key.pem" -out "$tmp/expiring-cert.pem" -days 10 \
  -subj "/CN=$PH_CLOUD_SERVER_NAME" -addext "subjectAltName=DNS:$PH_CLOUD_SERVER_NAME" \
  2>/dev/null || bail "openssl: expiring cert"
if ! PH_CLOUD_CERT=$tmp/expiring-cert.pem PH_CLOUD_KEY=$tmp/expiring-key.pem \
  PH_CLOUD_OWNER_PID=$$ bash "$CLOUD_SCRIPT" start "$tmp/expiring" >"$tmp/expiring.out" 2>&1; then
  sed 's/^/# /' "$tmp/expiring.out"
  bail "the expiring cloud end did not start"
fi
pin_c=$(. "$tmp/expiring/cloud.env" && echo "$PH_CLOUD_PIN")
port_c=$(. "$tmp/expiring/cloud.env" && echo "$PH_CLOUD_TLS_PORT")

listen_port=$(free_port)
closed_port=$(free_port)
wrong_password=not-$password
printf '%s' "$wrong_password" >"$tmp/wrong-password"
chmod 600 "$tmp/wrong-password"

# A silent port: a listener that never accepts, with a backlog of 0 and its queue filled, so
# the kernel drops every further SYN, as a firewall that drops does.
python3 -c '
import socket, sys, time
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(0)
port = l.getsockname()[1]
held = []
for i in range(3):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    held.append(c)
time.sleep(0.3)
print(port, flush=True)
time.sleep(3600)
' >"$tmp/silent.port" &
silent_pid=$!
for ((i = 0; i < 50; i++)); do
  [[ -s $tmp/silent.port ]] && break
  sleep 0.1
done
silent_port=$(<"$tmp/silent.port")
[[ -n $silent_port ]] || bail "the silent listener did not start"

good_auth=("pins=$pin_a" "username=alice" "password-file=$PH_CLOUD_PASSWORD_FILE")
good_url="http://127.0.0.1:$PH_ORIGIN_HTTP_PORT/hello"

# ---- the cases ----

write_config "127.0.0.1:$port_a" "${good_auth[@]}"
start_agent || bail "the agent did not start" "$(tail -n 20 "$tmp/agent.log")"
ctl --session disable
stop_agent
doctor_case "all good (tunnel off)" 0 \
  'd["ok"] and all(t["status"] == "ok" for t in p["steps"])
   and s["tls"]["details"]["pin"] == "'"$pin_a"'" and s["tls"]["details"]["pin_trusted"]
   and s["tls"]["details"]["version"].startswith("TLS") and s["tls"]["details"]["cipher"] != ""
   and s["tls"]["details"]["days_left"] > 30 and s["auth"]["details"]["status"] == 200
   and s["target"]["details"]["status"] == 200 and d["summary"] != ""' "$good_url"
start_agent || bail "the agent did not start"
ctl --session status --json
printf '%s' "$out" | python3 -c 'import json, sys; d = json.load(sys.stdin)
sys.exit(0 if d["enabled"] is False and d["state"] == "off" else 1)'
verdict "the diagnosis left the tunnel off" "$out"
ctl --session doctor "ftp://example.test/"
[[ $rc == 1 && $err == *"http"* ]]
verdict "a URL that is not http:// or https:// is refused (BadRequest, exit 1)" "rc $rc" "$err"
# The other cases run with the tunnel on.
ctl --session enable
stop_agent

write_config "nowhere.invalid" "${good_auth[@]}"
doctor_case "unresolvable name" 7 \
  'not d["ok"] and s["dns"]["code"] == "unresolvable" and "nowhere.invalid" in s["dns"]["advice"]
   and all(s[k]["code"] == "skipped" for k in ("tcp", "tls", "auth", "target"))'

write_config "127.0.0.1:$closed_port" "${good_auth[@]}"
doctor_case "refused port" 7 'not d["ok"] and s["tcp"]["code"] == "refused"'

write_config "127.0.0.1:$silent_port" "${good_auth[@]}"
doctor_case "silent port" 7 \
  's["tcp"]["code"] == "timeout" and "firewall" in s["tcp"]["verdict"]
   and "'"$silent_port"'" in s["tcp"]["advice"] and "127.0.0.1" in s["tcp"]["advice"]
   and s["tcp"]["ms"] < 3000'

write_config "127.0.0.1:$port_a" "pins=$pin_b" "username=alice" \
  "password-file=$PH_CLOUD_PASSWORD_FILE"
doctor_case "wrong key" 7 \
  's["tls"]["code"] == "pin-mismatch" and s["tls"]["details"]["pin"] == "'"$pin_a"'"
   and not s["tls"]["details"]["pin_trusted"] and "pin trust" in s["tls"]["advice"]
   and s["auth"]["code"] == "skipped"'

write_config "127.0.0.1:$port_b" "${good_auth[@]}"
doctor_case "CA-signed interceptor" 7 \
  's["tls"]["code"] == "intercepted" and "inspection CA" in s["tls"]["details"]["issuer"]
   and s["tls"]["details"]["pin"] == "'"$pin_b"'" and "exempt" in s["tls"]["advice"]'

# The other cloud end has its own Squid, with alice's password of its own.
write_config "127.0.0.1:$port_c" "pins=$pin_c" "username=alice" \
  "password-file=$tmp/expiring/password"
doctor_case "certificate ending in 10 days: a warning, not a failure" 0 \
  'd["ok"] and s["tls"]["status"] == "warning" and s["tls"]["code"] == "expiring"
   and 8 <= s["tls"]["details"]["days_left"] <= 10 and s["auth"]["code"] == "ok"
   and "see the warning" in d["summary"]'

# verify=ca: no CA vouches for the cloud's own self-signed certificate; the inspector's CA is
# not trusted either.
verify=ca write_config "127.0.0.1:$port_a" "username=alice" "password-file=$PH_CLOUD_PASSWORD_FILE"
doctor_case "verify=ca, self-signed" 7 \
  's["tls"]["code"] == "untrusted" and not s["tls"]["details"]["ca_trusted"]'
verify=ca write_config "127.0.0.1:$port_b" "username=alice" "password-file=$PH_CLOUD_PASSWORD_FILE"
doctor_case "verify=ca, CA-signed interceptor" 7 \
  's["tls"]["code"] == "intercepted" and "inspection CA" in s["tls"]["details"]["issuer"]'

# upstream.port= rather than host:port, the form every agent reads the same.
write_config "127.0.0.1" "port=$port_a" "pins=$pin_a" "username=alice" \
  "password-file=$tmp/wrong-password"
after_case=agent_state_untouched
doctor_case "rejected password" 1 \
  's["tls"]["code"] == "ok" and s["auth"]["code"] == "rejected"
   and s["auth"]["details"]["status"] == 407 and "set-credentials" in s["auth"]["advice"]'

write_config "127.0.0.1:$port_a" "pins=$pin_a"
doctor_case "no credentials" 8 's["auth"]["code"] == "no-credentials"'

write_config "127.0.0.1:$port_a" "${good_auth[@]}"
doctor_case "unreachable target" 1 \
  's["auth"]["code"] == "ok" and s["target"]["code"] == "unreachable"
   and s["target"]["details"]["status"] == 503' "https://127.0.0.1:$closed_port/"

write_config "127.0.0.1:$port_a, 127.0.0.1:$closed_port" "${good_auth[@]}"
doctor_case "two proxies, one refused" 7 \
  'len(d["proxies"]) == 2 and d["proxies"][0]["port"] == '"$port_a"'
   and all(t["status"] == "ok" for t in d["proxies"][0]["steps"])
   and d["proxies"][1]["steps"][1]["code"] == "refused"
   and d["proxies"][1]["name"] == "127.0.0.1:'"$closed_port"'"
   and d["summary"].startswith("127.0.0.1:'"$closed_port"'")' "$good_url"

printf '[listener]\naddress=127.0.0.1:%s\n' "$listen_port" >"$tmp/system.conf"
start_agent || bail "the agent did not start" "$(tail -n 20 "$tmp/agent.log")"
ctl --session doctor --json
[[ $rc == 8 ]]
verdict "no cloud proxy configured: NotConfigured, exit 8" "rc $rc" "$err"
stop_agent

# The text form: a line per step with its result, the advice under a failed one.
grep -qE '^  TCP +FAILED +TCP port [0-9]+ is probably blocked by a firewall' "$tmp/doctor-text.log" &&
  grep -qE '^ +Ask your IT department to allow outgoing TCP [0-9]+ to 127\.0\.0\.1' \
    "$tmp/doctor-text.log" &&
  grep -qE '^  Target +skipped +an earlier step failed' "$tmp/doctor-text.log" &&
  grep -qE '^  TLS +FAILED +a TLS-inspecting device is in the path' "$tmp/doctor-text.log" &&
  grep -qxF 'The cloud proxy works.' "$tmp/doctor-text.log"
verdict_then "the text form: one line per step, the advice under it, the summary" \
  cat "$tmp/doctor-text.log"

! grep -qF -e "$password" -e "$wrong_password" -e "$basic_b64" "$tmp/agent.log"
verdict "the agent's log holds no password"

tap_done
