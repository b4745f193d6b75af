#!/bin/bash
# SCCRQ flood against an LNS while an established dynamic tunnel keeps its HELLOs and a ping
# through its Ethernet pseudowire (docs/PERFORMANCE.md "SCCRQ flood", docs/security.md).
#
#   ns A (LAC) 192.0.2.1 ── 192.0.2.2 ns B (LNS, ul2tpd) 198.51.100.1 ── 198.51.100.2 ns F
#
# F sends RATE L2TPv2 SCCRQs per second for SECONDS from random spoofed sources in
# 10.77.0.0/16 (random ports and Assigned Tunnel IDs: every one a new peer) to B's control
# endpoint; B routes 10.77.0.0/16 back to F, which drops the SCCRPs. Meanwhile A pings B
# through the session every 10 ms. Prints what F sent, what B's control endpoint saw, admitted
# and dropped (its metrics), B's RSS, the HELLOs of the tunnel and the ping loss.
#
# Usage (root): BIN=target-perf/release bash bench/flood.sh [RATE] [SECONDS]
# (BIN holds ul2tpd and ul2tp; gcc builds the sender from bench/sccrq-flood.c.)
set -euo pipefail
RATE=${1:-50000}
SECS=${2:-20}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release}
HERE=$(cd "$(dirname "$0")" && pwd)
TAG=fl$$
A=$TAG-a; B=$TAG-b; F=$TAG-f
DIR=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in "$A" "$B" "$F"; do ip netns del "$n" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

gcc -O2 -Wall -o "$DIR/sccrq-flood" "$HERE/sccrq-flood.c"
for n in "$A" "$B" "$F"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add "$TAG-ab" netns "$A" type veth peer name "$TAG-ba" netns "$B"
ip link add "$TAG-fb" netns "$F" type veth peer name "$TAG-bf" netns "$B"
ip -n "$A" addr add 192.0.2.1/24 dev "$TAG-ab"; ip -n "$A" link set "$TAG-ab" up
ip -n "$B" addr add 192.0.2.2/24 dev "$TAG-ba"; ip -n "$B" link set "$TAG-ba" up
ip -n "$B" addr add 198.51.100.1/24 dev "$TAG-bf"; ip -n "$B" link set "$TAG-bf" up
ip -n "$F" addr add 198.51.100.2/24 dev "$TAG-fb"; ip -n "$F" link set "$TAG-fb" up
ip -n "$B" route add 10.77.0.0/16 via 198.51.100.2
for i in all default "$TAG-bf"; do ip netns exec "$B" sysctl -qw "net.ipv4.conf.$i.rp_filter=0"; done

cat > "$DIR/lac.toml" <<EOT
[metrics]
listen = "127.0.0.1:9650"
[control]
listen = "192.0.2.1:1701"
host_name = "lac"
hello_interval = 2
EOT
cat > "$DIR/lns.toml" <<EOT
[metrics]
listen = "127.0.0.1:9650"
[control]
listen = "0.0.0.0:1701"
host_name = "lns"
hello_interval = 2
EOT
start() { # ns name
  ip netns exec "$1" "$BIN/ul2tpd" --socket "$DIR/$2.sock" --config "$DIR/$2.toml" --log warn 2>"$DIR/$2.log" &
  PIDS+=($!)
  until [ -S "$DIR/$2.sock" ]; do sleep 0.1; done
}
start "$A" lac; LAC=${PIDS[-1]}
start "$B" lns; LNS=${PIDS[-1]}
l2tp() { local s=$1; shift; "$BIN/ul2tp" --socket "$DIR/$s.sock" "$@"; }
metric() { # ns series
  ip netns exec "$1" curl -s http://127.0.0.1:9650/metrics | awk -v s="$2" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }'
}

TID=$(l2tp lac connect remote 192.0.2.2 version 3 | awk '{ print $2; exit }')
for _ in $(seq 100); do
  [ "$(metric "$A" 'ul2tp_control_tunnels{state="established"}')" = 1 ] && break; sleep 0.1
done
l2tp lac connect session tunnel_id "$TID" pw_type eth >/dev/null
for _ in $(seq 100); do
  [ "$(metric "$B" 'ul2tp_sessions_up{kind="dynamic"}')" = 1 ] && [ "$(metric "$A" 'ul2tp_sessions_up{kind="dynamic"}')" = 1 ] && break; sleep 0.1
done
DEV_A=$(l2tp lac show session | awk '/interface name:/ { print $3; exit }')
DEV_B=$(l2tp lns show session | awk '/interface name:/ { print $3; exit }')
ip -n "$A" addr add 10.88.0.1/24 dev "$DEV_A"; ip -n "$A" link set "$DEV_A" up
ip -n "$B" addr add 10.88.0.2/24 dev "$DEV_B"; ip -n "$B" link set "$DEV_B" up
until ip netns exec "$A" ping -q -c1 -W1 10.88.0.2 >/dev/null; do sleep 0.2; done

hello() { echo "$(metric "$1" 'ul2tp_control_messages_sent_total{type="HELLO"}') $(metric "$1" 'ul2tp_control_messages_received_total{type="HELLO"}')"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$LNS/status"; }
read -r HA_S0 HA_R0 <<<"$(hello "$A")"
RSS0=$(rss)
COUNT=$((SECS * 100))
ip netns exec "$A" ping -q -i 0.01 -c "$COUNT" -W 1 10.88.0.2 >"$DIR/ping" 2>&1 &
PING=$!; PIDS+=($PING)
SENT=$(ip netns exec "$F" "$DIR/sccrq-flood" 198.51.100.1 1701 10.77.0.0/16 "$RATE" "$SECS")
RSS_PEAK=$(awk '/VmHWM/ { print $2 }' "/proc/$LNS/status")
wait "$PING" || true
sleep 0.3 # the metrics snapshot is at most 100 ms old
read -r HA_S1 HA_R1 <<<"$(hello "$A")"
RX=$(metric "$B" ul2tp_control_rx_datagrams_total)
ADMITTED=$(metric "$B" 'ul2tp_control_messages_sent_total{type="SCCRP"}')
HALF=$(metric "$B" ul2tp_control_sccrq_dropped_half_open_total)
RATEL=$(metric "$B" ul2tp_control_sccrq_rate_limited_total)
KERNEL=$(ip netns exec "$B" awk '/^Udp:/ { if (h) { print $6 } else h = 1 }' /proc/net/snmp)
EST_A=$(metric "$A" 'ul2tp_control_tunnels{state="established"}')
DOWN_A=$(metric "$A" 'ul2tp_control_tunnels_down_total{reason="timeout"}')
LOSS=$(grep -o '[0-9.]*% packet loss' "$DIR/ping" || echo "? packet loss")
PINGS=$(grep -o '[0-9]* packets transmitted, [0-9]* received' "$DIR/ping" || true)

echo "flood: $SENT SCCRQs sent in $SECS s (target $RATE/s) from spoofed 10.77.0.0/16"
echo "LNS control endpoint: $RX datagrams received (the LAC's control messages included); dropped by the kernel (UDP RcvbufErrors): $KERNEL"
echo "admitted (SCCRP sent, the LAC's tunnel not counted): $((ADMITTED - 1)); dropped at the half-open cap: $HALF; dropped by the per-source rate: $RATEL"
echo "LNS RSS: ${RSS0} kB before, ${RSS_PEAK} kB peak, $(rss) kB after"
echo "established tunnel: A still established: $EST_A (timeouts: $DOWN_A); HELLOs A sent $((HA_S1 - HA_S0)), received $((HA_R1 - HA_R0)) during the flood"
echo "ping through the session: $PINGS, $LOSS"
