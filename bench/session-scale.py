#!/usr/bin/env python3
"""Create and delete N static L2TPv3 Ethernet sessions over one API connection and time it.

Run inside the daemon's network namespace (bench/session-scale.sh does). Requests are
pipelined (WINDOW in flight), answers checked. Prints the time of every 1/5 of the creates
(so growth with the table size shows), the total, the API time of the deletes and the time
until the last pseudowire device is gone.
"""
import json
import os
import socket
import sys
import time

sock_path, n = sys.argv[1], int(sys.argv[2])
window = int(os.environ.get("WINDOW", "64"))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
f = s.makefile("rwb", buffering=0)
seq = 0


def devices():
    return sum(1 for d in os.listdir("/sys/class/net") if d.startswith("l2tpeth"))


def run(reqs):
    """Send requests (cmd, attrs), WINDOW in flight; fail on the first error."""
    global seq
    pending = 0
    out = bytearray()
    it = iter(reqs)
    done = False
    while True:
        while not done and pending < window:
            try:
                cmd, attrs = next(it)
            except StopIteration:
                done = True
                break
            seq += 1
            out += json.dumps({"seq": seq, "cmd": cmd, "attrs": attrs}).encode() + b"\n"
            pending += 1
        if out:
            s.sendall(out)
            out.clear()
        if pending == 0:
            return
        line = f.readline()
        r = json.loads(line)
        if "error" in r:
            sys.exit(f"request {r['seq']} failed: {r['error']}")
        if "event" in r:
            continue
        pending -= 1


run([("tunnel_create", {"conn_id": 3000, "peer_conn_id": 4000, "proto_version": 3,
      "encap_type": 0, "ip_saddr": "127.0.0.1", "ip_daddr": "127.0.0.1",
      "udp_sport": 7700, "udp_dport": 7701})])
step = max(n // 5, 1)
t0 = time.monotonic()
for lo in range(1, n + 1, step):
    hi = min(lo + step, n + 1)
    t = time.monotonic()
    run(("session_create", {"conn_id": 3000, "session_id": i, "peer_session_id": i,
         "pw_type": 5}) for i in range(lo, hi))
    dt = time.monotonic() - t
    print(f"create {lo:6d}..{hi - 1:6d}: {dt:7.2f} s  {1e3 * dt / (hi - lo):6.3f} ms/session")
total = time.monotonic() - t0
def rss():
    pid = os.environ.get("DAEMON_PID")
    if not pid:
        return "?"
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return " ".join(line.split()[1:])
    return "?"


print(f"created {n} sessions in {total:.2f} s ({n / total:.0f}/s); {devices()} devices; RSS {rss()}")
t0 = time.monotonic()
run(("session_delete", {"conn_id": 3000, "session_id": i}) for i in range(1, n + 1))
api = time.monotonic() - t0
while devices() > 0:
    time.sleep(0.05)
gone = time.monotonic() - t0
print(f"deleted {n} sessions: API {api:.2f} s, all devices gone after {gone:.2f} s ({n / gone:.0f}/s)")
