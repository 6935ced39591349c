#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# pinhole-cloud.sh: brings up a throwaway Pinhole cloud end (stunnel in front of Squid with Basic
# auth, optionally the ph-test-origin server) on loopback, for tests, benchmarks and the demo.
# Its h2 flavour (PH_CLOUD_FRONT=nghttpx) puts nghttpx in HTTP/2 proxy mode in front of the same
# Squid instead of stunnel: what it does is written down below, above write_nghttpx_conf.
#
#   pinhole-cloud.sh start DIR                      start everything, write DIR/cloud.env
#   pinhole-cloud.sh stop DIR                       stop what start started (idempotent)
#   pinhole-cloud.sh agent-config DIR OUT [PORT]    write a pinhole-agent config pinned to DIR
#   pinhole-cloud.sh status DIR                     exit 0 when every recorded process runs
#
# Environment: PH_CLOUD_USER (alice), PH_CLOUD_PASSWORD (random), PH_CLOUD_ORIGIN=1 (also run
# the origin), PH_CLOUD_TLS_PORT / PH_CLOUD_SQUID_PORT (default: free ports),
# PH_CLOUD_OWNER_PID (stop everything once that process is gone), PH_CLOUD_START_TIMEOUT (20s),
# PH_CLOUD_SQUID_IDLE=N (Squid closes idle client connections after N s: client_idle_pconn_timeout),
# PH_CLOUD_SQUID_HOSTS=FILE (Squid knows only the names in FILE, its hosts_file: its DNS server is
# then 127.0.0.1, where none answers, so that no lookup leaves the machine),
# PH_CLOUD_CERT / PH_CLOUD_KEY (stunnel presents this certificate and key instead of a fresh
# self-signed one: a TLS-inspecting device's, say; PH_CLOUD_PIN is then its pin),
# PH_CLOUD_PROXY=tinyproxy (tinyproxy with BasicAuth behind stunnel instead of Squid: it answers
# a CONNECT with wrong credentials with 401, not 407),
# PH_CLOUD_FRONT=stunnel|nghttpx (what terminates TLS on PH_CLOUD_TLS_PORT: stunnel, the
# default, or nghttpx --http2-proxy, ALPN h2 and http/1.1, with the same certificate, name and
# pin), PH_CLOUD_H2_TUNING=recommended|stock (nghttpx: the settings below, or nghttpx's own
# defaults), PH_CLOUD_NGHTTPX_CONF=FILE (nghttpx: more settings, included last so they win),
# PH_STUNNEL, PH_SQUID, PH_SQUID_AUTH_HELPER, PH_TINYPROXY, PH_NGHTTPX, PH_TEST_ORIGIN (binary
# paths).

set -euo pipefail

readonly SERVER_NAME=pinhole-cloud.test
PH_STUNNEL=${PH_STUNNEL:-/usr/bin/stunnel4}
PH_SQUID=${PH_SQUID:-/usr/sbin/squid}
PH_SQUID_AUTH_HELPER=${PH_SQUID_AUTH_HELPER:-/usr/lib/squid/basic_ncsa_auth}
PH_TINYPROXY=${PH_TINYPROXY:-/usr/bin/tinyproxy}
PH_NGHTTPX=${PH_NGHTTPX:-/usr/sbin/nghttpx}
PH_CLOUD_PROXY=${PH_CLOUD_PROXY:-squid}
PH_CLOUD_FRONT=${PH_CLOUD_FRONT:-stunnel}
PH_CLOUD_H2_TUNING=${PH_CLOUD_H2_TUNING:-recommended}
PH_CLOUD_START_TIMEOUT=${PH_CLOUD_START_TIMEOUT:-20}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die ()
{
  echo "pinhole-cloud: $*" >&2
  exit 1
}

log ()
{
  echo "pinhole-cloud: $*" >&2
}

