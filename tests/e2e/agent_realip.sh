#!/usr/bin/env bash
# e2e: [realip] files loaded into the real nginx, HAProxy and Apache. The agent writes them
# from the ranges of a local range server; each server checks its config with the file
# included (nginx -t, haproxy -c, apache2ctl -t), then runs in the namespace and restores the
# visitor's address from CF-Connecting-IP only for a peer inside those ranges. A range change
# rewrites the files and on_change reloads the servers; a failing or hanging on_change shows
# in status; the agent's loop keeps answering meanwhile.
source "$(dirname "$0")/lib.sh"
og_setup realip
for tool in nginx haproxy apache2 apache2ctl curl; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (scripts/install-deps.sh)"; exit 77; }
done

NS=$(og_netns realip)
RS=$OG_TMP/rs
og_range_server "$NS" "$RS"
cp "$OG_TEST_DATA/test-edge-ips.json" "$RS/ranges.json"   # 198.51.100.0/24, 192.0.2.0/25, 2001:db8:cf::/48
echo good >"$RS/mode"
W=$OG_TMP/web
mkdir -p "$W"/nginx/conf.d "$W"/haproxy "$W"/apache/conf "$W"/www
chmod 0755 "$W" "$W"/nginx/conf.d "$W"/haproxy "$W"/apache/conf
NGINX_FILE=$W/nginx/conf.d/cloudflare-realip.conf
HAPROXY_FILE=$W/haproxy/cloudflare.lst
APACHE_FILE=$W/apache/conf/cloudflare-realip.conf
# Peers on the namespace's loopback: edge (in the fetched ranges), extra_allow and
# mgmt_allow (trusted by the firewall, never for CF-Connecting-IP), and a stranger.
for a in 198.51.100.7 192.0.2.130 192.0.2.200 192.0.2.201 203.0.113.50; do ip -n "$NS" addr add "$a/32" dev lo; done

# on_change: what it does is chosen by $W/mode (ok, reload, fail, hang); every call is logged
# with its arguments and environment.
cat >"$W/on_change.sh" <<EOF
#!/bin/bash
echo "\$#|\$1|\$(env | grep -v -e '^PWD=' -e '^SHLVL=' -e '^_=' | sort | tr '\n' ' ')" >>"$W/on_change.calls"
case \$(cat "$W/mode") in
  ok) exit 0 ;;
  reload)
    nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log" -s reload || exit 1
    haproxy -D -p "$W/haproxy/pid" -f "$W/haproxy/haproxy.cfg" -sf \$(cat "$W/haproxy/pid") || exit 1
    apache2 -d "$W/apache" -k graceful || exit 1 ;;
  fail) echo "reload refused on purpose" >&2; exit 4 ;;
  hang) sleep 300 & echo \$! >"$W/hang.pid"; echo hanging; wait ;;
esac
EOF
chmod 0755 "$W/on_change.sh"
echo ok >"$W/mode"

SOCK=$OG_TMP/agent.sock
cat >"$OG_TMP/agent.toml" <<TOML
[ranges]
sources = ["https://127.0.0.1:$RS_PORT/client/v4/ips"]
ca_file = "$RS/pki/ca.pem"
state_dir = "$OG_TMP/state"
export_file = "$OG_TMP/export/edge-ranges.json"
extra_allow = ["192.0.2.200"]
connect_timeout = "2s"
total_timeout = "3s"
retry_min = "1h"

[protect]
mgmt_allow = ["192.0.2.201"]
verify_interval = "1s"

$(og_toml_no_kernel "$SOCK")

[realip]
nginx = "$NGINX_FILE"
haproxy = "$HAPROXY_FILE"
apache = "$APACHE_FILE"
on_change = ["$W/on_change.sh", "two words"]
on_change_timeout = "3s"
TOML

