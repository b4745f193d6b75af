#!/bin/bash
# PPP session scale (issue 10, docs/PERFORMANCE.md "Session scale"): an LNS ul2tpd with
# ppp_device = "shared" in one namespace, ul2tp-loadgen --ppp (PAP, IPCP) in another, SESSIONS
# L2TPv2 PPP calls across TUNNELS tunnels opened at RATE calls/s. Prints
#   - the setup rate seen by the LNS (loadgen start to SESSIONS calls with IPCP up on the
#     shared device, `ul2tp_ppp_shared_calls`),
#   - the LNS's RSS before and with the calls, per call,
#   - its idle CPU (utime + stime from /proc/PID/stat) over IDLE_S seconds with all calls up,
#   - the teardown: the LNS deletes the tunnels (StopCCN; each takes its calls with it), timed
#     until no call and no session is left.
# The LNS runs with ppp_echo_interval = ECHO (default 3600 s rather than the 10 s default, so
# that the idle figure has no echo traffic; the loadgen's links answer Echo-Requests, ECHO=2
# measures their cost); the loadgen sends no IP through the calls.
#
# Usage (root): BIN=target/release bash bench/ppp-scale.sh [SESSIONS] [TUNNELS] [RATE] [IDLE_S]
# (BIN holds ul2tpd, ul2tp and ul2tp-loadgen, release builds.)
set -euo pipefail
N=${1:-10000}
T=${2:-10}
RATE=${3:-3000}
IDLE=${4:-30}
ECHO=${ECHO:-3600}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
TAG=sharedtun$$
A=$TAG-lac; B=$TAG-lns
DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in "$A" "$B"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT
[ $((N % T)) -eq 0 ] || { echo "SESSIONS must be a multiple of TUNNELS" >&2; exit 2; }

for n in "$A" "$B"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add "st$$a" netns "$A" type veth peer name "st$$b" netns "$B"
ip -n "$A" addr add 192.0.2.1/24 dev "st$$a"; ip -n "$A" link set "st$$a" up
ip -n "$B" addr add 192.0.2.2/24 dev "st$$b"; ip -n "$B" link set "st$$b" up

cat > "$DIR/lns.toml" <<EOF
[control]
listen = "192.0.2.2:1701"
max_half_open_per_peer = 1000
new_tunnels_per_second_per_peer = 1000
new_tunnels_burst_per_peer = 1000
ppp_local = "100.64.0.1"
ppp_pool = "100.64.0.2-100.67.255.254"
ppp_auth = "pap"
ppp_users = { bench = "scale-secret" }
ppp_echo_interval = $ECHO
ppp_device = "shared"
ppp_device_name = "subs0"

[metrics]
listen = "127.0.0.1:9650"
EOF
echo scale-secret > "$DIR/pw"; chmod 600 "$DIR/pw"