usage ()
{
  sed -n '5,9s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

need ()
{
  local bin=$1 what=$2
  [[ -x $bin ]] || die "$what not found at '$bin' (install it or set the override variable)"
}

# A currently free loopback TCP port: the kernel's pick for port 0 when python3 is there,
# else a random unused one from the dynamic range.
free_port ()
{
  local port
  if command -v python3 >/dev/null; then
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
    return
  fi
  while :; do
    port=$((32768 + RANDOM % 28000))
    port_open "$port" || break
  done
  echo "$port"
}

# Prefer asking the kernel over connecting: a probe connection would show up in Squid's
# access log as a transaction without request, and tests count those lines.
port_open ()
{
  if command -v ss >/dev/null; then
    ss -Hltn "sport = :$1" 2>/dev/null | grep -F "127.0.0.1:$1 " >/dev/null
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# A zombie counts as gone: daemons started here are reparented to PID 1, which may be slow to
# reap them.
pid_alive ()
{
  local stat
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# Wait until PORT accepts, failing early when PID (the process that should listen) is gone.
wait_port ()
{
  local port=$1 pid=$2 what=$3 i
  for ((i = 0; i < PH_CLOUD_START_TIMEOUT * 10; i++)); do
    port_open "$port" && return 0
    pid_alive "$pid" || {
      log "$what (pid $pid) exited before listening on 127.0.0.1:$port"
      return 1
    }
    sleep 0.1
  done
  log "$what did not listen on 127.0.0.1:$port within ${PH_CLOUD_START_TIMEOUT}s"
  return 1
}

print_logs ()
{
  local dir=$1 f
  for f in "$dir"/squid/squid.out "$dir"/squid/cache.log "$dir"/stunnel.log "$dir"/nghttpx.log \
    "$dir"/origin.log; do
    [[ -s $f ]] || continue
    echo "----- $f (last 40 lines) -----" >&2
    tail -n 40 "$f" >&2
  done
}

spki_pin ()
{
  openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
    openssl dgst -sha256 -binary | base64
}

# 90 days: longer than the doctor's 30-day expiry warning.
make_certs ()
{
  local dir=$1
  if [[ -n ${PH_CLOUD_CERT:-} || -n ${PH_CLOUD_KEY:-} ]]; then
    [[ -r ${PH_CLOUD_CERT:-} && -r ${PH_CLOUD_KEY:-} ]] ||
      die "PH_CLOUD_CERT and PH_CLOUD_KEY must both name readable files"
    cp "$PH_CLOUD_CERT" "$dir/cloud-cert.pem"
    cp "$PH_CLOUD_KEY" "$dir/cloud-key.pem"
    chmod 600 "$dir/cloud-key.pem"
    return
  fi
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/cloud-key.pem" -out "$dir/cloud-cert.pem" -days 90 -subj "/CN=$SERVER_NAME" \
    -addext "subjectAltName=DNS:$SERVER_NAME,IP:127.0.0.1" \
    -addext "extendedKeyUsage=serverAuth" 2>/dev/null || die "openssl could not make the cloud cert"
  chmod 600 "$dir/cloud-key.pem"
}

# The origin's certificate chains to a small CA, so that clients can verify it with --cacert.
make_origin_certs ()
{
  local dir=$1
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/origin-ca-key.pem" -out "$dir/origin-ca.pem" -days 30 \
    -subj "/CN=Pinhole test origin CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || die "openssl: origin CA"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/origin-key.pem" -out "$dir/origin.csr" -subj "/CN=localhost" 2>/dev/null ||
    die "openssl: origin CSR"
  printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    "extendedKeyUsage=serverAuth" "basicConstraints=CA:FALSE" >"$dir/origin.ext"
  openssl x509 -req -in "$dir/origin.csr" -CA "$dir/origin-ca.pem" -CAkey "$dir/origin-ca-key.pem" \
    -CAcreateserial -out "$dir/origin-cert.pem" -days 30 -extfile "$dir/origin.ext" 2>/dev/null ||
    die "openssl: origin cert"
  rm -f "$dir/origin.csr" "$dir/origin.ext" "$dir/origin-ca.srl"
  chmod 600 "$dir/origin-key.pem" "$dir/origin-ca-key.pem"
}

make_htpasswd ()
{
  local dir=$1 user=$2 password=$3 hash
  hash=$(openssl passwd -apr1 -- "$password") || die "openssl passwd failed"
  printf '%s:%s\n' "$user" "$hash" >"$dir/htpasswd"
}

write_squid_conf ()
{
  local dir=$1 port=$2 user_line=""
  # As root Squid drops to an unprivileged user; as anyone else it stays who it is.
  [[ $(id -u) == 0 ]] && user_line="cache_effective_user proxy"
  cat >"$dir/squid.conf" <<EOF
# Generated by pinhole-cloud.sh: a forward proxy requiring Basic auth, no cache.
http_port 127.0.0.1:$port
visible_hostname $SERVER_NAME
$user_line
workers 1
max_filedescriptors 16384

auth_param basic program $PH_SQUID_AUTH_HELPER $dir/htpasswd
auth_param basic children 5 startup=1 idle=1
auth_param basic realm pinhole-cloud
auth_param basic credentialsttl 1 hour
acl auth proxy_auth REQUIRED
http_access allow auth
http_access deny all

cache deny all
cache_mem 8 MB
memory_pools off
# Squid 5.7 ends large plain-HTTP uploads at random once its request buffer
# is full (a 0-byte read taken for EOF); a buffer this size avoids it.
client_request_buffer_max_size 64 MB

pid_filename $dir/squid/squid.pid
access_log stdio:$dir/squid/access.log
buffered_logs off
cache_log $dir/squid/cache.log
cache_store_log none
netdb_filename none
coredump_dir $dir/squid
logfile_rotate 0
pinger_enable off
httpd_suppress_version_string on
shutdown_lifetime 0 seconds
${PH_CLOUD_SQUID_IDLE:+client_idle_pconn_timeout $PH_CLOUD_SQUID_IDLE seconds}
${PH_CLOUD_SQUID_HOSTS:+hosts_file $PH_CLOUD_SQUID_HOSTS}
${PH_CLOUD_SQUID_HOSTS:+dns_nameservers 127.0.0.1}
EOF
}

write_tinyproxy_conf ()
{
  local dir=$1 port=$2 user=$3 password=$4 user_lines=""
  # tinyproxy refuses to run as root; the log dir is the one Squid's user would have.
  [[ $(id -u) == 0 ]] && user_lines=$'User proxy\nGroup proxy'
  cat >"$dir/tinyproxy.conf" <<EOF
# Generated by pinhole-cloud.sh: tinyproxy requiring Basic auth.
Port $port
Listen 127.0.0.1
$user_lines
Timeout 600
MaxClients 200
Allow 127.0.0.1
BasicAuth $user $password
LogFile "$dir/squid/tinyproxy.log"
LogLevel Info
EOF
  chmod 600 "$dir/tinyproxy.conf"
}

write_stunnel_conf ()
{
  local dir=$1 tls_port=$2 squid_port=$3
  cat >"$dir/stunnel.conf" <<EOF
; Generated by pinhole-cloud.sh: TLS in front of Squid, as in production.
foreground = yes
pid =
debug = notice
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1

[pinhole-cloud]
accept = 127.0.0.1:$tls_port
connect = 127.0.0.1:$squid_port
cert = $dir/cloud-cert.pem
key = $dir/cloud-key.pem
sslVersionMin = TLSv1.2
TIMEOUTclose = 0
EOF
}

# ---- The h2 flavour: nghttpx --http2-proxy in front of Squid (PH_CLOUD_FRONT=nghttpx) ----
#
# What nghttpx 1.52 (Debian 12's nghttp2-proxy) does here, found with tests/cloud/h2-connect.py
# (Debian's python3-h2) against this flavour; tests/cloud/README.md has the figures and how to
# measure them again, tests/cloud/test-h2-cloud.sh keeps the basic facts true.
#
# - TLS: ALPN h2 when offered (h2,http/1.1 -> h2), http/1.1 when only that is offered or no ALPN
#   at all: a client of the HTTP/1.1 kind (stunnel's, today's agent, curl --proxy https://) works
#   unchanged. The same certificate, key and server name as stunnel's, so the same pin.
# - Its SETTINGS: MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 65535 (or
#   frontend-http2-window-size), SETTINGS_NO_RFC7540_PRIORITIES 1; no MAX_FRAME_SIZE (16384), no
#   ENABLE_CONNECT_PROTOCOL. Its connection window is 65535 unless
#   frontend-http2-connection-window-size is bigger (then a WINDOW_UPDATE on stream 0 follows).
# - An HTTP/2 CONNECT (:method CONNECT, :authority host:port, no :scheme or :path) goes to Squid
#   as "CONNECT host:port HTTP/1.1" with Host; a plain request (:scheme http, :authority, :path)
#   in absolute form "GET http://host:port/path HTTP/1.1" with Host. The proxy-authorization
#   header is passed on as Proxy-Authorization (nothing strips it): Squid does the Basic auth.
#   nghttpx adds "Via: 2 nghttpx" to the request and "via: ..., 1.1 nghttpx" to the answer.
# - Squid's 407 arrives as :status 407 with proxy-authenticate: Basic realm="pinhole-cloud" and
#   Squid's HTML page as DATA, then END_STREAM and RST_STREAM(NO_ERROR); the connection stays
#   usable. Squid's 503 (target refused) the same; Squid unreachable: nghttpx's own 502.
# - A tunnel's end: when the origin closes, END_STREAM then RST_STREAM(NO_ERROR). The client's
#   END_STREAM is NOT passed on as a half-close (no FIN to Squid): the tunnel stays open until
#   the origin ends it, the client resets the stream, or a timeout below.
# - Limits that the recommended tuning below raises (stock values in brackets):
#   backend-connections-per-host [8]: per client connection and :authority, the 9th concurrent
#   CONNECT to the same host:port gets no answer until one of the 8 ends;
#   backend-read-timeout [1m]: a tunnel without a byte either way for that long is ended
#   (END_STREAM + RST_STREAM(NO_ERROR)); stream-write-timeout [1m]: a stream whose client
#   window stays closed that long is reset (RST_STREAM(INTERNAL_ERROR));
#   frontend-http2-window-size / -connection-window-size [65535]: what a client may send before
#   a WINDOW_UPDATE, which caps uploads at about a window per round trip (at 20 ms: 1.9 MB/s
#   with 64 KiB, 40 MB/s with 1 MiB, client-bound with 16 MiB). Downloads are capped by the
#   windows the client grants in its own SETTINGS and WINDOW_UPDATEs, not by these.
# - frontend-http2-read-timeout [3m]: a connection without open streams is closed after that
#   long, without GOAWAY (PINGs do not hold it open); open streams, even idle, keep it.
# - SIGQUIT (graceful): the listener closes at once; GOAWAY(NO_ERROR, last 2^31-1) at once, then
#   GOAWAY(NO_ERROR, last = the highest stream seen) about 2 s later; open streams go on working;
#   a new stream after it gets no answer at all; the process exits once the last connection has
#   ended (no limit by default). SIGTERM: immediate exit, connections closed without GOAWAY.
#   stop sends SIGTERM to the main process; its worker exits with it.
write_nghttpx_conf ()
{
  local dir=$1 tls_port=$2 squid_port=$3 tuning=""
  case $PH_CLOUD_H2_TUNING in
    recommended)
      tuning="# Uploads at a 16 MiB window per stream and connection (the memory a client may
# make nghttpx buffer is that times the streams).
frontend-http2-window-size=16M
frontend-http2-connection-window-size=16M
# As many tunnels to one host:port as streams (MAX_CONCURRENT_STREAMS).
backend-connections-per-host=100
# Idle tunnels and stalled readers last as long as Squid's read_timeout.
backend-read-timeout=15m
stream-write-timeout=15m"
      ;;
    stock) ;;
    *) die "PH_CLOUD_H2_TUNING must be recommended or stock, not '$PH_CLOUD_H2_TUNING'" ;;
  esac
  cat >"$dir/nghttpx.conf" <<EOF
# Generated by pinhole-cloud.sh: nghttpx as an HTTP/2 forward proxy (ALPN h2 and http/1.1 over
# TLS) in front of Squid, which does the Basic auth. Read with --conf (so not /etc/nghttpx's).
frontend=127.0.0.1,$tls_port
backend=127.0.0.1,$squid_port
http2-proxy=yes
private-key-file=$dir/cloud-key.pem
certificate-file=$dir/cloud-cert.pem
# A self-signed certificate has no OCSP responder to ask.
no-ocsp=yes
workers=1
accesslog-file=$dir/nghttpx-access.log
accesslog-format=\$remote_addr [\$time_iso8601] "\$request" \$status \$body_bytes_sent alpn=\$alpn \$request_time
$tuning
${PH_CLOUD_NGHTTPX_CONF:+include=$PH_CLOUD_NGHTTPX_CONF}
EOF
}

