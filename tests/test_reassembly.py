"""IP reassembly between dissect and correlate (ipsotrace.reassembly, decode(reassemble=True)).

Fragments are built with scapy; every reassembled stack is compared layer by layer with the
decode of the same datagram sent unfragmented: same protocols, offsets, lengths and fields.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw
from scapy.utils import wrpcap
from typer.testing import CliRunner

from ipsotrace.cli import app
from ipsotrace.decode import decode
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.reassembly import DatagramKey, Head, Reassembler, ReassemblySummary
from ipsotrace.records import Packet
from ipsotrace.sources.base import Frame
from tests.stacks import check_invariants

SEC = 1_000_000_000
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _inner(dport: int = 5001, size: int = 2400, fill: bytes = b"x") -> ScapyPacket:
    body = (fill * size)[:size]
    return (
        Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
        / IP(src="203.0.113.1", dst="203.0.113.2", id=7)
        / UDP(sport=40000, dport=dport)
        / Raw(body)
    )


def _vxlan(vni: int = 100, inner: ScapyPacket | None = None, ident: int = 0x1234) -> ScapyPacket:
    return (
        IP(src="192.0.2.1", dst="192.0.2.2", id=ident, flags=0)
        / UDP(sport=49152, dport=4789)
        / VXLAN(flags=0x08, vni=vni)
        / (inner if inner is not None else _inner())
    )


def _frames(pkts: list[bytes], t0: int = 1_700_000_000 * SEC, step: int = 1000) -> list[Frame]:
    return [Frame(n, t0 + n * step, len(b), len(b), 1, b) for n, b in enumerate(pkts, 1)]


def _outer_frags(ip: ScapyPacket, size: int = 1000) -> list[bytes]:
    return [bytes(ETH / f) for f in fragment(ip, fragsize=size)]


def _ipv4_frag(ip: ScapyPacket, offset: int, length: int, more: bool, data: bytes | None = None) -> bytes:
    """One IPv4 fragment of ``ip`` carrying payload bytes [offset, offset+length) (or ``data``)."""
    raw = bytes(ip)
    hdr = IP(raw[:20])
    payload = raw[20:][offset : offset + length] if data is None else data
    f = IP(
        src=hdr.src, dst=hdr.dst, id=hdr.id, proto=hdr.proto, ttl=hdr.ttl, flags="MF" if more else 0, frag=offset // 8
    )
    return bytes(ETH / f / Raw(payload))


def _same_stack(got: Packet, whole: Packet, first: int, shift: int = 0) -> None:
    """Layers after index ``first`` equal the unfragmented decode's (offsets moved by ``shift``)."""
    check_invariants(got)
    assert len(got.layers) == len(whole.layers)
    for g, w in zip(got.layers[first:], whole.layers[first:], strict=True):
        assert g.reassembled
        assert (g.proto, g.offset, g.length, g.parent, g.depth, g.quoted) == (
            w.proto,
            w.offset + shift,
            w.length,
            w.parent,
            w.depth,
            w.quoted,
        )
        assert g.fields == w.fields


def _whole(ip: ScapyPacket) -> Packet:
    return dissect_frame(bytes(ETH / ip), 1, DissectConfig())


def test_outer_vxlan_fragments_in_order() -> None:
    ip = _vxlan()
    raw = _outer_frags(ip)
    assert len(raw) == 3
    pkts = list(decode(_frames(raw)))
    for p, (off, mf) in zip(pkts[:2], [(0, True), (1000, True)], strict=True):
        assert [ly.proto for ly in p.layers] == ["eth", "ipv4"]
        f = p.layers[1].fields
        assert (f["reassembly"], f["frag_offset"], f["mf"], f["frag_length"]) == ("pending", off, mf, 1000)
        assert not p.anomalies
    last = pkts[2]
    f = last.layers[1].fields
    total = len(bytes(ip)) - 20
    assert f["reassembly"] == "complete"
    assert f["reassembled_frames"] == [1, 2, 3]
    assert f["reassembled_length"] == total
    assert f["frag_length"] == total - 2000
    assert not last.layers[1].reassembled
    whole = _whole(ip)
    assert [ly.proto for ly in last.layers] == ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4", "udp"]
    _same_stack(last, whole, 2)
    assert last.layers[3].fields["vni"] == 100
    assert (last.layers[6].fields["sport"], last.layers[6].fields["dport"]) == (40000, 5001)
    assert last.layers[2].to_json()["reassembled"] is True
    assert not last.anomalies


def test_reversed_order_completes_on_the_first_fragment() -> None:
    ip = _vxlan()
    pkts = list(decode(_frames(list(reversed(_outer_frags(ip))))))
    assert [p.layers[1].fields["reassembly"] for p in pkts] == ["pending", "pending", "complete"]
    last = pkts[2]
    assert last.layers[1].fields["frag_offset"] == 0
    assert last.layers[1].fields["reassembled_frames"] == [3, 2, 1]  # fragment offset order
    _same_stack(last, _whole(ip), 2)


