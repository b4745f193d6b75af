#!/usr/bin/env bash
# Demo: two network namespaces joined by a veth pair, a ul2tpd in each, an L2TPv3 Ethernet
# pseudowire over UDP between them configured with `ul2tp` (the `ip l2tp` grammar), and a ping
# across it. Everything it creates is removed on exit. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }
cargo build --release --quiet -p ul2tpd -p ul2tp-cli
BIN=$PWD/target/release

tag="demo$$"
A="ul2tp-$tag-a"; B="ul2tp-$tag-b"
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

ip netns add "$A"; ip netns add "$B"
ip link add "v$tag" netns "$A" type veth peer name "w$tag" netns "$B"
ip -n "$A" link set "v$tag" name eth0; ip -n "$B" link set "w$tag" name eth0
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done
ip -n "$A" addr add 192.0.2.1/24 dev eth0
ip -n "$B" addr add 192.0.2.2/24 dev eth0

ip netns exec "$A" "$BIN/ul2tpd" --socket "$dir/a.sock" 2>"$dir/a.log" & pids+=($!)
ip netns exec "$B" "$BIN/ul2tpd" --socket "$dir/b.sock" 2>"$dir/b.log" & pids+=($!)
for s in a b; do for _ in $(seq 100); do [ -S "$dir/$s.sock" ] && break; sleep 0.05; done; done

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