find_origin ()
{
  local c
  if [[ -n ${PH_TEST_ORIGIN:-} ]]; then
    echo "$PH_TEST_ORIGIN"
    return
  fi
  for c in "$SCRIPT_DIR/ph-test-origin" "$SCRIPT_DIR/../../build/tests/cloud/ph-test-origin" \
    "$PWD/build/tests/cloud/ph-test-origin" "$PWD/tests/cloud/ph-test-origin"; do
    [[ -x $c ]] && {
      echo "$c"
      return
    }
  done
  die "ph-test-origin not found: build it (ninja -C build tests/cloud/ph-test-origin) or set PH_TEST_ORIGIN"
}

start_origin ()
{
  local dir=$1 bin line i pid
  bin=$(find_origin)
  need "$bin" "ph-test-origin"
  make_origin_certs "$dir"
  "$bin" --http-port 0 --https-port 0 --cert "$dir/origin-cert.pem" --key "$dir/origin-key.pem" \
    >"$dir/origin.out" 2>"$dir/origin.log" </dev/null &
  pid=$!
  echo "$pid" >"$dir/origin.pid"
  for ((i = 0; i < PH_CLOUD_START_TIMEOUT * 10; i++)); do
    line=$(head -n 1 "$dir/origin.out" 2>/dev/null || true)
    if [[ $line =~ ^http=([0-9]+)\ https=([0-9]+) ]]; then
      ORIGIN_HTTP_PORT=${BASH_REMATCH[1]}
      ORIGIN_HTTPS_PORT=${BASH_REMATCH[2]}
      return 0
    fi
    pid_alive "$pid" || break
    sleep 0.1
  done
  log "ph-test-origin did not report its ports"
  return 1
}

