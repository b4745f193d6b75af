#!/bin/bash
# N static L2TPv3 Ethernet sessions (one TAP device each) over 10 tunnels from one
# `ul2tp -batch` run, then all deleted with a second batch (`del tunnel` x 10), in a fresh
# network namespace; also the start-up time of a daemon given the same N sessions in its
# configuration file and the time it then takes to stop on SIGTERM. Prints wall-clock times
# and the daemon's RSS.
# Usage (root): BIN=target/release bash bench/batch-scale.sh [N]   (default 20000)
# Each session holds one descriptor: N must stay below the daemon's RLIMIT_NOFILE hard limit.
# The daemon runs with `--workers 1` (UL2TPD_ARGS replaces it): every TAP queue is one
# descriptor, and a multi-queue TAP per session would double the descriptors these runs need.
set -euo pipefail
N=${1:-20000}
T=10
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
NS=ul2tp-batch-$$
DIR=$(mktemp -d)
cleanup() { [ -n "${PID:-}" ] && kill -9 "$PID" 2>/dev/null; wait 2>/dev/null; ip netns del "$NS" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
devices() { ip -n "$NS" -o link show | grep -c ': l2tpeth' || true; }
per=$(( (N + T - 1) / T ))
{
  for t in $(seq 1 $T); do
    echo "add tunnel tunnel_id $t peer_tunnel_id $t encap udp local 127.0.0.1 remote 127.0.0.1 udp_sport $((7000 + t)) udp_dport $((8000 + t))"
  done
  for i in $(seq 1 "$N"); do
    t=$(( (i - 1) / per + 1 ))
    echo "add session tunnel_id $t session_id $i peer_session_id $i"
  done
} > "$DIR/add.batch"
for t in $(seq 1 $T); do echo "del tunnel tunnel_id $t"; done > "$DIR/del.batch"

ip netns exec "$NS" "$BIN/ul2tpd" ${UL2TPD_ARGS:---workers 1} --socket "$DIR/api.sock" --log warn 2>"$DIR/log" &
PID=$!
until [ -S "$DIR/api.sock" ]; do kill -0 "$PID" || { cat "$DIR/log"; exit 1; }; sleep 0.1; done
echo "== $N sessions in $T tunnels, one ul2tp -batch run"
t0=$(now)
"$BIN/ul2tp" --socket "$DIR/api.sock" -batch "$DIR/add.batch"
echo "batch create: $(since "$t0") s; $(devices) devices; RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"
t0=$(now)
"$BIN/ul2tp" --socket "$DIR/api.sock" -batch "$DIR/del.batch"
echo "batch delete: API $(since "$t0") s"
while [ "$(devices)" -gt 0 ]; do sleep 0.05; done
echo "batch delete: all devices gone after $(since "$t0") s; RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"
kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=

# The same sessions from the configuration file.
{
  for t in $(seq 1 $T); do
    printf '\n[[tunnel]]\ntunnel_id = %d\npeer_tunnel_id = %d\nlocal = "127.0.0.1"\nremote = "127.0.0.1"\nudp_sport = %d\nudp_dport = %d\n' "$t" "$t" $((7000 + t)) $((8000 + t))
    for i in $(seq $(( (t - 1) * per + 1 )) $(( t * per < N ? t * per : N ))); do
      printf '\n[[tunnel.session]]\nsession_id = %d\npeer_session_id = %d\n' "$i" "$i"
    done
  done
} > "$DIR/static.toml"
while [ "$(devices)" -gt 0 ]; do sleep 0.05; done
t0=$(now)
ip netns exec "$NS" "$BIN/ul2tpd" ${UL2TPD_ARGS:---workers 1} --socket "$DIR/api2.sock" --config "$DIR/static.toml" --log warn 2>"$DIR/log" &
PID=$!
until [ -S "$DIR/api2.sock" ]; do kill -0 "$PID" || { cat "$DIR/log"; exit 1; }; sleep 0.05; done
echo "config file start-up: $(since "$t0") s to the API socket; $(devices) devices"
t0=$(now)
kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
echo "SIGTERM with $N sessions: exited after $(since "$t0") s; $(devices) devices left"