ctl() { ip netns exec "$NS" "$CTL" -s "$SOCK" "$@"; }
status_json() { ctl status --json 2>/dev/null || true; }
has_warning() { status_json | jq -e --arg id "$1" '[.warning_details[] | select(.id == $id)] | length == 1' >/dev/null; }
calls() { if [[ -f $W/on_change.calls ]]; then wc -l <"$W/on_change.calls"; else echo 0; fi; }

# --- expected bytes ------------------------------------------------------------------------
header() {
  printf '%s\n' "# Written by originguard-agent: the Cloudflare edge ranges in force, rewritten when they"
  printf '%s' "# change (do not edit). "
}
want_nginx() {
  header; echo "Include it in an http, server or location block."
  for p in "$@"; do echo "set_real_ip_from $p;"; done
  echo "real_ip_header CF-Connecting-IP;"
}
want_haproxy() {
  header; echo "One prefix a line, for: acl from_cloudflare src -f <this file>"
  printf '%s\n' "$@"
}
want_apache() {
  header; echo "Needs mod_remoteip (a2enmod remoteip)."
  echo "RemoteIPHeader CF-Connecting-IP"
  for p in "$@"; do echo "RemoteIPTrustedProxy $p"; done
}
files_are() {  # PREFIX...: all three files hold exactly these prefixes, in this order
  cmp -s <(want_nginx "$@") "$NGINX_FILE" && cmp -s <(want_haproxy "$@") "$HAPROXY_FILE" &&
    cmp -s <(want_apache "$@") "$APACHE_FILE"
}

# --- the servers' configs: each includes / uses the generated file -------------------------
cat >"$W/nginx/nginx.conf" <<EOF
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  include $NGINX_FILE;
  server { listen 127.0.0.1:18080; location / { return 200 "\$remote_addr\n"; } }
}
EOF
cat >"$W/haproxy/haproxy.cfg" <<EOF
defaults
  mode http
  timeout client 5s
  timeout server 5s
  timeout connect 5s
frontend fe
  bind 127.0.0.1:18081
  acl from_cloudflare src -f $HAPROXY_FILE
  http-request set-src req.hdr(CF-Connecting-IP) if from_cloudflare
  http-request return status 200 content-type text/plain lf-string "%[src]\n"
EOF
cat >"$W/apache/apache2.conf" <<EOF
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule remoteip_module /usr/lib/apache2/modules/mod_remoteip.so
ServerName localhost
PidFile $W/apache/apache2.pid
ErrorLog $W/apache/error.log
DefaultRuntimeDir $W/apache
Mutex file:$W/apache default
Listen 127.0.0.1:18082
User nobody
Group nogroup
DocumentRoot $W/www
<Directory />
  AllowOverride None