@pytest.mark.parametrize("seed", range(12))
def test_any_order_with_repeats_reassembles_the_same_datagram(seed: int) -> None:
    rnd = random.Random(seed)
    ip = _vxlan(inner=_inner(size=rnd.randrange(1500, 6000)))
    raw = _outer_frags(ip, size=8 * rnd.randrange(60, 200))
    order = raw + [rnd.choice(raw) for _ in range(rnd.randrange(3))]
    rnd.shuffle(order)
    pkts = list(decode(_frames(order)))
    done = [p for p in pkts if p.layers[1].fields["reassembly"] == "complete"]
    assert len(done) == 1
    assert len(done[0].layers[1].fields["reassembled_frames"]) == len(raw)
    _same_stack(done[0], _whole(ip), 2)
    for p in pkts:
        check_invariants(p)
        if p is not done[0]:
            assert [ly.proto for ly in p.layers] == ["eth", "ipv4"]


def test_per_frame_decoding_without_reassembly() -> None:
    ip = _vxlan()
    pkts = list(decode(_frames(_outer_frags(ip)), reassemble=False))
    assert [ly.proto for ly in pkts[0].layers] == ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4", "udp"]
    assert [ly.proto for ly in pkts[2].layers] == ["eth", "ipv4"]
    assert all("reassembly" not in p.layers[1].fields for p in pkts)
    assert not any(ly.reassembled for p in pkts for ly in p.layers)


def test_duplicates_and_overlaps_first_wins() -> None:
    ip = _vxlan()
    total = len(bytes(ip)) - 20
    garbage = b"\xee" * 800
    raw = [
        _ipv4_frag(ip, 0, 1200, True),
        _ipv4_frag(ip, 0, 1200, True),  # exact duplicate
        _ipv4_frag(ip, 800, 800, True, garbage),  # overlaps [800, 1200) with other bytes, adds [1200, 1600)
        _ipv4_frag(ip, 800, total - 800, False),  # overlaps [800, 1600), completes
    ]
    pkts = list(decode(_frames(raw)))
    states = [p.layers[1].fields["reassembly"] for p in pkts]
    assert states == ["pending", "duplicate", "pending", "complete"]
    assert [a.kind for a in pkts[1].anomalies] == ["ipv4.fragment-duplicate"]
    assert [a.kind for a in pkts[2].anomalies] == ["ipv4.fragment-overlap", "ipv4.fragment-overlap-conflict"]
    assert [a.kind for a in pkts[3].anomalies] == ["ipv4.fragment-overlap", "ipv4.fragment-overlap-conflict"]
    last = pkts[3]
    assert last.layers[1].fields["reassembled_frames"] == [1, 3, 4]
    # bytes [1200, 1600) came first from frame 3 (garbage), the rest from the original datagram
    ref = bytearray(bytes(ip))
    ref[20 + 1200 : 20 + 1600] = garbage[400:]
    whole = dissect_frame(bytes(ETH / ip)[:14] + bytes(ref), 1, DissectConfig())
    _same_stack(last, whole, 2)


def test_missing_fragment_is_reported_incomplete() -> None:
    ip = _vxlan()
    raw = _outer_frags(ip)
    reasm: Reassembler[Head] = Reassembler()
    pkts = list(decode(_frames([raw[0], raw[2]]), reassembler=reasm))
    assert [p.layers[1].fields["reassembly"] for p in pkts] == ["pending", "pending"]
    assert reasm.in_flight == 0 and reasm.buffered_bytes == 0  # flushed at the end of the frames
    st = reasm.stats
    assert (st.fragments, st.completed, st.incomplete, st.incomplete_fragments) == (2, 0, 1, 2)
    (inc,) = reasm.incomplete
    total = len(bytes(ip)) - 20
    assert inc.reason == "end of capture"
    assert inc.frames == (1, 2)
    assert (inc.bytes, inc.expected, inc.has_first, inc.fragments) == (1000 + total - 2000, total, True, 2)
    assert inc.key == DatagramKey(4, "192.0.2.1", "192.0.2.2", 17, 0x1234)
    summary = ReassemblySummary()
    summary.add("a.pcap", reasm)
    doc = summary.to_json()
    assert doc["incomplete"] == 1
    assert doc["incomplete_datagrams"][0]["source"] == "a.pcap"
    assert doc["incomplete_datagrams"][0]["frames"] == [1, 2]
    assert doc["verdict"] == f"fragments of 1 datagram never completed (2 fragments, {inc.bytes} bytes; frames 1, 2)"
    json.dumps(doc)