# Squid and the front are started with ports picked beforehand; another process may take one
# of them in between, so the caller retries with fresh ports.
start_daemons ()
{
  local dir=$1 tls_port=$2 squid_port=$3 pid
  if [[ $PH_CLOUD_FRONT == nghttpx ]]; then
    write_nghttpx_conf "$dir" "$tls_port" "$squid_port"
  else
    write_stunnel_conf "$dir" "$tls_port" "$squid_port"
  fi

  if [[ $PH_CLOUD_PROXY == tinyproxy ]]; then
    write_tinyproxy_conf "$dir" "$squid_port" "$CLOUD_USER" "$CLOUD_PASSWORD"
    "$PH_TINYPROXY" -d -c "$dir/tinyproxy.conf" >"$dir/squid/squid.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/squid.pid"
    wait_port "$squid_port" "$pid" tinyproxy || return 1
  else
    write_squid_conf "$dir" "$squid_port"
    "$PH_SQUID" -N -d 1 -f "$dir/squid.conf" >"$dir/squid/squid.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/squid.pid"
    wait_port "$squid_port" "$pid" squid || return 1
  fi

  if [[ $PH_CLOUD_FRONT == nghttpx ]]; then
    # Its main process, which forks the worker; its errors go to stderr.
    "$PH_NGHTTPX" --conf "$dir/nghttpx.conf" >"$dir/nghttpx.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/nghttpx.pid"
    wait_port "$tls_port" "$pid" nghttpx || return 1
    return 0
  fi
  "$PH_STUNNEL" "$dir/stunnel.conf" >"$dir/stunnel.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/stunnel.pid"
  wait_port "$tls_port" "$pid" stunnel || return 1
}

