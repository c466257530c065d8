"""The shipped sample captures: reproducible from their script, and saying what the README says."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path
from types import ModuleType

import pytest

from ipsotrace.decode import decode
from ipsotrace.records import Packet
from ipsotrace.sources import CaptureFile
from tests.conftest import CAPTURES
from tests.stacks import check_invariants

DOC_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]
NAMES = ["mixed-overlays.pcap", "vxlan-basic.pcapng", "truncated.pcap"]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_captures", CAPTURES / "make_captures.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _packets(name: str) -> tuple[list[Packet], CaptureFile]:
    with CaptureFile(CAPTURES / name) as cap:
        pkts = list(decode(cap))
    return pkts, cap


def test_regenerating_gives_the_shipped_bytes() -> None:
    built = _script().build_all()
    assert sorted(built) == sorted(NAMES)
    for name, data in built.items():
        assert (CAPTURES / name).read_bytes() == data, f"{name} differs from make_captures.py's output"


def test_main_writes_elsewhere(tmp_path: Path) -> None:
    assert _script().main([str(tmp_path)]) == 0
    for name in NAMES:
        assert (tmp_path / name).read_bytes() == (CAPTURES / name).read_bytes()


@pytest.mark.parametrize("name", NAMES)
def test_small_clean_and_documentation_addresses_only(name: str) -> None:
    assert (CAPTURES / name).stat().st_size < 100_000
    pkts, _cap = _packets(name)
    for pkt in pkts:
        check_invariants(pkt)
        assert pkt.anomalies == [], (pkt.frame, pkt.anomalies)
        for ly in pkt.layers:
            for key in ("src", "dst", "sender_ip", "target_ip", "gateway"):
                value = ly.fields.get(key)
                if ly.proto in ("ipv4", "ipv6", "arp") and isinstance(value, str):
                    addr = ipaddress.ip_address(value)
                    assert any(addr in net for net in DOC_NETS), (name, pkt.frame, ly.proto, value)


def _first(pkt: Packet, proto: str) -> dict[str, object]:
    return next(ly.fields for ly in pkt.layers if ly.proto == proto and not ly.quoted)


def test_mixed_overlays_tells_its_story() -> None:
    pkts, cap = _packets("mixed-overlays.pcap")
    assert len(pkts) == 23 and cap.status.damage is None
    protos = [[ly.proto for ly in p.layers if not ly.quoted] for p in pkts]
    # overlapping tenants: the same inner 5-tuple in VNI 100 and VNI 200, between different VTEPs
    inner: dict[object, set[tuple[object, frozenset[object]]]] = {}
    for p in pkts:
        vx = [ly for ly in p.layers if ly.proto == "vxlan" and not ly.quoted]
        tcp = [ly for ly in p.layers if ly.proto == "tcp" and ly.depth == 1 and not ly.quoted]
        if vx and tcp:
            ip = next(ly for ly in p.layers if ly.proto == "ipv4" and ly.depth == 1).fields
            t = tcp[0].fields
            five = tuple(sorted([(ip["src"], t["sport"]), (ip["dst"], t["dport"])]))
            outer = _first(p, "ipv4")
            inner.setdefault(vx[0].fields["vni"], set()).add((five, frozenset((outer["src"], outer["dst"]))))
    assert {five for five, _ in inner[100]} == {five for five, _ in inner[200]}
    assert {v for _, v in inner[100]} == {frozenset({"192.0.2.1", "192.0.2.2"})}
    assert {v for _, v in inner[200]} == {frozenset({"192.0.2.3", "192.0.2.4"})}
    # ECMP re-hash: tenant A's client→server segments leave on two outer source ports
    tenant_a = [p for p in pkts if "vxlan" in protos[p.frame - 1] and _first(p, "vxlan")["vni"] == 100]
    a_ports = {_first(p, "udp")["sport"] for p in tenant_a if _first(p, "ipv4")["src"] == "192.0.2.1"}
    assert a_ports == {49200, 51515}
    # frag-needed from an underlay router, quoting tenant A's outer VXLAN packet on port 49200
    icmp = pkts[10]
    assert _first(icmp, "icmp") | {"checksum": 0} == {
        "type": 3,
        "code": 4,
        "checksum": 0,
        "kind": "frag-needed",
        "mtu": 1400,
    }
    assert _first(icmp, "ipv4")["src"] == "198.51.100.6"
    quoted = [(ly.proto, ly.fields) for ly in icmp.layers if ly.quoted]
    assert [p for p, _ in quoted] == ["ipv4", "udp", "vxlan", "eth", "ipv4", "tcp"]
    assert (quoted[0][1]["src"], quoted[0][1]["total_length"], quoted[0][1]["df"]) == ("192.0.2.1", 1500, True)
    assert (quoted[1][1]["sport"], quoted[2][1]["vni"]) == (49200, 100)
    # one frame per other encapsulation, in the README's order
    assert [_first(p, "vlan")["vid"] for p in pkts if "vlan" in protos[p.frame - 1]] == [30]
    assert _first(pkts[15], "ipv6")["src"] == "2001:db8:0:1::1" and _first(pkts[15], "vxlan")["vni"] == 400
    expected_tunnels = [
        ("geneve", "vni", 500),
        ("gre", "key", 0x00012345),
        ("gre", "key", 0x000ABC11),
        ("ipv4", "dst", "203.0.113.20"),
        ("gtpu", "teid", 0x1A2B3C4D),
        ("mpls", "label", 1000),
        ("erspan", "span_id", 42),
    ]
    for pkt, (proto, key, value) in zip(pkts[16:], expected_tunnels, strict=True):
        layers = [ly for ly in pkt.layers if ly.proto == proto]
        assert layers, (pkt.frame, proto)
        assert layers[-1].fields[key] == value, (pkt.frame, proto)
        assert any(ly.depth == 1 for ly in pkt.layers), pkt.frame
    options = _first(pkts[16], "geneve")["options"]
    assert isinstance(options, list) and options[0]["class"] == 0x0102


def test_vxlan_basic_pcapng() -> None:
    pkts, cap = _packets("vxlan-basic.pcapng")
    assert cap.status.format == "pcapng"
    assert [p.ts_ns for p in pkts] == [1_700_000_000 * 10**9 + i * 123_456_789 for i in range(4)]
    assert [[ly.proto for ly in p.layers][-1] for p in pkts] == ["arp", "arp", "icmp", "icmp"]
    assert {_first(p, "vxlan")["vni"] for p in pkts} == {100}


def test_truncated_capture() -> None:
    pkts, cap = _packets("truncated.pcap")
    assert len(pkts) == 4
    assert cap.status.damage == "file ends inside record 5 (52 of 104 bytes)"
    assert cap.status.damage_offset == (CAPTURES / "truncated.pcap").stat().st_size - 52 - 16