def test_ipv6_fragment_header() -> None:
    inner = _inner(size=3000)
    body = UDP(sport=49152, dport=4789) / VXLAN(flags=0x08, vni=300) / inner
    ip6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
    frags = fragment6(ip6 / IPv6ExtHdrFragment(id=0xABCDEF) / body, 1280)
    assert len(frags) == 3
    raw = [bytes(ETH / f) for f in frags]
    pkts = list(decode(_frames([raw[1], raw[0], raw[2]])))
    assert [p.layers[1].fields["reassembly"] for p in pkts] == ["pending", "pending", "complete"]
    f = pkts[2].layers[1].fields
    assert f["frag_id"] == 0xABCDEF
    assert f["reassembled_frames"] == [2, 1, 3]
    assert f["reassembled_length"] == len(bytes(body))
    whole = _whole(ip6 / body)
    # the fragments carry an 8-byte fragment header the unfragmented packet does not have
    _same_stack(pkts[2], whole, 2, shift=8)
    assert pkts[2].layers[3].fields["vni"] == 300
    assert not any(p.anomalies for p in pkts)


def test_two_tenants_inner_fragments_with_identical_keys_stay_apart() -> None:
    """Inner IPv4 fragments with the same addresses, protocol and ID in VNI 100 and VNI 200."""
    tenants = {100: _inner(dport=1100, size=1800, fill=b"a"), 200: _inner(dport=2200, size=1800, fill=b"b")}
    parts: dict[int, list[ScapyPacket]] = {}
    for vni, pkt in tenants.items():
        parts[vni] = fragment(pkt[IP], 1000)
    assert all(len(p) == 2 for p in parts.values())

    def carry(vni: int, frag: ScapyPacket) -> bytes:
        eth = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")
        return bytes(ETH / _vxlan(vni, eth / frag, ident=vni))

    raw = [carry(100, parts[100][0]), carry(200, parts[200][0]), carry(100, parts[100][1]), carry(200, parts[200][1])]
    pkts = list(decode(_frames(raw)))
    for p in pkts[:2]:
        assert [ly.proto for ly in p.layers] == ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4"]
        assert p.layers[5].fields["reassembly"] == "pending"
    for p, vni, frames in ((pkts[2], 100, [1, 3]), (pkts[3], 200, [2, 4])):
        inner_ip = p.layers[5].fields
        assert p.layers[3].fields["vni"] == vni
        assert inner_ip["reassembly"] == "complete"
        assert inner_ip["reassembled_frames"] == frames
        whole = _whole(_vxlan(vni, tenants[vni], ident=vni))
        _same_stack(p, whole, 6)
    assert pkts[2].layers[6].fields["dport"] == 1100
    assert pkts[3].layers[6].fields["dport"] == 2200
    assert not any(p.anomalies for p in pkts)


def test_duplicate_after_completion_is_not_a_new_datagram() -> None:
    """A capture on two interfaces sees every fragment twice."""
    raw = _outer_frags(_vxlan())
    reasm: Reassembler[Head] = Reassembler()
    pkts = list(decode(_frames([raw[0], raw[1], raw[2], raw[0], raw[1], raw[2]]), reassembler=reasm))
    states = [p.layers[1].fields["reassembly"] for p in pkts]
    assert states == ["pending", "pending", "complete", "duplicate", "duplicate", "duplicate"]
    assert reasm.stats.incomplete == 0 and reasm.stats.duplicates == 3
    assert "completed in frame 3" in pkts[3].anomalies[0].detail


def test_same_key_new_datagram_after_completion() -> None:
    """IP ID reuse with other bytes is a new datagram, not a duplicate."""
    a, b = _vxlan(inner=_inner(fill=b"a")), _vxlan(inner=_inner(fill=b"b"))
    pkts = list(decode(_frames(_outer_frags(a) + _outer_frags(b))))
    assert [p.layers[1].fields["reassembly"] for p in pkts] == ["pending", "pending", "complete"] * 2


def test_eviction_by_datagram_count_and_bytes() -> None:
    reasm: Reassembler[Head] = Reassembler(max_datagrams=2)
    firsts = [_outer_frags(_vxlan(ident=i))[0] for i in (1, 2, 3)]
    list(decode(_frames(firsts), reassembler=reasm))
    assert reasm.stats.evictions == 1 and reasm.stats.peak_datagrams == 2
    assert [(i.reason, i.key.ident, i.frames) for i in reasm.incomplete] == [
        ("evicted", 1, (1,)),
        ("end of capture", 2, (2,)),
        ("end of capture", 3, (3,)),
    ]
    small: Reassembler[Head] = Reassembler(max_bytes=2500)
    list(decode(_frames(firsts), reassembler=small))
    assert small.stats.evictions == 1 and small.stats.peak_bytes == 2000


