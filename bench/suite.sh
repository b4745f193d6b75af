#!/usr/bin/env bash
# Data-path benchmark suite: ul2tp L2TPv3 Ethernet pseudowires against the kernel's VXLAN and
# the plain veth, all in the same run, between two network namespaces joined by one veth pair.
#
#   sudo bench/suite.sh [seconds]          (default 10 s per measurement)
#
# Rows: one iperf3 TCP stream over the default tunnel (IPv4, no UDP checksum), `udp_csum on`,
# an IPv6 outer header, `encap ip`, a PPP session (L2TPv2); then 64-byte frames from bench/blaster.c (sendmmsg in
# namespace A, counted as rx_packets of the receiving device in namespace B). Rows for the
# per-core workers (not in the default list): multi (iperf3 -P 4, four TCP streams) and
# smallmulti (64-byte frames in 8 flows); compare UL2TPD_ARGS="--workers 1" with the default. Every ul2tp figure
# is printed with the VXLAN figure of the same run, the ratio, and the CPU the two daemons used
# (share of one core, utime + stime of both together, from /proc/PID/stat).
#
# Needs root, iperf3, a C compiler and a release build (built here unless BIN names a
# directory with prebuilt ul2tpd / ul2tp). UL2TPD_ARGS: extra daemon options. ROWS: which rows to
# run (default "udp csum ipv6 ip ppp small"; ppp: a PPP session over L2TPv2 between the
# daemons' own PPP endpoints, its ratio against VXLAN like the others; both pppN devices get
# PPP_MTU, default 1446 like the Ethernet rows' inner MTU, so that no L2TP datagram is
# fragmented on the 1500-byte veth; PPP_MTU=0 keeps the negotiated 1500). PW_QLEN: txqueuelen for the pseudowire devices. PROFILE=perf|strace records the two daemons during
# each ul2tp measurement (`perf record -e cpu-clock -g` / `strace -c -f`) into
# ${PROFILE_DIR:-bench/out}/ROW.{perf.data,a.strace,b.strace}. Everything else it creates is
# removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rows=${ROWS:-udp csum ipv6 ip ppp small}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "iperf3 is required (apt-get install iperf3)" >&2; exit 1; }
command -v cc >/dev/null || { echo "a C compiler is required (apt-get install gcc)" >&2; exit 1; }
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet -p ul2tpd -p ul2tp-cli
  BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
fi
read -r -a dargs <<<"${UL2TPD_ARGS:-}"

tag="bs$$"; A="ul2tp-$tag-a"; B="ul2tp-$tag-b"; dir=$(mktemp -d); pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true; ip netns del "$B" 2>/dev/null || true; rm -rf "$dir"
}
trap cleanup EXIT
cc -O2 -o "$dir/blaster" bench/blaster.c
ip netns add "$A"; ip netns add "$B"
ip link add "v$tag" netns "$A" type veth peer name "w$tag" netns "$B"
ip -n "$A" link set "v$tag" name eth0; ip -n "$B" link set "w$tag" name eth0
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; ip -n "$ns" link set eth0 up; done
ip -n "$A" addr add 192.0.2.1/24 dev eth0; ip -n "$B" addr add 192.0.2.2/24 dev eth0
ip -n "$A" addr add 2001:db8::1/64 dev eth0 nodad; ip -n "$B" addr add 2001:db8::2/64 dev eth0 nodad
ip -n "$A" addr add 10.30.0.1/24 dev eth0; ip -n "$B" addr add 10.30.0.2/24 dev eth0

# Kernel VXLAN reference (VNI 42, UDP 4789), same MTU as the pseudowire so that the inner
# packets are the same size.
ip -n "$A" link add vx0 type vxlan id 42 local 192.0.2.1 remote 192.0.2.2 dstport 4789
ip -n "$B" link add vx0 type vxlan id 42 local 192.0.2.2 remote 192.0.2.1 dstport 4789
ip -n "$A" addr add 10.20.0.1/24 dev vx0; ip -n "$B" addr add 10.20.0.2/24 dev vx0

