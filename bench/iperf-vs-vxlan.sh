#!/usr/bin/env bash
# End-to-end throughput: iperf3 TCP across a ul2tp L2TPv3/UDP Ethernet pseudowire and across the
# kernel's own VXLAN over the same veth pair, in the same run; prints both and the ratio.
#
#   sudo bench/iperf-vs-vxlan.sh [seconds]      (default 10 s per measurement)
#
# Needs root, iperf3 and a release build (built here). Everything it creates is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "iperf3 is required (apt-get install iperf3)" >&2; exit 1; }
# BIN: directory of prebuilt ul2tpd / ul2tp binaries (skips the build); otherwise they are
# built into ${CARGO_TARGET_DIR:-target}/release. UL2TPD_ARGS: extra daemon options
# (e.g. --no-offload). TUNNEL_OPTS: extra `add tunnel` options (e.g. "udp_csum on", which
# lets the offload path use UDP GSO; the kernel refuses GSO on checksum-less sockets).
# IPERF_ARGS: extra iperf3 client options, e.g. "-u -b 0 -l 64" for a small-packet UDP run
# (then the received rate is reported: sender rate minus lost datagrams).
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p ul2tpd -p ul2tp-cli
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
fi
read -r -a dargs <<<"${UL2TPD_ARGS:-}"

tag="bn$$"; A="ul2tp-$tag-a"; B="ul2tp-$tag-b"; dir=$(mktemp -d); pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add "v$tag" netns "$A" type veth peer name "w$tag" netns "$B"
ip -n "$A" link set "v$tag" name eth0; ip -n "$B" link set "w$tag" name eth0
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done
ip -n "$A" addr add 192.0.2.1/24 dev eth0; ip -n "$B" addr add 192.0.2.2/24 dev eth0

# Kernel VXLAN reference (VNI 42, UDP 4789), MTU chosen like the pseudowire's so that the
# inner packets are the same size.
ip -n "$A" link add vx0 type vxlan id 42 local 192.0.2.1 remote 192.0.2.2 dstport 4789
ip -n "$B" link add vx0 type vxlan id 42 local 192.0.2.2 remote 192.0.2.1 dstport 4789

ip netns exec "$A" "$BIN/ul2tpd" "${dargs[@]}" --socket "$dir/a.sock" 2>"$dir/a.log" & pids+=($!)
ip netns exec "$B" "$BIN/ul2tpd" "${dargs[@]}" --socket "$dir/b.sock" 2>"$dir/b.log" & pids+=($!)
for s in a b; do for _ in $(seq 200); do [ -S "$dir/$s.sock" ] && break; sleep 0.05; done; done
"$BIN/ul2tp" --socket "$dir/a.sock" add tunnel tunnel_id 1 peer_tunnel_id 2 encap udp local 192.0.2.1 remote 192.0.2.2 udp_sport 5000 udp_dport 5000 ${TUNNEL_OPTS:-}
"$BIN/ul2tp" --socket "$dir/a.sock" add session name pw0 tunnel_id 1 session_id 10 peer_session_id 20
"$BIN/ul2tp" --socket "$dir/b.sock" add tunnel tunnel_id 2 peer_tunnel_id 1 encap udp local 192.0.2.2 remote 192.0.2.1 udp_sport 5000 udp_dport 5000 ${TUNNEL_OPTS:-}
"$BIN/ul2tp" --socket "$dir/b.sock" add session name pw0 tunnel_id 2 session_id 20 peer_session_id 10
mtu=$(ip -n "$A" -o link show pw0 | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
for ns in "$A" "$B"; do
  ip -n "$ns" link set vx0 mtu "$mtu" up
  ip -n "$ns" link set pw0 up
done
ip -n "$A" addr add 10.10.0.1/24 dev pw0; ip -n "$B" addr add 10.10.0.2/24 dev pw0
ip -n "$A" addr add 10.20.0.1/24 dev vx0; ip -n "$B" addr add 10.20.0.2/24 dev vx0
ip netns exec "$A" ping -c 2 -W 2 10.10.0.2 >/dev/null
ip netns exec "$A" ping -c 2 -W 2 10.20.0.2 >/dev/null

measure() { # $1 = server address; prints Mbit/s
  ip netns exec "$B" iperf3 -s -D -1 -p 5202 --logfile "$dir/s.log" >/dev/null 2>&1 || true
  sleep 0.3
  # shellcheck disable=SC2086
  ip netns exec "$A" iperf3 -c "$1" -p 5202 -t "$secs" ${IPERF_ARGS:-} -J | python3 -c '
import json, sys
e = json.load(sys.stdin)["end"]
if "sum_received" in e:
    bps = e["sum_received"]["bits_per_second"]
else:
    s = e["sum"]
    bps = s["bits_per_second"] * (1 - s.get("lost_percent", 0) / 100)
print(round(bps / 1e6, 1))'
}
ul2tp=$(measure 10.10.0.2)
vxlan=$(measure 10.20.0.2)
ratio=$(python3 -c "print(round($ul2tp/$vxlan,3))")
echo "pseudowire MTU $mtu, $secs s per run, one stream, iperf3 ${IPERF_ARGS:-(TCP)}"
echo "ul2tp L2TPv3/UDP pseudowire: $ul2tp Mbit/s"
echo "kernel VXLAN (same veth):    $vxlan Mbit/s"
echo "ratio ul2tp/vxlan:           $ratio"