def test_byte_cap_evicts_another_datagram_never_the_one_being_completed() -> None:
    """Over the byte cap, the oldest *other* datagram goes: the fragment that completes the oldest
    one must complete it (evicting it under its own feet raised KeyError)."""
    a = DatagramKey(4, "192.0.2.1", "192.0.2.2", 17, 1)
    b = DatagramKey(4, "192.0.2.1", "192.0.2.2", 17, 2)
    reasm: Reassembler[Head] = Reassembler(max_bytes=100)
    assert reasm.add(a, 1, 0, 0, b"a" * 80, True, 65515).state == "pending"
    assert reasm.add(b, 2, 0, 0, b"b" * 16, True, 65515).state == "pending"
    done = reasm.add(a, 3, 0, 80, b"c" * 40, False, 65515)
    assert done.state == "complete" and done.payload == b"a" * 80 + b"c" * 40 and done.frames == (1, 3)
    assert [(i.reason, i.key.ident) for i in reasm.incomplete] == [("evicted", 2)]
    assert reasm.in_flight == 0 and reasm.buffered_bytes == 0


def test_timeout_in_capture_time() -> None:
    raw = _outer_frags(_vxlan())
    # the second fragment comes after the 30 s timeout
    frames = [
        Frame(n, ts * SEC, len(b), len(b), 1, b) for n, (ts, b) in enumerate(zip((0, 31, 32), raw, strict=True), 1)
    ]
    reasm: Reassembler[Head] = Reassembler()
    pkts = list(decode(frames, reassembler=reasm))
    assert [p.layers[1].fields["reassembly"] for p in pkts] == ["pending", "pending", "pending"]
    assert reasm.stats.timeouts == 1
    assert [(i.reason, i.frames) for i in reasm.incomplete] == [("timeout", (1,)), ("end of capture", (2, 3))]
    # within the timeout the same fragments complete
    assert list(decode(_frames(raw, step=10 * SEC)))[2].layers[1].fields["reassembly"] == "complete"


def test_datagram_longer_than_65535_is_dropped() -> None:
    ip = IP(src="192.0.2.1", dst="192.0.2.2", id=99, proto=17)
    raw = [
        bytes(ETH / IP(src=ip.src, dst=ip.dst, id=99, proto=17, flags="MF", frag=0) / Raw(b"\0" * 1480)),
        bytes(ETH / IP(src=ip.src, dst=ip.dst, id=99, proto=17, frag=65520 // 8) / Raw(b"\0" * 100)),
    ]
    reasm: Reassembler[Head] = Reassembler()
    pkts = list(decode(_frames(raw), reassembler=reasm))
    assert pkts[1].layers[1].fields["reassembly"] == "dropped"
    assert [a.kind for a in pkts[1].anomalies] == ["ipv4.reassembly-too-long"]
    assert reasm.stats.invalid == 1
    assert reasm.incomplete[0].reason == "invalid"


def test_fragment_cut_by_snaplen_is_decoded_per_frame() -> None:
    raw = _outer_frags(_vxlan())
    cut = Frame(1, 0, 120, len(raw[0]), 1, raw[0][:120])
    (pkt,) = decode([cut])
    assert pkt.layers[1].fields["reassembly"] == "not-captured"
    assert [ly.proto for ly in pkt.layers][:4] == ["eth", "ipv4", "udp", "vxlan"]


@pytest.mark.parametrize("command", ["dissect", "analyze"])
def test_cli_no_reassemble(tmp_path: Path, command: str) -> None:
    path = tmp_path / "frags.pcap"
    wrpcap(str(path), [ETH.__class__(b) for b in _outer_frags(_vxlan())])
    runner = CliRunner()
    on = runner.invoke(app, [command, str(path), "--json"])
    off = runner.invoke(app, [command, str(path), "--json", "--no-reassemble"])
    assert on.exit_code == 0 and off.exit_code == 0, on.stderr + off.stderr
    if command == "dissect":
        first_on, first_off = (json.loads(r.stdout.splitlines()[0]) for r in (on, off))
        assert [ly["proto"] for ly in first_on["layers"]] == ["eth", "ipv4"]
        assert first_on["layers"][1]["reassembly"] == "pending"
        assert [ly["proto"] for ly in first_off["layers"]][:4] == ["eth", "ipv4", "udp", "vxlan"]
    else:
        doc_on, doc_off = json.loads(on.stdout), json.loads(off.stdout)
        # one tunnel packet either way: the completing fragment, or the first fragment
        assert [t["packets"] for t in doc_on["tunnels"]] == [1]
        assert [t["packets"] for t in doc_off["tunnels"]] == [1]
