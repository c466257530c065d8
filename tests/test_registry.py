"""The registry and its decode loop: depth limit, parent chain, bindings, port overrides, field names."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from ipsotrace.decode import decode
from ipsotrace.dissectors import registry
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame, parse_port_spec
from ipsotrace.records import RESERVED_KEYS
from ipsotrace.sources import CaptureFile
from tests.conftest import require
from tests.corpus import CORPUS, truth_files
from tests.stacks import Builder, check_invariants
from tests.test_properties import built_packets

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _ip_in_ip(tunnels: int) -> bytes:
    pkt = ETH / IP(src="192.0.2.1", dst="192.0.2.2")
    for i in range(tunnels):
        pkt = pkt / IP(src=f"203.0.113.{i + 1}", dst=f"198.51.100.{i + 1}")
    return bytes(pkt / UDP(sport=1, dport=2))


def test_eight_nested_tunnels_are_fine() -> None:
    pkt = dissect_frame(_ip_in_ip(8), 1, DissectConfig())
    check_invariants(pkt)
    assert pkt.anomalies == []
    assert [ly.proto for ly in pkt.layers] == ["eth"] + ["ipv4"] * 9 + ["udp"]
    assert [ly.depth for ly in pkt.layers] == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8]


def test_nine_nested_tunnels_stop_with_too_deep() -> None:
    pkt = dissect_frame(_ip_in_ip(9), 1, DissectConfig())
    check_invariants(pkt)
    assert [a.kind for a in pkt.anomalies] == ["stack.too-deep"]
    assert pkt.anomalies[0].detail == "more than 8 nested tunnels"
    # the header that opened the ninth tunnel is kept, nothing inside it is decoded
    assert [ly.proto for ly in pkt.layers] == ["eth"] + ["ipv4"] * 9
    assert pkt.anomalies[0].offset == pkt.layers[-1].offset
    assert max(ly.depth for ly in pkt.layers) == 8


def test_depth_limit_is_configuration() -> None:
    cfg = DissectConfig(max_depth=2)
    pkt = dissect_frame(_ip_in_ip(3), 1, cfg)
    assert [a.kind for a in pkt.anomalies] == ["stack.too-deep"]
    assert len(pkt.layers) == 4


def test_parent_chain_and_depth_through_mixed_tunnels() -> None:
    b = Builder().ether().vlan(10).ip("192.0.2.1", "192.0.2.2").udp(50000, 4789).vxlan(100)
    b.ether().ip("2001:db8::1", "2001:db8::2").ip("203.0.113.1", "203.0.113.2").udp(50001, 4789).vxlan(200)
    b.ether().ip("203.0.113.10", "203.0.113.20").udp(1234, 5678)
    pkt = dissect_frame(b.payload().raw(), 1, DissectConfig())
    check_invariants(pkt)
    assert [(ly.proto, ly.parent, ly.depth) for ly in pkt.layers] == [
        ("eth", None, 0),
        ("vlan", 0, 0),
        ("ipv4", 1, 0),
        ("udp", 2, 0),
        ("vxlan", 3, 0),
        ("eth", 4, 1),
        ("ipv6", 5, 1),
        ("ipv4", 6, 2),
        ("udp", 7, 2),
        ("vxlan", 8, 2),
        ("eth", 9, 3),
        ("ipv4", 10, 3),
        ("udp", 11, 3),
    ]
    offsets = [ly.offset for ly in pkt.layers]
    assert offsets == [0, 14, 18, 38, 46, 54, 68, 108, 128, 136, 144, 158, 178]
    assert all(a.offset + a.length == b.offset for a, b in zip(pkt.layers, pkt.layers[1:], strict=False))


def test_too_many_layers_is_bounded_and_reported() -> None:
    frame = ETH
    for i in range(80):
        frame = frame / Dot1Q(vlan=i + 1)
    pkt = dissect_frame(bytes(frame / IP(src="192.0.2.1", dst="192.0.2.2") / UDP()), 1, DissectConfig())
    assert len(pkt.layers) == registry.MAX_LAYERS
    assert [a.kind for a in pkt.anomalies] == ["stack.too-many-layers"]
    check_invariants(pkt)


def test_unknown_ethertype_ip_protocol_and_port_stop_cleanly() -> None:
    pkt = dissect_frame(bytes(Ether(type=0x88B6) / Raw(b"\x45" * 60)), 1, DissectConfig())
    assert [ly.proto for ly in pkt.layers] == ["eth"] and pkt.anomalies == []
    pkt = dissect_frame(
        bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2", proto=253) / Raw(b"x" * 30)), 1, DissectConfig()
    )
    assert [ly.proto for ly in pkt.layers] == ["eth", "ipv4"] and pkt.anomalies == []
    raw = bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=40000, dport=40001) / Raw(b"\x08" + b"\0" * 30))
    pkt = dissect_frame(raw, 1, DissectConfig(heuristics=False))
    assert [ly.proto for ly in pkt.layers] == ["eth", "ipv4", "udp"] and pkt.anomalies == []


def test_snaplen_cut_right_before_a_header_says_which() -> None:
    raw = bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2) / Raw(b"p" * 50))
    pkt = dissect_frame(raw[:34], 1, DissectConfig(), wirelen=len(raw))
    assert [ly.proto for ly in pkt.layers] == ["eth", "ipv4"]
    assert [a.kind for a in pkt.anomalies] == ["udp.truncated"]
    assert pkt.anomalies[0].detail == "header needs 8 bytes, 0 captured (capture snaplen)"
    # not cut: an IP packet whose payload is missing still has no UDP layer, and no snaplen claim
    pkt = dissect_frame(raw[:34], 1, DissectConfig())
    assert all("snaplen" not in a.detail for a in pkt.anomalies)


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("vxlan=8472", (8472, "vxlan")),
        ("VXLAN=4790", (4790, "vxlan")),
        (" vxlan = 9999", (9999, "vxlan")),
        ("none=4789", (4789, "none")),
        ("udp=65535", (65535, "udp")),
    ],
)
def test_parse_port_spec(spec: str, want: tuple[int, str]) -> None:
    assert parse_port_spec(spec) == want


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("vxlan", "is not PROTO=PORT"),
        ("vxlan=", "is not PROTO=PORT"),
        ("vxlan=abc", "is not PROTO=PORT"),
        ("vxlan=-1", "is not PROTO=PORT"),
        ("vxlan=0", "out of range"),
        ("vxlan=70000", "out of range"),
        ("frobnicate=1234", "unknown protocol 'frobnicate'"),
    ],
)
def test_parse_port_spec_errors(spec: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_port_spec(spec)


def test_port_overrides() -> None:
    cfg = DissectConfig.from_overrides({9999: "vxlan", 4789: "none"}, heuristics=False)
    assert cfg.udp_ports[9999] == "vxlan" and 4789 not in cfg.udp_ports
    assert cfg.udp_ports[8472] == "vxlan"
    assert registry.DEFAULT_UDP_PORTS[4789] == "vxlan"  # the defaults are not mutated
    b = Builder().ether().ip("192.0.2.1", "192.0.2.2").udp(50000, 9999).vxlan(5).ether()
    raw = b.ip("203.0.113.1", "203.0.113.2").udp(1, 2).payload().raw()
    assert [ly.proto for ly in dissect_frame(raw, 1, cfg).layers][3] == "vxlan"
    assert len(dissect_frame(raw, 1, DissectConfig(heuristics=False)).layers) == 3


def test_every_bound_name_has_a_dissector() -> None:
    names = {*registry.ETHERTYPES.values(), *registry.IPPROTOS.values(), *registry.PPP_PROTOS.values()}
    names |= {*registry.GRE_PROTOS.values(), *registry.NSH_PROTOS.values()}
    names |= set(registry.DEFAULT_UDP_PORTS.values()) | set(registry.HEURISTICS)
    names |= {n for n in registry.LINKTYPES.values() if n != "ipv4-or-ipv6"}
    variants = getattr(registry, "VARIANTS", {})
    assert not {n for n in names if n not in registry.DISSECTORS and n not in variants}


def test_no_field_uses_a_reserved_key_on_built_packets() -> None:
    for name, linktype, data in built_packets():
        pkt = dissect_frame(data, linktype, DissectConfig())
        for ly in pkt.layers:
            assert not RESERVED_KEYS & ly.fields.keys(), (name, ly.proto)


def test_no_field_uses_a_reserved_key_on_the_corpus() -> None:
    require(CORPUS.is_dir() and len(truth_files()) >= 40, f"public corpus not found at {CORPUS}")
    layers = 0
    protos: set[str] = set()
    for truth in truth_files():
        with CaptureFile(truth.with_name(truth.name[: -len(".truth.json")])) as cap:
            for pkt in decode(cap):
                check_invariants(pkt)
                layers += len(pkt.layers)
                protos.update(ly.proto for ly in pkt.layers)
    assert layers > 10_000
    assert {"eth", "vlan", "ipv4", "ipv6", "udp", "tcp", "icmp", "icmpv6", "vxlan"} <= protos
