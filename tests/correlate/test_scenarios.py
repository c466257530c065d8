"""Expected output of correlation on scenario captures whose tunnels and flows are known by construction."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from ipsotrace.correlate import ANALYZE_SCHEMA, SIZE_BINS, view
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from tests.correlate.helpers import flows_by_key, scenario_doc, tunnels_by_key
from tests.correlate.scenarios import (
    MAC_A,
    MAC_B,
    MAC_R,
    MAC_V1,
    ROUTER,
    TENANT_A,
    TENANT_B,
    VTEP1,
    VTEP2,
    VTEP6_1,
    VTEP6_2,
)

TCP_FLOW = ("ipv4", TENANT_A, TENANT_B, 6, 40000, 80)


def _bin(size: int) -> int:
    return max(i for i, edge in enumerate(SIZE_BINS) if size >= edge)


def _path(sport: int, via: list[list[str | None]] | None = None) -> dict[str, object]:
    return {"src": VTEP1, "dst": VTEP2, "proto": 17, "sport": sport, "dport": 4789, "flow_label": 0, "via": via or []}


def _path_view(p: dict[str, object]) -> tuple[object, ...]:
    return (p["src"], p["dst"], p["proto"], p["sport"], p["dport"], p["flow_label"], p["via"], p["packets"])


def test_overlapping_tenants_stay_apart(tmp_path: Path) -> None:
    doc = scenario_doc("overlapping_tenants", tmp_path)
    assert doc["schema"] == ANALYZE_SCHEMA
    assert doc["packets"] == 5
    assert doc["summary"]["tenants"] == [["vxlan", 100], ["vxlan", 200]]
    tunnels = tunnels_by_key(doc)
    assert set(tunnels) == {("vxlan", VTEP1, VTEP2, 100), ("vxlan", VTEP1, VTEP2, 200)}
    t100, t200 = tunnels[("vxlan", VTEP1, VTEP2, 100)], tunnels[("vxlan", VTEP1, VTEP2, 200)]
    # outer IP = 20 IPv4 + 8 UDP + 8 VXLAN + 14 Ethernet + inner (40, 140, 140 / 44, 240)
    assert (t100["packets"], t100["bytes"], t100["entropy_ports"], t100["inner_flows"]) == (3, 470, 1, 1)
    assert (t200["packets"], t200["bytes"], t200["entropy_ports"], t200["inner_flows"]) == (2, 384, 1, 1)
    assert t100["ttl"] == {"64": 3} and t100["dscp"] == {"0": 3} and t100["ecn"] == {"0": 3}
    assert t100["first"]["frame"] == 1 and t200["first"]["frame"] == 2
    assert [t["tunnel_id"] for t in doc["tunnels"]] == [100, 200]  # sorted by bytes
    flows = flows_by_key(doc)
    assert set(flows) == {("vxlan", 100, *TCP_FLOW), ("vxlan", 200, *TCP_FLOW)}
    f100, f200 = flows[("vxlan", 100, *TCP_FLOW)], flows[("vxlan", 200, *TCP_FLOW)]
    assert (f100["packets"], f100["bytes"], f100["max_size"], f100["max_size_df"]) == (3, 320, 140, 140)
    assert (f200["packets"], f200["bytes"], f200["min_size"], f200["max_size"]) == (2, 284, 44, 240)
    assert [_path_view(p) for p in f100["paths"]] == [_path_view({**_path(49152), "packets": 3})]
    assert [_path_view(p) for p in f200["paths"]] == [_path_view({**_path(49153), "packets": 2})]
    expected_sizes = [0] * len(SIZE_BINS)
    expected_sizes[_bin(40)] += 1
    expected_sizes[_bin(140)] += 2
    assert f100["sizes"] == expected_sizes
    assert f100["tcp"] == {"flags": 0x12, "syns": 1, "mss_min": 0, "mss_max": 0, "retransmissions": 0}
    assert f200["tcp"]["mss_min"] == f200["tcp"]["mss_max"] == 1360
    assert f100["dscp_pairs"] == [[4, 0, 3]] and f100["ecn_pairs"] == [[0, 0, 3]] and f100["ttl"] == {"63": 3}
    assert doc["icmp_errors"] == [] and doc["anomalies"] == []


def test_one_flow_over_two_outer_ports(tmp_path: Path) -> None:
    doc = scenario_doc("two_paths", tmp_path)
    (tunnel,) = doc["tunnels"]
    assert (tunnel["packets"], tunnel["entropy_ports"], tunnel["inner_flows"]) == (5, 2, 1)
    (flow,) = doc["flows"]
    assert flow["packets"] == 5 and flow["tcp"]["retransmissions"] == 2
    got = [(p["sport"], p["packets"], p["retransmissions"]) for p in flow["paths"]]
    assert got == [(49152, 3, 1), (50000, 2, 1)]


def test_frag_needed_ties_to_tunnel_and_flow(tmp_path: Path) -> None:
    doc = scenario_doc("frag_needed", tmp_path)
    assert doc["packets"] == 2 and doc["summary"]["untunnelled_packets"] == 1
    (tunnel,) = doc["tunnels"]  # the quoted copy is not traffic of the tunnel
    assert (tunnel["packets"], tunnel["max_size"]) == (1, 1500)
    (flow,) = doc["flows"]
    assert (flow["max_size"], flow["max_size_df"]) == (1450, 1450)
    assert flow["sizes"][_bin(1450)] == 1
    (err,) = doc["icmp_errors"]
    tkey = ["vxlan", VTEP1, VTEP2, 100]
    fkey = ["vxlan", 100, *TCP_FLOW]
    assert err == {
        "reporter": ROUTER,
        "proto": "icmp",
        "kind": "frag-needed",
        "type": 3,
        "code": 4,
        "mtu": 1400,
        "count": 1,
        "first": {"ts": err["first"]["ts"], "source": "frag_needed.pcap", "frame": 2},
        "last_ts": err["last_ts"],
        "quoted_tunnel": tkey,
        "quoted_path": [VTEP1, VTEP2, 17, 49152, 4789, 0],
        "quoted_flow": fkey,
        "tunnels": [tkey],
        "flows": [fkey],
    }


def test_nested_tunnels_innermost_owns_the_flow(tmp_path: Path) -> None:
    doc = scenario_doc("nested", tmp_path)
    tunnels = tunnels_by_key(doc)
    outer = tunnels[("ipip", "203.0.113.1", "203.0.113.2", None)]
    inner = tunnels[("vxlan", VTEP1, VTEP2, 300)]
    assert len(tunnels) == 2
    assert (outer["packets"], outer["nesting"], outer["entropy_ports"], outer["inner_flows"]) == (3, [0], 0, 1)
    assert (inner["packets"], inner["nesting"], inner["entropy_ports"], inner["inner_flows"]) == (3, [1], 2, 1)
    assert doc["summary"]["encapsulations"] == {
        "ipip": {"packets": 3, "bytes": 354},
        "vxlan": {"packets": 3, "bytes": 294},
    }
    assert doc["summary"]["tenants"] == [["vxlan", 300]]
    (flow,) = doc["flows"]
    assert (flow["encap"], flow["tunnel_id"], flow["src"], flow["dport"]) == ("vxlan", 300, "10.1.0.1", 53)
    via: list[list[str | None]] = [["ipip", "203.0.113.1", "203.0.113.2", None]]
    assert [_path_view(p) for p in flow["paths"]] == [
        _path_view({**_path(49200, via), "packets": 2}),
        _path_view({**_path(49201, via), "packets": 1}),
    ]


def test_ipv6_underlay(tmp_path: Path) -> None:
    doc = scenario_doc("ipv6_underlay", tmp_path)
    (tunnel,) = doc["tunnels"]
    assert (tunnel["encap"], tunnel["src"], tunnel["dst"], tunnel["tunnel_id"]) == ("vxlan", VTEP6_1, VTEP6_2, 400)
    assert (tunnel["packets"], tunnel["bytes"], tunnel["dscp"], tunnel["ttl"]) == (2, 296, {"46": 2}, {"64": 2})
    (flow,) = doc["flows"]
    (path,) = flow["paths"]
    assert (path["src"], path["sport"], path["flow_label"], path["packets"]) == (VTEP6_1, 51000, 0x12345, 2)
    assert flow["dscp_pairs"] == [[46, 46, 2]]
    assert "tcp" not in flow


def test_gre_key_is_the_tunnel_id(tmp_path: Path) -> None:
    doc = scenario_doc("gre_keyed", tmp_path)
    (tunnel,) = doc["tunnels"]
    assert (tunnel["encap"], tunnel["src"], tunnel["dst"], tunnel["tunnel_id"]) == (
        "gre",
        "192.0.2.10",
        "192.0.2.20",
        7,
    )
    assert tunnel["entropy_ports"] == 0
    (flow,) = doc["flows"]
    assert (flow["encap"], flow["tunnel_id"], flow["sport"], flow["dport"], flow["packets"]) == (
        "gre",
        7,
        1111,
        2222,
        2,
    )
    (path,) = flow["paths"]
    assert (path["proto"], path["sport"], path["dport"]) == (47, 0, 0)


def test_untunnelled_and_anomalies(tmp_path: Path) -> None:
    doc = scenario_doc("plain_and_odd", tmp_path)
    assert doc["summary"]["untunnelled_packets"] == 1 and doc["summary"]["tunnelled_packets"] == 1
    assert doc["anomalies"] == [
        {
            "kind": "vxlan.i-flag-unset",
            "count": 1,
            "examples": [
                {
                    "source": "plain_and_odd.pcap",
                    "frame": 2,
                    "layer": "vxlan",
                    "offset": 42,
                    "detail": "I flag is 0: the VNI is not valid",
                }
            ],
        }
    ]


def test_ethernet_straight_in_ip_is_named() -> None:
    """IP protocol 143 (Ethernet): SRv6 L2 services over IPv6 (RFC 8986), rare over IPv4."""
    payload = Ether(src=MAC_A, dst=MAC_B) / IP(src="10.5.0.1", dst="10.5.0.2", id=1) / UDP(sport=9, dport=7)
    for outer, encap in (
        (IPv6(src=VTEP6_1, dst=VTEP6_2, nh=143, fl=5), "srv6"),
        (IP(src=VTEP1, dst=VTEP2, proto=143, id=1), "eth-in-ipv4"),
    ):
        pkt = dissect_frame(bytes(Ether(src=MAC_V1, dst=MAC_R) / outer / payload), 1, DissectConfig())
        (hop,) = view(pkt).hops
        assert (hop.encap, hop.src, hop.tunnel_id, hop.ipproto, hop.sport) == (encap, outer.src, None, 143, 0)
        assert view(pkt).inner[:6] == ("ipv4", "10.5.0.1", "10.5.0.2", 17, 9, 7)
