#!/usr/bin/env bash
# Demo: two network namespaces joined by a veth pair, a ul2tpd in each, an L2TPv3 Ethernet
# pseudowire over UDP between them configured with `ul2tp` (the `ip l2tp` grammar), and a ping
# across it. Everything it creates is removed on exit, whatever the exit path. Needs root.
#
# Usage: sudo ./scripts/demo.sh [--debug] [--no-build]
#
# By default it builds ul2tpd and ul2tp in release mode and runs them from cargo's target
# directory (CARGO_TARGET_DIR or the build.target-dir setting are honoured: the directory comes
# from `cargo metadata`). Options, as flags or in the environment:
#
#   --debug     / UL2TP_DEMO_PROFILE=debug   use the debug build instead of the release build
#   --no-build  / UL2TP_DEMO_BUILD=0         do not run `cargo build`; use the binaries already
#                                            in the target directory (tests use this)
#   UL2TP_DEMO_DAEMON_ARGS="ARGS"            extra arguments for both ul2tpd, e.g.
#                                            "--config FILE" (split on white space)
#   UL2TP_DEMO_START_TIMEOUT=SECONDS         how long to wait for each daemon's API socket
#                                            (default 10)
#
# If a daemon exits early or its API socket does not appear in time, the demo prints that
# daemon's log and exits with status 1. On any other failure both daemons' logs are printed.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${UL2TP_DEMO_PROFILE:-release}
build=${UL2TP_DEMO_BUILD:-1}
start_timeout=${UL2TP_DEMO_START_TIMEOUT:-10}
for arg in "$@"; do
  case "$arg" in
    --debug) profile=debug ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  release|debug) ;;
  *) echo "demo: UL2TP_DEMO_PROFILE must be release or debug, not '$profile'" >&2; exit 2 ;;
esac
read -r -a daemon_args <<<"${UL2TP_DEMO_DAEMON_ARGS:-}"

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }

# Where cargo puts the binaries: ask cargo, so CARGO_TARGET_DIR and .cargo/config are honoured.
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p') || true
[ -n "$target_dir" ] || target_dir=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$target_dir/$profile

if [ "$build" != 0 ]; then
  if [ "$profile" = release ]; then
    cargo build --release --quiet -p ul2tpd -p ul2tp-cli
  else
    cargo build --quiet -p ul2tpd -p ul2tp-cli
  fi
fi
for prog in ul2tpd ul2tp; do
  [ -x "$BIN/$prog" ] || { echo "demo: $BIN/$prog not found (build it, or drop --no-build)" >&2; exit 1; }
done
echo "demo: using the $profile binaries in $BIN"

tag="demo$$"
A="ul2tp-$tag-a"; B="ul2tp-$tag-b"
dir=$(mktemp -d)
pids=()
logs_shown=0
show_logs() {
  for s in "$@"; do
    echo "demo: ---- log of the ul2tpd in namespace $s ----" >&2
    cat "$dir/$s.log" >&2 2>/dev/null || true
    echo "demo: ---- end of log ----" >&2
  done
  logs_shown=1
}
cleanup() {
  local rc=$?
  trap - EXIT
  if [ "$rc" -ne 0 ] && [ "$logs_shown" -eq 0 ] && [ ${#pids[@]} -gt 0 ]; then
    echo "demo: failed (exit status $rc)" >&2
    show_logs a b
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$dir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$A"; ip netns add "$B"
ip link add "v$tag" netns "$A" type veth peer name "w$tag" netns "$B"
ip -n "$A" link set "v$tag" name eth0; ip -n "$B" link set "w$tag" name eth0
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done
ip -n "$A" addr add 192.0.2.1/24 dev eth0
ip -n "$B" addr add 192.0.2.2/24 dev eth0

# Start one daemon and wait until its API socket exists; a daemon that exits first, or whose
# socket does not appear within the timeout, fails the demo with its log.
start_daemon() {
  local s=$1 ns=$2
  ip netns exec "$ns" "$BIN/ul2tpd" --socket "$dir/$s.sock" "${daemon_args[@]}" >"$dir/$s.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local deadline=$((SECONDS + start_timeout))
  until [ -S "$dir/$s.sock" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      local st=0
      wait "$pid" || st=$?
      echo "demo: ul2tpd in namespace $s exited during start-up (status $st)" >&2
      show_logs "$s"
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "demo: ul2tpd in namespace $s did not create its API socket within ${start_timeout}s" >&2
      show_logs "$s"
      exit 1
    fi
    sleep 0.05
  done
}
start_daemon a "$A"
start_daemon b "$B"

a() { echo "A# ul2tp $*"; "$BIN/ul2tp" --socket "$dir/a.sock" "$@"; }
b() { echo "B# ul2tp $*"; "$BIN/ul2tp" --socket "$dir/b.sock" "$@"; }

a add tunnel tunnel_id 3000 peer_tunnel_id 4000 encap udp local 192.0.2.1 remote 192.0.2.2 udp_sport 5000 udp_dport 6000
a add session tunnel_id 3000 session_id 1000 peer_session_id 2000
b add tunnel tunnel_id 4000 peer_tunnel_id 3000 encap udp local 192.0.2.2 remote 192.0.2.1 udp_sport 6000 udp_dport 5000
b add session tunnel_id 4000 session_id 2000 peer_session_id 1000

ip -n "$A" link set l2tpeth0 up; ip -n "$A" addr add 10.42.0.1/24 dev l2tpeth0
ip -n "$B" link set l2tpeth0 up; ip -n "$B" addr add 10.42.0.2/24 dev l2tpeth0

a show tunnel
a show session
echo "A# ip link show l2tpeth0"; ip -n "$A" link show l2tpeth0
echo "A# ping -c 3 10.42.0.2"
ip netns exec "$A" ping -c 3 -W 2 10.42.0.2
a -j show session
echo "demo: pseudowire up and pinging; cleaning up"