ip netns exec "$B" "$BIN/ul2tpd" --socket "$DIR/api.sock" --config "$DIR/lns.toml" --log warn 2>"$DIR/lns.log" &
PID=$!; PIDS+=("$PID")
until [ -S "$DIR/api.sock" ]; do kill -0 "$PID" || { cat "$DIR/lns.log"; exit 1; }; sleep 0.2; done
metric() { ip netns exec "$B" curl -s http://127.0.0.1:9650/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }
hz=$(getconf CLK_TCK)
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/${1:-$PID}/stat"; }
now() { date +%s.%N; }
sleep 1
rss0=$(rss)

# Held long enough for the whole run; the LNS tears it down.
ip netns exec "$A" "$BIN/ul2tp-loadgen" --peer 192.0.2.2:1701 --local 192.0.2.1:1701 \
  --tunnels "$T" --sessions $((N / T)) --ppp --user bench --password-file "$DIR/pw" \
  --rate "$RATE" --hold 100000 --timeout 100000 >"$DIR/loadgen.out" 2>&1 &
LG=$!; PIDS+=("$LG")
t0=$(now); c0=$(ticks); g0=$(ticks "$LG")
last=0; stall=0
while :; do
  up=$(metric ul2tp_ppp_shared_calls); up=${up:-0}
  [ "$up" -ge "$N" ] && break
  if [ "$up" -eq "$last" ]; then stall=$((stall + 1)); else stall=0; last=$up; fi
  [ "$stall" -lt 60 ] || { echo "stuck at $up calls up"; tail -5 "$DIR/lns.log"; break; }
  kill -0 "$LG" 2>/dev/null || { echo "loadgen ended:"; cat "$DIR/loadgen.out"; break; }
  sleep 0.5
done
t1=$(now); c1=$(ticks); g1=$(ticks "$LG")
awk -v n="$up" -v a="$t0" -v b="$t1" -v c=$((c1 - c0)) -v g=$((g1 - g0)) -v hz="$hz" 'BEGIN {
  printf "setup: %d calls with IPCP up in %.1f s: %.0f calls/s (CPU: LNS %.0f %%, loadgen %.0f %% of one core)\n", n, b - a, n / (b - a), 100 * c / hz / (b - a), 100 * g / hz / (b - a) }'
rcvbuf() { ip netns exec "$1" awk '/^Udp:/ { if (h) { print $6 } else { h = 1 } }' /proc/net/snmp; }
echo "UDP receive-buffer drops: LAC (loadgen) $(rcvbuf "$A"), LNS $(rcvbuf "$B")"
echo "tunnels: $(ip netns exec "$B" "$BIN/ul2tp" --socket "$DIR/api.sock" show tunnel | grep -c '^Tunnel ')"
sleep 2
rss1=$(rss)
awk -v a="$rss0" -v b="$rss1" -v n="$up" 'BEGIN {
  printf "RSS: %.1f MB before, %.1f MB with %d calls: %.2f KiB per call\n", a / 1024, b / 1024, n, (b - a) / n }'
c0=$(ticks); w0=$(now)
sleep "$IDLE"
c1=$(ticks); w1=$(now)
awk -v c=$((c1 - c0)) -v hz="$hz" -v a="$w0" -v b="$w1" -v n="$up" 'BEGIN {
  printf "idle CPU with %d calls: %.2f %% of one core (%d ticks of 1/%d s in %.1f s)\n", n, 100 * c / hz / (b - a), c, hz, b - a }'
echo "calls still up after the idle interval: $(metric ul2tp_ppp_shared_calls)"

# Teardown: the LNS deletes every tunnel (StopCCN to the loadgen).
tids=$(ip netns exec "$B" "$BIN/ul2tp" --socket "$DIR/api.sock" show tunnel | awk '/^Tunnel / { sub(",", "", $2); print $2 }')
t0=$(now); c0=$(ticks)
for tid in $tids; do ip netns exec "$B" "$BIN/ul2tp" --socket "$DIR/api.sock" del tunnel tunnel_id "$tid" >/dev/null; done
t_api=$(now)
while :; do
  left=$(metric ul2tp_ppp_shared_calls); s=$(metric 'ul2tp_sessions_up{kind="dynamic"}')
  [ "${left:-0}" -eq 0 ] && [ "${s:-0}" -eq 0 ] && break
  sleep 0.1
done
t1=$(now); c1=$(ticks)
awk -v n="$up" -v a="$t0" -v m="$t_api" -v b="$t1" -v c=$((c1 - c0)) -v hz="$hz" 'BEGIN {
  printf "teardown: %d calls gone in %.2f s (API %.2f s): %.0f calls/s (LNS CPU %.0f %% of one core)\n", n, b - a, m - a, n / (b - a), 100 * c / hz / (b - a) }'
echo "RSS after teardown: $(awk -v r="$(rss)" 'BEGIN { printf "%.1f MB", r / 1024 }')"
echo "LNS warnings: $(grep -c WARN "$DIR/lns.log" || true)"