# Stops the daemons once PH_CLOUD_OWNER_PID is gone, so an aborted test leaves nothing behind.
start_watchdog ()
{
  local dir=$1 owner=$2
  (
    trap '' HUP
    while kill -0 "$owner" 2>/dev/null && [[ -e $dir/cloud.env ]]; do
      sleep 1
    done
    bash "$0" stop "$dir" >/dev/null 2>&1 || true
  ) </dev/null >/dev/null 2>&1 &
  echo $! >"$dir/watchdog.pid"
}

cmd_start ()
{
  local dir=$1 user password tls_port squid_port attempt pin front
  if [[ $PH_CLOUD_PROXY == tinyproxy ]]; then
    need "$PH_TINYPROXY" tinyproxy
  else
    need "$PH_SQUID" squid
  fi
  case $PH_CLOUD_FRONT in
    stunnel) need "$PH_STUNNEL" stunnel4 ;;
    nghttpx) need "$PH_NGHTTPX" "nghttpx (Debian package nghttp2-proxy)" ;;
    *) die "PH_CLOUD_FRONT must be stunnel or nghttpx, not '$PH_CLOUD_FRONT'" ;;
  esac
  need "$PH_SQUID_AUTH_HELPER" "squid basic_ncsa_auth helper"
  command -v openssl >/dev/null || die "openssl not found"

  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [[ -e $dir/cloud.env ]] && die "$dir already holds a running cloud (stop it first)"
  mkdir -p "$dir/squid"
  # Whatever goes wrong from here on, leave no daemon behind.
  # shellcheck disable=SC2064
  trap "cmd_stop '$dir'" EXIT

  user=${PH_CLOUD_USER:-alice}
  password=${PH_CLOUD_PASSWORD:-$(openssl rand -hex 12)}
  make_certs "$dir"
  make_htpasswd "$dir" "$user" "$password"
  printf '%s' "$password" >"$dir/password"
  CLOUD_USER=$user
  CLOUD_PASSWORD=$password
  chmod 600 "$dir/password"
  pin="sha256//$(spki_pin "$dir/cloud-cert.pem")"

  if [[ $(id -u) == 0 ]]; then
    # Squid's workers and helpers run as proxy: they must reach DIR, read the htpasswd file
    # and write the logs. Temp dirs are 0700, so open DIR for traversal only.
    chmod 0711 "$dir"
    chown proxy: "$dir/squid" "$dir/htpasswd"
    chmod 0600 "$dir/htpasswd"
    if command -v runuser >/dev/null &&
      ! runuser -u proxy -- sh -c "test -r '$dir/htpasswd' && test -w '$dir/squid'"; then
      die "user proxy (squid's user) cannot reach $dir: put it under a world-traversable dir"
    fi
  fi

  for ((attempt = 0; attempt < 3; attempt++)); do
    tls_port=${PH_CLOUD_TLS_PORT:-$(free_port)}
    squid_port=${PH_CLOUD_SQUID_PORT:-$(free_port)}
    [[ $tls_port != "$squid_port" ]] || continue
    start_daemons "$dir" "$tls_port" "$squid_port" && break
    print_logs "$dir"
    cmd_stop "$dir"
    [[ -n ${PH_CLOUD_TLS_PORT:-}${PH_CLOUD_SQUID_PORT:-} ]] && die "could not start the cloud end"
    log "retrying with other ports"
  done
  ((attempt < 3)) || die "could not start the cloud end"

  ORIGIN_HTTP_PORT=""
  ORIGIN_HTTPS_PORT=""
  if [[ ${PH_CLOUD_ORIGIN:-0} == 1 ]]; then
    start_origin "$dir" || {
      print_logs "$dir"
      cmd_stop "$dir"
      die "could not start the origin"
    }
  fi

  {
    echo "# Generated by pinhole-cloud.sh; shell-sourceable."
    echo "PH_CLOUD_DIR=$dir"
    echo "PH_CLOUD_TLS_PORT=$tls_port"
    echo "PH_CLOUD_SQUID_PORT=$squid_port"
    echo "PH_CLOUD_SERVER_NAME=$SERVER_NAME"
    echo "PH_CLOUD_PIN=$pin"
    echo "PH_CLOUD_CERT=$dir/cloud-cert.pem"
    echo "PH_CLOUD_KEY=$dir/cloud-key.pem"
    echo "PH_CLOUD_USER=$user"
    echo "PH_CLOUD_PASSWORD_FILE=$dir/password"
    echo "PH_CLOUD_SQUID_ACCESS_LOG=$dir/squid/access.log"
    echo "PH_CLOUD_SQUID_CACHE_LOG=$dir/squid/cache.log"
    echo "PH_CLOUD_FRONT=$PH_CLOUD_FRONT"
    if [[ $PH_CLOUD_FRONT == nghttpx ]]; then
      echo "PH_CLOUD_FRONT_LOG=$dir/nghttpx.log"
      echo "PH_CLOUD_NGHTTPX_LOG=$dir/nghttpx.log"
      echo "PH_CLOUD_NGHTTPX_ACCESS_LOG=$dir/nghttpx-access.log"
    else
      echo "PH_CLOUD_FRONT_LOG=$dir/stunnel.log"
      echo "PH_CLOUD_STUNNEL_LOG=$dir/stunnel.log"
    fi
    if [[ -n $ORIGIN_HTTP_PORT ]]; then
      echo "PH_ORIGIN_HTTP_PORT=$ORIGIN_HTTP_PORT"
      echo "PH_ORIGIN_HTTPS_PORT=$ORIGIN_HTTPS_PORT"
      echo "PH_ORIGIN_CA=$dir/origin-ca.pem"
    fi
  } >"$dir/cloud.env.tmp"
  mv "$dir/cloud.env.tmp" "$dir/cloud.env"

  if [[ -n ${PH_CLOUD_OWNER_PID:-} ]]; then
    start_watchdog "$dir" "$PH_CLOUD_OWNER_PID"
  fi
  trap - EXIT
  front=TLS
  [[ $PH_CLOUD_FRONT == nghttpx ]] && front="nghttpx (h2, http/1.1)"
  log "up in $dir: $front 127.0.0.1:$tls_port -> squid 127.0.0.1:$squid_port" \
    "${ORIGIN_HTTP_PORT:+(origin http $ORIGIN_HTTP_PORT https $ORIGIN_HTTPS_PORT)}"
}

