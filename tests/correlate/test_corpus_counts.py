"""``analyze`` counts agree with tshark's fields on every public corpus capture.

For each capture the truth file (tshark 4.0 ``-T fields``, see tests/corpus.py) is
walked along ``frame.protocols`` to rebuild two aggregates, compared with ours:

- packets per tunnel ID: VXLAN VNI, Geneve VNI, GTP-U TEID (one count per occurrence,
  so a packet nested twice counts twice, as our per-hop tunnel sessions do);
- packets per outer address pair: every IP header directly followed (through UDP) by a
  tunnel header or another IP header opens a tunnel hop with that header's addresses.

Headers inside ICMP error quotes are left out on both sides (tshark lists them, our
tunnel sessions count traffic, not quotes).  IP fragments are reassembled as tshark does
(ipsotrace.reassembly): a tunnel packet counts once, on the fragment that completes it, and
a datagram whose fragments never all arrived counts for neither.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from typing import Any

import pytest

from ipsotrace.correlate import Correlator, SourceInfo
from ipsotrace.decode import decode
from ipsotrace.dissectors.registry import DISSECTORS
from ipsotrace.sources import CaptureFile
from tests.conftest import require
from tests.corpus import CORPUS, config_for, truth_files
from tests.correlate.invariants import check_invariants

# tshark protocol name → (our encap name, tshark ID field, base of its text)
ID_FIELDS = {
    "vxlan": ("vxlan", "vxlan.vni", 10),
    "geneve": ("geneve", "geneve.vni", 16),
    "gtp": ("gtpu", "gtp.teid", 16),
}
# tshark names of headers that start a tunnel when they follow an IP (or UDP) header → our dissector.
# Only those we have a dissector for count (LWAPP has none yet: its packets are plain UDP to us).
_TSHARK_TUNNELS = {
    "vxlan": "vxlan",
    "geneve": "geneve",
    "gtp": "gtpu",
    "gre": "gre",
    "mpls": "mpls",
    "nsh": "nsh",
    "teredo": "teredo",
    "ayiya": "ayiya",
    "lwapp": "lwapp",
    "erspan": "erspan",
    "ip": "ipv4",
    "ipv6": "ipv6",
    "eth": "eth",  # SRv6 End.DX2 / EtherIP: Ethernet straight after an IP header
}
TUNNEL_NAMES = frozenset(t for t, ours in _TSHARK_TUNNELS.items() if ours in DISSECTORS)

# capture → (reason, our count minus tshark's per tunnel ID and per address pair).  Only where
# tests/test_corpus_conformance.py documents the same tshark difference frame by frame.
EXPECTED: dict[str, tuple[str, dict[tuple[str, int], int], dict[tuple[str, str], int]]] = {
    "tcpdump__bigtcp-ipv6-vxlan-ipv6.pcap": (
        "BIG TCP super-frame (IPv6 payload length 0): tshark stops at the IPv6 header as malformed and"
        " sees no VXLAN; we decode VNI 5001",
        {("vxlan", 5001): 1},
        {("2604:1380:4091:ce00::d", "2604:1380:4091:ce00::b"): 1},
    ),
}


def truth_counts(truth: dict[str, Any]) -> tuple[Counter[tuple[str, int]], Counter[tuple[str | None, str | None]]]:
    ids: Counter[tuple[str, int]] = Counter()
    pairs: Counter[tuple[str | None, str | None]] = Counter()
    for pkt in truth["packets"]:
        pos: Counter[str] = Counter()

        def take(name: str, pkt: dict[str, Any] = pkt, pos: Counter[str] = pos) -> str | None:
            # a header cut short by the snaplen is in frame.protocols without its fields
            i = pos[name]
            pos[name] += 1
            return str(pkt[name][i]) if i < len(pkt[name]) else None

        protos = pkt["protocols"]
        addr: tuple[str | None, str | None] | None = None
        quoted = False
        for n, proto in enumerate(protos):
            if proto in ("icmp", "icmpv6"):
                quoted = True
            if proto == "ip":
                addr = (take("ip.src"), take("ip.dst"))
            elif proto == "ipv6":
                addr = (take("ipv6.src"), take("ipv6.dst"))
            if proto in ID_FIELDS:
                encap, fieldname, base = ID_FIELDS[proto]
                text = take(fieldname)
                if text is not None and not quoted:
                    ids[(encap, int(text, base))] += 1
            if proto in ("ip", "ipv6") and not quoted and addr is not None and None not in addr:
                rest = [p for p in protos[n + 1 :] if not p.startswith("ipv6.")]
                if rest[:1] == ["udp"]:
                    rest = rest[1:]
                if rest and rest[0] in TUNNEL_NAMES:
                    pairs[addr] += 1
    return ids, pairs


def our_counts(doc: dict[str, Any]) -> tuple[Counter[tuple[str, int]], Counter[tuple[str, str]]]:
    ids: Counter[tuple[str, int]] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    wanted = {e for e, _, _ in ID_FIELDS.values()}
    for t in doc["tunnels"]:
        if t["encap"] in wanted and t["tunnel_id"] is not None:
            ids[(t["encap"], t["tunnel_id"])] += t["packets"]
        try:
            ipaddress.ip_address(t["src"])
        except ValueError:
            continue  # MPLS over Ethernet: the outer addresses are MACs, tshark has no IP pair
        pairs[(t["src"], t["dst"])] += t["packets"]
    return ids, pairs


def _ids() -> list[str]:
    return [p.name[: -len(".truth.json")] for p in truth_files()]


def analyse(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    truth_path = CORPUS / f"{name}.truth.json"
    truth = json.loads(truth_path.read_text())
    corr = Correlator()
    corr.begin_source(name)
    with CaptureFile(CORPUS / name) as cap:
        corr.add_all(decode(cap, config_for(truth)))
        corr.end_source(SourceInfo(name, cap.status.format, cap.status.frames, cap.status.damage))
    return truth, corr.result.to_json()


def test_corpus_present() -> None:
    require(CORPUS.is_dir() and len(truth_files()) >= 40, f"public corpus not found at {CORPUS}")


@pytest.mark.parametrize("name", _ids())
def test_counts_match_tshark(name: str) -> None:
    truth, doc = analyse(name)
    assert doc["packets"] == truth["packet_count"]
    check_invariants(doc)
    want_ids, want_pairs = truth_counts(truth)
    got_ids, got_pairs = our_counts(doc)
    if name in EXPECTED:
        _, id_delta, pair_delta = EXPECTED[name]
        assert _delta(got_ids, want_ids) == id_delta
        assert _delta(got_pairs, want_pairs) == pair_delta
        return
    assert got_ids == want_ids, "packets per tunnel ID differ from tshark"
    assert got_pairs == want_pairs, "packets per outer address pair differ from tshark"


def _delta(ours: Counter[Any], theirs: Counter[Any]) -> dict[Any, int]:
    return {k: ours[k] - theirs[k] for k in set(ours) | set(theirs) if ours[k] != theirs[k]}


def main() -> None:
    """Print the agreement figures: ``python -m tests.correlate.test_corpus_counts``."""
    files = ids_ok = pairs_ok = 0
    for name in _ids():
        truth, doc = analyse(name)
        wi, wp = truth_counts(truth)
        gi, gp = our_counts(doc)
        files += 1
        ids_ok += wi == gi
        pairs_ok += wp == gp
        mark = "" if (wi == gi and wp == gp) else ("  (documented)" if name in EXPECTED else "  DIFF")
        ids_txt = f"{sum(gi.values()):>4}/{sum(wi.values()):<4}"
        pairs_txt = f"{sum(gp.values()):>4}/{sum(wp.values()):<4}"
        print(f"{name:<95} ids {ids_txt} pairs {pairs_txt}{mark}")
    print(f"{files} captures: tunnel-ID counts agree on {ids_ok}, address-pair counts agree on {pairs_ok}")


if __name__ == "__main__":
    main()
