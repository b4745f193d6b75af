#!/bin/bash
# Idle CPU of a ul2tpd with N static Ethernet sessions (reorder_timeout 0, devices down, no
# traffic), measured as utime + stime from /proc/PID/stat over S seconds.
# Usage (root): BIN=target/release bash bench/idle-cpu.sh [N] [S]
# The daemon runs with `--workers 1` (UL2TPD_ARGS replaces it): every TAP queue is one
# descriptor, and a multi-queue TAP per session would double the descriptors these runs need.
set -euo pipefail
N=${1:-10000}
S=${2:-10}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
NS=ul2tp-idle-$$
DIR=$(mktemp -d)
cleanup() { [ -n "${PID:-}" ] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null; ip netns del "$NS" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
{
  printf '[[tunnel]]\ntunnel_id = 3000\npeer_tunnel_id = 4000\nlocal = "127.0.0.1"\nremote = "127.0.0.1"\nudp_sport = 7700\nudp_dport = 7701\n'
  for i in $(seq 1 "$N"); do printf '\n[[tunnel.session]]\nsession_id = %d\npeer_session_id = %d\n' "$i" "$i"; done
} > "$DIR/idle.toml"
t0=$(date +%s)
ip netns exec "$NS" "$BIN/ul2tpd" ${UL2TPD_ARGS:---workers 1} --socket "$DIR/api.sock" --config "$DIR/idle.toml" --log warn 2>"$DIR/log" &
PID=$!
until [ -S "$DIR/api.sock" ]; do kill -0 "$PID" || { cat "$DIR/log"; exit 1; }; sleep 0.2; done
n=$("$BIN/ul2tp" --socket "$DIR/api.sock" show session | grep -c '^Session ')
echo "$n sessions up after $(( $(date +%s) - t0 )) s"
hz=$(getconf CLK_TCK)
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$PID/stat"; }
c0=$(ticks); w0=$(date +%s.%N)
sleep "$S"
c1=$(ticks); w1=$(date +%s.%N)
awk -v c="$((c1 - c0))" -v hz="$hz" -v w0="$w0" -v w1="$w1" -v n="$n" \
  'BEGIN { printf "idle CPU with %d sessions: %.3f %% of one core (%d ticks of 1/%d s in %.1f s)\n", n, 100 * c / hz / (w1 - w0), c, hz, w1 - w0 }'
echo "RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"