# The pid recorded in FILE, if that process is still one of this cloud's (its command line
# names DIR, which guards against a recycled pid).
cloud_pid ()
{
  local file=$1 dir=$2 pid
  [[ -s $file ]] || return 1
  pid=$(<"$file")
  pid_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir" || return 1
  echo "$pid"
}

# The processes whose parent is PID: nghttpx's worker. They exit when their main process does;
# stop waits for them too, and kills what is left.
child_pids ()
{
  local f stat child ppid
  for f in /proc/[0-9]*/stat; do
    stat=$(cat "$f" 2>/dev/null) || continue
    child=${f#/proc/}
    child=${child%/stat}
    stat=${stat##*) }
    read -r _ ppid _ <<<"$stat"
    [[ $ppid == "$1" ]] && echo "$child"
  done
  return 0
}

cmd_stop ()
{
  local dir=$1 name pid child pids=() i
  [[ -d $dir ]] || return 0
  dir=$(cd "$dir" && pwd)
  # The watchdog first, so it does not race this stop; unless this stop is the watchdog's own.
  if pid=$(cloud_pid "$dir/watchdog.pid" "$dir") && [[ $pid != "$PPID" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  rm -f "$dir/watchdog.pid"
  # TERM everything at once, then wait for all; KILL what is left after 5 s.
  for name in stunnel nghttpx origin squid; do
    if pid=$(cloud_pid "$dir/$name.pid" "$dir"); then
      if [[ $name == nghttpx ]]; then
        for child in $(child_pids "$pid"); do
          pids+=("$child")
        done
      fi
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for ((i = 0; i < 50 && ${#pids[@]} > 0; i++)); do
    for pid in "${!pids[@]}"; do
      pid_alive "${pids[$pid]}" || unset "pids[$pid]"
    done
    ((${#pids[@]} == 0)) || sleep 0.1
  done
  for pid in "${pids[@]}"; do
    log "pid $pid ignored SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$dir/stunnel.pid" "$dir/nghttpx.pid" "$dir/origin.pid" "$dir/squid.pid" "$dir/cloud.env"
}

cmd_status ()
{
  local dir=$1 f ok=0 workers
  [[ -e $dir/cloud.env ]] || die "no cloud in $dir"
  for f in squid stunnel nghttpx origin; do
    [[ -s $dir/$f.pid ]] || continue
    if [[ $f == nghttpx ]] && pid_alive "$(<"$dir/$f.pid")"; then
      # The main process serves nothing itself: its worker must run too.
      workers=$(child_pids "$(<"$dir/$f.pid")" | tr '\n' ' ')
      if [[ -n $workers ]]; then
        echo "$f: running (pid $(<"$dir/$f.pid"), worker ${workers% })"
      else
        echo "$f: running without a worker (pid $(<"$dir/$f.pid"))"
        ok=1
      fi
    elif pid_alive "$(<"$dir/$f.pid")"; then
      echo "$f: running (pid $(<"$dir/$f.pid"))"
    else
      echo "$f: not running"
      ok=1
    fi
  done
  return $ok
}

cmd_agent_config ()
{
  local dir=$1 out=$2 listen=${3:-3128}
  [[ -e $dir/cloud.env ]] || die "no cloud in $dir (run start first)"
  # shellcheck disable=SC1091
  source "$dir/cloud.env"
  cat >"$out" <<EOF
# pinhole-agent config pinned to the cloud end in $PH_CLOUD_DIR
[listener]
address=127.0.0.1:$listen

[upstream]
host=127.0.0.1
port=$PH_CLOUD_TLS_PORT
server-name=$PH_CLOUD_SERVER_NAME
pins=$PH_CLOUD_PIN
verify=pin
username=$PH_CLOUD_USER
password-file=$PH_CLOUD_PASSWORD_FILE
$([[ ${PH_CLOUD_FRONT:-stunnel} == nghttpx ]] && echo "# nghttpx picks h2 by ALPN: tunnels and plain requests share one HTTP/2 connection" && echo "http2=auto")

[log]
level=info
EOF
}

[[ $# -ge 2 ]] || usage
case $1 in
  start) cmd_start "$2" ;;
  stop) cmd_stop "$2" ;;
  status) cmd_status "$2" ;;
  agent-config)
    [[ $# -ge 3 ]] || usage
    cmd_agent_config "$2" "$3" "${4:-}"
    ;;
  *) usage ;;
esac