ip netns exec "$A" "$BIN/ul2tpd" "${dargs[@]}" --socket "$dir/a.sock" 2>"$dir/a.log" & pids+=($!)
ip netns exec "$B" "$BIN/ul2tpd" "${dargs[@]}" --socket "$dir/b.sock" 2>"$dir/b.log" & pids+=($!)
da=${pids[0]}; db=${pids[1]}
for s in a b; do for _ in $(seq 200); do [ -S "$dir/$s.sock" ] && break; sleep 0.05; done; done
ip netns exec "$B" iperf3 -s -p 5202 >/dev/null 2>&1 & pids+=($!)
sleep 0.3

ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
cpu0=0
# Run-queue wait of all threads of a daemon in ns (schedstat field 2): time it was runnable
# but had no CPU, i.e. how much the machine's load held it back.
waitns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $2 } END { print s }'; }
w0a=0; w0b=0
cpu_start() { cpu0=$(( $(ticks "$da") + $(ticks "$db") )); w0a=$(waitns "$da"); w0b=$(waitns "$db"); }
waited() { # share of the interval each daemon spent runnable without a CPU
  echo "  run-queue wait over ${secs} s: A $(python3 -c "print(round(($(waitns "$da") - $w0a) / 1e7 / $secs))")%, B $(python3 -c "print(round(($(waitns "$db") - $w0b) / 1e7 / $secs))")%" >&2
}
prof_pids=()
prof_start() { # $1 = row
  local out=${PROFILE_DIR:-bench/out}
  prof_pids=()
  case ${PROFILE:-} in
    perf) mkdir -p "$out"
          perf record -q -e cpu-clock -g -p "$da,$db" -o "$out/$1.perf.data" -- sleep "$secs" \
            >/dev/null 2>&1 & prof_pids+=($!);;
    strace) mkdir -p "$out"
          strace -c -f -p "$da" -o "$out/$1.a.strace" & prof_pids+=($!)
          strace -c -f -p "$db" -o "$out/$1.b.strace" & prof_pids+=($!);;
    "") ;;
    *) echo "PROFILE=${PROFILE}: perf or strace" >&2; exit 1;;
  esac
  sleep 0.2
}
prof_stop() {
  local p
  for p in "${prof_pids[@]}"; do
    [ "${PROFILE:-}" = strace ] && kill -INT "$p" 2>/dev/null
    wait "$p" 2>/dev/null || true
  done
  prof_pids=()
}
cpu_pct() { # share of one core used by both daemons since cpu_start, over $secs
  python3 -c "print(round(100 * ($(ticks "$da") + $(ticks "$db") - $cpu0) / $hz / $secs))"
}

