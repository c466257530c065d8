"""NVGRE (RFC 7637): the VSID names the tunnel and the tenant, the FlowID is ECMP entropy."""

from __future__ import annotations

from pathlib import Path

from ipsotrace.correlate import correlate, view
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from tests.correlate.helpers import aggregate, flows_by_key
from tests.correlate.invariants import check_invariants
from tests.correlate.scenarios import MAC_A, MAC_B, MAC_R, MAC_V1, NVGRE_FLOWS, NVGRE_VSID, ROUTER, write

SRC, DST = "192.0.2.10", "192.0.2.20"
INNER = ("ipv4", "10.3.0.1", "10.3.0.2", 17)


def _path(flow_id: int, packets: int) -> dict[str, object]:
    return {"src": SRC, "dst": DST, "proto": 47, "sport": flow_id, "dport": 0, "flow_label": 0, "via": [],
            "packets": packets, "bytes": 68 * packets, "retransmissions": 0}  # fmt: skip


def test_two_flow_ids_are_one_session_with_two_entropy_values(tmp_path: Path) -> None:
    doc = aggregate(write("nvgre", tmp_path)).to_json()
    check_invariants(doc)
    (tunnel,) = doc["tunnels"]
    assert (tunnel["encap"], tunnel["src"], tunnel["dst"], tunnel["tunnel_id"]) == ("nvgre", SRC, DST, NVGRE_VSID)
    assert (tunnel["packets"], tunnel["bytes"], tunnel["max_size"]) == (3, 3 * 110, 110)  # 20 + 8 + 14 + 68
    assert (tunnel["entropy_ports"], tunnel["entropy_ports_exact"], tunnel["inner_flows"]) == (2, True, 2)
    assert doc["summary"]["encapsulations"] == {"nvgre": {"packets": 3, "bytes": 330}}
    assert doc["summary"]["tenants"] == [["nvgre", NVGRE_VSID]]
    flows = flows_by_key(doc)
    assert set(flows) == {("nvgre", NVGRE_VSID, *INNER, 3000, 53), ("nvgre", NVGRE_VSID, *INNER, 3001, 53)}
    a, b = flows[("nvgre", NVGRE_VSID, *INNER, 3000, 53)], flows[("nvgre", NVGRE_VSID, *INNER, 3001, 53)]
    # the path key carries the FlowID where UDP tunnels carry the source port
    assert [{k: p[k] for k in _path(0, 0)} for p in a["paths"]] == [_path(NVGRE_FLOWS[0], 2)]
    assert [{k: p[k] for k in _path(0, 0)} for p in b["paths"]] == [_path(NVGRE_FLOWS[1], 1)]


def test_quoted_gre_header_ties_the_error_to_the_flow_id_path(tmp_path: Path) -> None:
    doc = aggregate(write("nvgre", tmp_path)).to_json()
    (err,) = doc["icmp_errors"]
    assert (err["reporter"], err["kind"], err["mtu"]) == (ROUTER, "frag-needed", 1400)
    assert err["quoted_tunnel"] == ["nvgre", SRC, DST, NVGRE_VSID]
    assert err["quoted_path"] == [SRC, DST, 47, NVGRE_FLOWS[0], 0, 0]
    assert err["quoted_flow"] is None  # 8 bytes after the IP header: GRE and its key, no inner header
    assert err["tunnels"] == [["nvgre", SRC, DST, NVGRE_VSID]]
    # only the flow on FlowID 0x21 used the quoted path, not its sibling on 0x42
    assert err["flows"] == [["nvgre", NVGRE_VSID, *INNER, 3000, 53]]


def test_gre_key_as_id_keeps_gretap_keys_whole(tmp_path: Path) -> None:
    doc = aggregate(write("nvgre", tmp_path), gre_key_as_id=True).to_json()
    check_invariants(doc)
    keys = [NVGRE_VSID << 8 | f for f in NVGRE_FLOWS]
    assert sorted((t["encap"], t["tunnel_id"], t["packets"], t["entropy_ports"]) for t in doc["tunnels"]) == [
        ("gre", keys[0], 2, 0),
        ("gre", keys[1], 1, 0),
    ]
    assert sorted((f["encap"], f["tunnel_id"], f["sport"]) for f in doc["flows"]) == [
        ("gre", keys[0], 3000),
        ("gre", keys[1], 3001),
    ]
    assert {p["sport"] for f in doc["flows"] for p in f["paths"]} == {0}
    (err,) = doc["icmp_errors"]
    assert err["quoted_tunnel"] == ["gre", SRC, DST, keys[0]]
    assert err["quoted_path"] == [SRC, DST, 47, 0, 0, 0]


def test_flow_id_zero_is_not_entropy() -> None:
    """RFC 7637: a FlowID of 0 means none was generated; it is on the path, not counted as entropy."""
    from scapy.layers.inet import GRE, IP, UDP
    from scapy.layers.l2 import Ether

    raw = bytes(
        Ether(src=MAC_V1, dst=MAC_R) / IP(src=SRC, dst=DST) / GRE(key_present=1, key=0x123400, proto=0x6558)
        / Ether(src=MAC_A, dst=MAC_B)
        / IP(src="10.9.0.1", dst="10.9.0.2") / UDP(sport=1, dport=2)
    )  # fmt: skip
    pkt = dissect_frame(raw, 1, DissectConfig(), frame=1, ts_ns=1)
    (hop,) = view(pkt).hops
    assert (hop.encap, hop.tunnel_id, hop.sport, hop.dport) == ("nvgre", 0x1234, 0, 0)
    res = correlate([pkt])
    (t,) = res.tunnels.values()
    assert t.entropy_ports.count() == 0 and t.packets == 1
