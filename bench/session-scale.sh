#!/bin/bash
# Creation and deletion time of N static L2TPv3 Ethernet sessions (one TAP device each) over
# one API connection, in a fresh network namespace. Prints the time per fifth of the creates
# (constant if create cost does not grow with the table), the totals, the API time of the
# deletes and the time until every device is gone, and the daemon's RSS.
# Usage (root): BIN=target/release bash bench/session-scale.sh [N ...]   (default 5000 20000)
# The daemon runs with `--workers 1` (UL2TPD_ARGS replaces it): every TAP queue is one
# descriptor, and a multi-queue TAP per session would double the descriptors these runs need.
set -euo pipefail
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- 5000 20000
for N in "$@"; do
  NS=ul2tp-scale-$$-$N
  DIR=$(mktemp -d)
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  ip netns exec "$NS" "$BIN/ul2tpd" ${UL2TPD_ARGS:---workers 1} --socket "$DIR/api.sock" --log warn 2>"$DIR/log" &
  PID=$!
  trap 'kill -9 $PID 2>/dev/null; ip netns del $NS 2>/dev/null; rm -rf $DIR' EXIT
  until [ -S "$DIR/api.sock" ]; do kill -0 "$PID" || { cat "$DIR/log"; exit 1; }; sleep 0.1; done
  echo "== $N sessions"
  DAEMON_PID=$PID ip netns exec "$NS" python3 "$HERE/session-scale.py" "$DIR/api.sock" "$N"
  echo "RSS after: $(awk '/VmRSS/ {print $2, $3}' /proc/$PID/status)"
  kill -9 "$PID"; wait "$PID" 2>/dev/null || true
  ip netns del "$NS"; rm -rf "$DIR"
  trap - EXIT
done