# Set up the pseudowire pw0 in both namespaces: $1 = encap (udp|ip), $2 = outer family (4|6),
# $3... = extra `add tunnel` options.
pw_up() {
  local encap=$1 fam=$2; shift 2
  local la=192.0.2.1 lb=192.0.2.2 ports=""
  [ "$fam" = 6 ] && { la=2001:db8::1; lb=2001:db8::2; }
  [ "$encap" = udp ] && ports="udp_sport 5000 udp_dport 5000"
  "$BIN/ul2tp" --socket "$dir/a.sock" add tunnel tunnel_id 1 peer_tunnel_id 2 encap "$encap" local $la remote $lb $ports "$@"
  "$BIN/ul2tp" --socket "$dir/a.sock" add session name pw0 tunnel_id 1 session_id 10 peer_session_id 20
  "$BIN/ul2tp" --socket "$dir/b.sock" add tunnel tunnel_id 2 peer_tunnel_id 1 encap "$encap" local $lb remote $la $ports "$@"
  "$BIN/ul2tp" --socket "$dir/b.sock" add session name pw0 tunnel_id 2 session_id 20 peer_session_id 10
  mtu=$(ip -n "$A" -o link show pw0 | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
  for ns in "$A" "$B"; do
    ip -n "$ns" link set vx0 mtu "$mtu" up; ip -n "$ns" link set pw0 up
    [ -z "${PW_QLEN:-}" ] || ip -n "$ns" link set pw0 txqueuelen "$PW_QLEN"
  done
  ip -n "$A" addr add 10.10.0.1/24 dev pw0; ip -n "$B" addr add 10.10.0.2/24 dev pw0
  ip netns exec "$A" ping -c 2 -W 2 10.10.0.2 >/dev/null
  ip netns exec "$A" ping -c 2 -W 2 10.20.0.2 >/dev/null
}
# PPP session over L2TPv2 between the daemons' own PPP endpoints (`ul2tp ppp start`), pppN
# addressed 10.40.0.1 (A) / 10.40.0.2 (B).
ppp_up() {
  "$BIN/ul2tp" --socket "$dir/a.sock" add tunnel version 2 tunnel_id 1 peer_tunnel_id 2 local 192.0.2.1 remote 192.0.2.2 udp_sport 1701 udp_dport 1701
  "$BIN/ul2tp" --socket "$dir/b.sock" add tunnel version 2 tunnel_id 2 peer_tunnel_id 1 local 192.0.2.2 remote 192.0.2.1 udp_sport 1701 udp_dport 1701
  "$BIN/ul2tp" --socket "$dir/a.sock" add session pw_type ppp tunnel_id 1 session_id 10 peer_session_id 20
  "$BIN/ul2tp" --socket "$dir/b.sock" add session pw_type ppp tunnel_id 2 session_id 20 peer_session_id 10
  "$BIN/ul2tp" --socket "$dir/a.sock" ppp start tunnel_id 1 session_id 10 local 10.40.0.1 remote 10.40.0.2 >/dev/null &
  local srv=$!
  "$BIN/ul2tp" --socket "$dir/b.sock" ppp start tunnel_id 2 session_id 20 >/dev/null
  wait "$srv"
  local dev
  dev=$(ip -n "$A" -o addr show to 10.40.0.1 | awk '{ print $2; exit }')
  if [ "${PPP_MTU:-1446}" != 0 ]; then
    PPP_MTU=${PPP_MTU:-1446}
    ip -n "$A" link set "$dev" mtu "$PPP_MTU"
    ip -n "$B" link set "$(ip -n "$B" -o addr show to 10.40.0.2 | awk '{ print $2; exit }')" mtu "$PPP_MTU"
  fi
  mtu=$(ip -n "$A" -o link show "$dev" | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
  for ns in "$A" "$B"; do ip -n "$ns" link set vx0 mtu "$mtu" up; done
  ip netns exec "$A" ping -c 2 -W 2 10.40.0.2 >/dev/null
  ip netns exec "$A" ping -c 2 -W 2 10.20.0.2 >/dev/null
}
pw_down() {
  "$BIN/ul2tp" --socket "$dir/a.sock" del tunnel tunnel_id 1
  "$BIN/ul2tp" --socket "$dir/b.sock" del tunnel tunnel_id 2
  sleep 0.2
}

tcp() { # $1 = server address, $2... = more iperf3 options (e.g. -P 4); prints Gbit/s
  local dst=$1; shift
  ip netns exec "$A" iperf3 -c "$dst" -p 5202 -t "$secs" "$@" -J | python3 -c '
import json, sys
print(round(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9, 2))'
}
rxp() { ip netns exec "$B" cat "/sys/class/net/$1/statistics/rx_packets"; }
rcvbuf_errs() { ip netns exec "$B" awk '/^Udp:/ { if (h) print $6; h = 1 }' /proc/net/snmp; }
txdrop() { ip netns exec "$A" cat "/sys/class/net/$1/statistics/tx_dropped" 2>/dev/null || echo 0; }
small() { # $1 = destination, $2 = receiving device in B, $3 = flows (default 1); prints
  # "delivered_Mpps sent_Mpps"
  local r0 r1 out e0 e1 d0 d1
  r0=$(rxp "$2"); e0=$(rcvbuf_errs); d0=$(txdrop "$2")
  out=$(ip netns exec "$A" "$dir/blaster" "$1" 9 "$secs" 18 "${3:-1}")
  sleep 0.5
  r1=$(rxp "$2"); e1=$(rcvbuf_errs); d1=$(txdrop "$2")
  echo "  $2: sent $(echo "$out" | cut -d' ' -f2), delivered $((r1 - r0)), dropped at A's $2 queue $((d1 - d0)), B UDP RcvbufErrors $((e1 - e0))" >&2
  python3 -c "
s = int('$out'.split()[1])
print(round(($r1 - $r0) / $secs / 1e6, 3), round(s / $secs / 1e6, 3))"
}

table=()
row() { table+=("$(printf '| %-34s | %10s | %10s | %10s | %6s | %5s%% |' "$@")"); }
for r in $rows; do
  case $r in
    udp)  pw_up udp 4;                   label="TCP, L2TPv3/UDP default (IPv4)";;
    csum) pw_up udp 4 udp_csum on;       label="TCP, udp_csum on";;
    ipv6) pw_up udp 6;                   label="TCP, IPv6 outer";;
    ip)   pw_up ip 4;                    label="TCP, encap ip";;
    small) pw_up udp 4;                  label="64-byte frames, default tunnel";;
    smallmulti) pw_up udp 4;             label="64-byte frames, 8 flows";;
    multi) pw_up udp 4;                  label="TCP, 4 streams (-P 4)";;
    ppp)  ppp_up;                        label="TCP, PPP over L2TPv2";;
    *) echo "unknown row $r" >&2; exit 1;;
  esac
  if [ "$r" = small ] || [ "$r" = smallmulti ]; then
    fl=1; [ "$r" = smallmulti ] && fl=8
    prof_start "$r"; cpu_start; read -r ul sent < <(small 10.10.0.2 pw0 $fl); cpu=$(cpu_pct); waited; prof_stop
    read -r vx vsent < <(small 10.20.0.2 vx0 $fl)
    veth=$(small 10.30.0.2 eth0 $fl | cut -d' ' -f1)
    row "$label (Mpps)" "$ul" "$vx" "$veth" "$(python3 -c "print(round($ul/$vx,2))")" "$cpu"
    echo "  64-byte offered rate: ul2tp $sent Mpps, VXLAN $vsent Mpps" >&2
  else
    dst=10.10.0.2; [ "$r" = ppp ] && dst=10.40.0.2
    par=(); [ "$r" = multi ] && par=(-P 4)
    prof_start "$r"; cpu_start; ul=$(tcp "$dst" "${par[@]}"); cpu=$(cpu_pct); waited; prof_stop
    vx=$(tcp 10.20.0.2 "${par[@]}")
    veth=$(tcp 10.30.0.2 "${par[@]}")
    row "$label (Gbit/s)" "$ul" "$vx" "$veth" "$(python3 -c "print(round($ul/$vx,2))")" "$cpu"
  fi
  pw_down
done
echo "pseudowire MTU $mtu, $secs s per measurement, $(nproc) CPUs, $(uname -r)"
printf '| %-34s | %10s | %10s | %10s | %6s | %6s |\n' "path" "ul2tp" "VXLAN" "veth" "ratio" "daemon CPU"
echo "|---|---:|---:|---:|---:|---:|"
printf '%s\n' "${table[@]}"
