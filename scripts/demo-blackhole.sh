#!/usr/bin/env bash
# "Large transfers hang on some flows only", reproduced in the lab and diagnosed in three commands.
#
#   sudo scripts/demo-blackhole.sh            (needs root, iproute2, nftables; removes its lab at exit)
#
# The lab: v1 — r1 — {ra, rb} — r3 — v2, kernel VXLAN between 192.0.2.1 and 192.0.2.2, ECMP on the
# outer UDP source port.  The rb path has 1400-byte links, and --blackhole makes r1 drop the ICMP
# "fragmentation needed" it should send for it.  TCP segments that fit the overlay MTU (1450) but not
# the rb path then vanish, for the flows the hash puts on rb only.  Only documentation addresses,
# only inside the lab's own namespaces.
set -euo pipefail

export IPSOTRACE_LAB_PREFIX=${IPSOTRACE_LAB_PREFIX:-demo-}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
IPS=(python3 -m ipsotrace)
LAB=("${IPS[@]}" lab)
PROBE=(192.0.2.2 --vni 100 --inner-dst 203.0.113.2)
SERVER=""

cleanup() {
  [[ -n "$SERVER" ]] && kill "$SERVER" 2>/dev/null || true
  "${LAB[@]}" down >/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "build the lab with a PMTU black hole on the rb path"
"${LAB[@]}" up --blackhole

say "the symptom: 8 transfers of 1 MB over the overlay; some hang, the others are instant"
# Linux re-draws a TCP socket's hash (hence the VXLAN source port, hence the ECMP path) after a
# retransmission timeout, which rescues stuck flows after ~0.2 s here.  A hardware VTEP hashes the
# inner 5-tuple instead and keeps a flow on its path for good: do the same in v1.
"${LAB[@]}" exec v1 -- sysctl -q -w net.core.txrehash=0
"${LAB[@]}" exec v2 -- python3 "$HERE/overlay_tcp.py" server 203.0.113.2 5001 &
SERVER=$!
sleep 0.5
"${LAB[@]}" capture v1 to-r1 -o "$WORK/slow.pcap" --duration 25 2>/dev/null &
CAPTURE=$!
sleep 0.3
"${LAB[@]}" exec v1 -- python3 "$HERE/overlay_tcp.py" client 203.0.113.2 5001 8 1000000 5 | tee "$WORK/transfers.txt"
kill -INT "$CAPTURE" 2>/dev/null || true
wait "$CAPTURE" 2>/dev/null || true
SLOW=$(awk '/SLOW|HUNG/ {print $5; exit}' "$WORK/transfers.txt" | tr -d :)

say "diagnosis 1/3: how many underlay paths does the overlay have?"
echo "\$ ipsotrace lab exec v1 -- ipsotrace trace ${PROBE[*]} --paths 4"
"${LAB[@]}" exec v1 -- "${IPS[@]}" trace "${PROBE[@]}" --paths 4 || true

if [[ -n "$SLOW" ]]; then
  say "diagnosis 2/3: which path did a slow transfer (inner port $SLOW) take? (outer ports from the capture)"
  FLOW="vni=100,src=203.0.113.1,dst=203.0.113.2,proto=tcp,sport=$SLOW,dport=5001"
  echo "\$ ipsotrace lab exec v1 -- ipsotrace trace ${PROBE[*]} --replay-flow slow.pcap:$FLOW"
  "${LAB[@]}" exec v1 -- "${IPS[@]}" trace "${PROBE[@]}" --replay-flow "$WORK/slow.pcap:$FLOW" || true
else
  say "diagnosis 2/3: (this run drew no slow transfer: the hash put every flow on ra; run again)"
fi

say "diagnosis 3/3: path MTU per path — which one is broken, and where?"
echo "\$ ipsotrace lab exec v1 -- ipsotrace pmtu ${PROBE[*]} --paths 4"
"${LAB[@]}" exec v1 -- "${IPS[@]}" pmtu "${PROBE[@]}" --paths 4 || true