</Directory>
LogFormat "%a" client
CustomLog $W/apache/access.log client
Include $APACHE_FILE
EOF
nginx_t() { nginx -t -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log"; }
haproxy_c() { haproxy -c -f "$W/haproxy/haproxy.cfg"; }
apache_t() { APACHE_CONFDIR=$W/apache apache2ctl -t; }

# --- 1. config checks: --check-config and reload refuse what the agent could not do -------
check_refused() {  # DESCRIPTION SED-EXPRESSION EXPECTED-TEXT
  sed "$2" "$OG_TMP/agent.toml" >"$OG_TMP/bad.toml"
  local rc=0 out
  out=$("$AGENT" --config "$OG_TMP/bad.toml" --check-config 2>&1) || rc=$?
  og_check "--check-config refuses $1 ($3)" bash -c "[[ $rc == 1 ]] && grep -qF -- '$3' <<<'$out'"
}
check_refused "a relative path" "s#^nginx = .*#nginx = \"conf.d/x.conf\"#" "[realip] nginx: must be an absolute path"
check_refused "a missing directory" "s#^nginx = .*#nginx = \"$W/nope/x.conf\"#" "[realip] $W/nope/x.conf: directory $W/nope"
check_refused "a program found by PATH" 's#^on_change = .*#on_change = ["systemctl", "reload", "nginx"]#' \
  "[realip] on_change: the program (first element) must be an absolute path"
check_refused "a missing program" "s#^on_change = .*#on_change = [\"$W/nope.sh\"]#" "[realip] on_change $W/nope.sh: No such file"
chmod 0775 "$W/haproxy"
check_refused "a group-writable directory" "" "directory $W/haproxy is group- or world-writable"
chmod 0755 "$W/haproxy"
og_check "--check-config accepts the good file" "$AGENT" --config "$OG_TMP/agent.toml" --check-config

# --- 2. start: exact files from the fetched ranges only, on_change once --------------------
ip netns exec "$NS" "$AGENT" --config "$OG_TMP/agent.toml" --foreground 2>>"$OG_TMP/agent.log" &
AGENT_PID=$!
OG_PIDS+=("$AGENT_PID")
og_wait_for 10 ctl version
fetched() { [[ $(status_json | jq -r .ranges.source) == https://127.0.0.1:* ]]; }
og_wait_for 10 fetched
og_check "files hold the fetched ranges, sorted (v4 then v6)" \
  og_wait_for 10 files_are 192.0.2.0/25 198.51.100.0/24 2001:db8:cf::/48
og_check "extra_allow and mgmt_allow are in no file (not Cloudflare)" \
  bash -c "! grep -h -e 192.0.2.200 -e 192.0.2.201 '$NGINX_FILE' '$HAPROXY_FILE' '$APACHE_FILE'"
og_check "export_file still has extra_allow (the gatekeeper's view)" \
  jq -e '.ipv4 | index("192.0.2.200/32")' "$OG_TMP/export/edge-ranges.json"
og_check "files are 0644" bash -c "[[ \$(stat -c %a '$NGINX_FILE' '$HAPROXY_FILE' '$APACHE_FILE' | sort -u) == 644 ]]"
calls_are() { [[ $(calls) == "$1" ]]; }
og_check "on_change ran twice: for the embedded snapshot written at start, then for the fetch" og_wait_for 10 calls_are 2
og_check "on_change got its arguments as given (argv, no shell)" grep -q '^1|two words|' "$W/on_change.calls"
og_check "on_change ran with PATH alone in its environment" \
  grep -qx '1|two words|PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin ' "$W/on_change.calls"
og_check "status healthy" bash -c "[[ \$(ip netns exec $NS $CTL -s $SOCK status --json | jq -r .health) == healthy ]]"

# --- 3. the real servers accept the files ---------------------------------------------------
og_check "nginx -t with the file included" nginx_t
og_check "haproxy -c with the file as an ACL source" haproxy_c
og_check "apache2ctl -t with the file included" apache_t
# ... and refuse a broken copy (the checks can fail; the agent would repair the file itself
# within a second, so the copies are what is broken)
mkdir -p "$OG_TMP/broken"
{ cat "$NGINX_FILE"; echo "set_real_ip_from 192.0.2.0/33;"; } >"$OG_TMP/broken/nginx"
{ cat "$HAPROXY_FILE"; echo "not.an.address"; } >"$OG_TMP/broken/haproxy"
{ cat "$APACHE_FILE"; echo "RemoteIPTrustedProxy"; } >"$OG_TMP/broken/apache"
sed "s#$NGINX_FILE#$OG_TMP/broken/nginx#" "$W/nginx/nginx.conf" >"$OG_TMP/broken/nginx.conf"
sed "s#$HAPROXY_FILE#$OG_TMP/broken/haproxy#" "$W/haproxy/haproxy.cfg" >"$OG_TMP/broken/haproxy.cfg"
mkdir -p "$OG_TMP/broken/apache-conf"
sed "s#$APACHE_FILE#$OG_TMP/broken/apache#" "$W/apache/apache2.conf" >"$OG_TMP/broken/apache-conf/apache2.conf"
og_check "nginx -t refuses a broken file (control)" \
  bash -c "! nginx -t -p '$W/nginx' -c '$OG_TMP/broken/nginx.conf' -e '$W/nginx/error.log' 2>/dev/null"
og_check "haproxy -c refuses a broken file (control)" bash -c "! haproxy -c -f '$OG_TMP/broken/haproxy.cfg' >/dev/null 2>&1"
og_check "apache2ctl -t refuses a broken file (control)" \
  bash -c "! APACHE_CONFDIR='$OG_TMP/broken/apache-conf' apache2ctl -t >/dev/null 2>&1"
cp "$NGINX_FILE" "$OG_TMP/nginx.good"
echo "set_real_ip_from 0.0.0.0/0;" >>"$NGINX_FILE"
og_check "the agent puts an edited file back (verify cycle)" og_wait_for 10 cmp -s "$OG_TMP/nginx.good" "$NGINX_FILE"
og_check "... and runs on_change for it" og_wait_for 10 calls_are 3

# --- 4. the servers restore the visitor's address only from an edge peer ------------------
ip netns exec "$NS" nginx -p "$W/nginx" -c "$W/nginx/nginx.conf" -e "$W/nginx/error.log"
ip netns exec "$NS" haproxy -D -p "$W/haproxy/pid" -f "$W/haproxy/haproxy.cfg"
ip netns exec "$NS" apache2 -d "$W/apache" -k start
# (ip netns pids finds them at cleanup: nginx, haproxy and apache2 daemonise)
seen() {  # SERVER PEER -> the client address the server saw for a request with CF-Connecting-IP
  local port out
  case $1 in nginx) port=18080 ;; haproxy) port=18081 ;; apache) port=18082 ;; esac
  : >"$W/apache/access.log"
  out=$(ip netns exec "$NS" curl -s -m 5 --interface "$2" -H 'CF-Connecting-IP: 203.0.113.9' "http://127.0.0.1:$port/")
  if [[ $1 == apache ]]; then
    for _ in $(seq 50); do [[ -s $W/apache/access.log ]] && break; sleep 0.1; done
    out=$(cat "$W/apache/access.log")
  fi
  echo "$out"
}
up() { [[ $(ip netns exec "$NS" curl -s -m 2 "http://127.0.0.1:$1/" -o /dev/null -w '%{http_code}') != 000 ]]; }
for port in 18080 18081 18082; do og_wait_for 10 up $port || og_log "server on $port did not start"; done
for server in nginx haproxy apache; do
  og_check "$server: edge peer 198.51.100.7 -> CF-Connecting-IP 203.0.113.9 trusted" \
    [ "$(seen $server 198.51.100.7)" = 203.0.113.9 ]
  og_check "$server: extra_allow peer 192.0.2.200 -> header ignored" [ "$(seen $server 192.0.2.200)" = 192.0.2.200 ]
  og_check "$server: stranger 203.0.113.50 -> header ignored" [ "$(seen $server 203.0.113.50)" = 203.0.113.50 ]
  og_check "$server: 192.0.2.130 (not in the ranges yet) -> header ignored" [ "$(seen $server 192.0.2.130)" = 192.0.2.130 ]
done

# --- 5. a range change rewrites the files, on_change reloads the servers ------------------
echo reload >"$W/mode"
jq '.result.ipv4_cidrs += ["192.0.2.128/25"] | .result.etag = "two"' "$OG_TEST_DATA/test-edge-ips.json" >"$RS/ranges.json"
before=$(calls)
ctl refresh >/dev/null
og_check "refresh rewrote the files with the new ranges" \
  og_wait_for 10 files_are 192.0.2.0/25 192.0.2.128/25 198.51.100.0/24 2001:db8:cf::/48
og_check "on_change ran once for the change" og_wait_for 10 calls_are $((before + 1))
for server in nginx haproxy apache; do
  trusted_new() { [ "$(seen "$1" 192.0.2.130)" = 203.0.113.9 ]; }
  og_check "$server (reloaded by on_change): 192.0.2.130 now trusted" og_wait_for 10 trusted_new $server
done
og_check "status healthy after the reload" bash -c "[[ \$(ip netns exec $NS $CTL -s $SOCK status --json | jq -r .health) == healthy ]]"
og_check "no temp file left next to the files" \
  bash -c "! ls '$W'/nginx/conf.d '$W'/haproxy '$W'/apache/conf | grep -q '\.tmp\.'"

# --- 6. a failing on_change is a status warning with an id ---------------------------------
echo fail >"$W/mode"
jq '.result.ipv4_cidrs = ["198.51.100.0/24", "192.0.2.0/25"] | .result.etag = "three"' \
  "$OG_TEST_DATA/test-edge-ips.json" >"$RS/ranges.json"
ctl refresh >/dev/null || true
og_check "failing on_change: warning realip.on_change_failed" og_wait_for 10 has_warning realip.on_change_failed
j=$(status_json)
og_check "... which says why, with the command's output" \
  jq -e '.warning_details[] | select(.id == "realip.on_change_failed") | .text | test("exit status 4, output: reload refused on purpose")' <<<"$j"
og_check "... and needs action (status degraded, exit 1)" bash -c "! ip netns exec $NS $CTL -s $SOCK status >/dev/null 2>&1"
og_check "the files are in place all the same" files_are 192.0.2.0/25 198.51.100.0/24 2001:db8:cf::/48

# --- 7. a hanging on_change is killed at on_change_timeout; the agent keeps answering -----
echo hang >"$W/mode"
jq '.result.ipv4_cidrs = ["198.51.100.0/24"] | .result.etag = "four"' "$OG_TEST_DATA/test-edge-ips.json" >"$RS/ranges.json"
before=$(calls)
ctl refresh >/dev/null || true
og_wait_for 10 test -s "$W/hang.pid"
og_check "while on_change hangs the control socket answers" ctl version
hang_warned() {
  status_json | jq -e '.warning_details[] | select(.id == "realip.on_change_failed") | .text
    | test("timed out after 3s \\(killed\\), output: hanging")' >/dev/null
}
og_check "hanging on_change: killed, the warning says timed out" og_wait_for 10 hang_warned
hang_gone() { ! kill -0 "$(cat "$W/hang.pid")" 2>/dev/null || grep -q '^State:.*Z' "/proc/$(cat "$W/hang.pid")/status"; }
og_check "... and what it started was killed too" og_wait_for 5 hang_gone
og_check "it ran once (the retry waits for the backoff)" [ "$(calls)" = $((before + 1)) ]

# --- 8. recovery: the next change runs on_change at once, a success clears the warning -----
echo reload >"$W/mode"
jq '.result.etag = "five"' "$OG_TEST_DATA/test-edge-ips.json" >"$RS/ranges.json"
ctl refresh >/dev/null || true
healthy() { [[ $(status_json | jq -r .health) == healthy ]]; }
og_check "a successful on_change clears the warning" og_wait_for 10 healthy
og_check "files back to the first ranges" files_are 192.0.2.0/25 198.51.100.0/24 2001:db8:cf::/48

# --- 9. a reload that makes a file unwritable is refused; one that adds nothing writes nothing
sed -i "s#^apache = .*#apache = \"$W/nope/x.conf\"#" "$OG_TMP/agent.toml"
rc=0; out=$(ctl reload 2>&1) || rc=$?
og_check "reload with a missing directory is refused" bash -c "[[ $rc == 1 ]] && grep -qF '$W/nope' <<<'$out'"
sed -i "s#^apache = .*#apache = \"$APACHE_FILE\"#" "$OG_TMP/agent.toml"
before=$(calls)
og_check "reload of the good file" ctl reload
sleep 2.5  # over two verify cycles (1s): nothing may run meanwhile
og_check "unchanged files: no on_change on reload or verify" [ "$(calls)" = "$before" ]

og_finish
