"""The streaming pcap/pcapng reader: every format variant, damage, non-captures, streaming."""

from __future__ import annotations

import gzip
import random
import struct
import tracemalloc
import zlib
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from ipsotrace.decode import decode
from ipsotrace.sources import CaptureError, CaptureFile, Frame
from tests.sources import pcapbuild as pb

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
INNER = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / IP(src="203.0.113.10", dst="203.0.113.20")


def _vxlan_frame(vni: int, sport: int = 50000) -> bytes:
    outer = ETH / IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=sport, dport=4789)
    return bytes(outer / VXLAN(flags=0x08, vni=vni) / INNER / UDP(sport=1, dport=2) / Raw(b"payload"))


FRAMES = [_vxlan_frame(100), _vxlan_frame(200, 50001), bytes(ETH / IP(src="192.0.2.1", dst="192.0.2.2") / UDP())]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _read(path: Path) -> tuple[list[Frame], CaptureFile]:
    with CaptureFile(path) as cap:
        frames = list(cap)
    return frames, cap


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize(("magic", "unit_ns"), [(pb.PCAP_USEC, 1000), (pb.PCAP_NSEC, 1)])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endian: str, magic: int, unit_ns: int) -> None:
    recs = [(1_700_000_000 + i, 123_456 + i, d) for i, d in enumerate(FRAMES)]
    path = _write(tmp_path, "t.pcap", pb.pcap(recs, endian, magic, linktype=1))
    frames, cap = _read(path)
    assert cap.status.format == "pcap"
    assert cap.status.damage is None
    assert cap.status.frames == 3
    assert cap.status.linktypes == {0: 1}
    assert [f.number for f in frames] == [1, 2, 3]
    assert [f.data for f in frames] == FRAMES
    assert [f.ts_ns for f in frames] == [(1_700_000_000 + i) * 10**9 + (123_456 + i) * unit_ns for i in range(3)]
    assert all(f.caplen == f.wirelen == len(f.data) and f.linktype == 1 and f.interface == 0 for f in frames)
    vnis = [p.layers[3].fields["vni"] for p in decode(frames) if len(p.layers) > 3]
    assert vnis == [100, 200]


def test_pcap_kuznetzov_records(tmp_path: Path) -> None:
    head = pb.pcap_header("<", pb.PCAP_KUZNETZOV)
    recs = b"".join(pb.pcap_record(d, 5, 6, "<", extra=b"\x01" * 8) for d in FRAMES)
    frames, cap = _read(_write(tmp_path, "k.pcap", head + recs))
    assert [f.data for f in frames] == FRAMES and cap.status.damage is None


def test_pcap_linktype_upper_bits_ignored(tmp_path: Path) -> None:
    frames, _ = _read(_write(tmp_path, "fcs.pcap", pb.pcap([(0, 0, FRAMES[0])], linktype=0x1000_0000 | 1)))
    assert frames[0].linktype == 1


def test_pcapng_two_interfaces_unknown_blocks_and_two_sections(tmp_path: Path) -> None:
    raw_ip = bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=3, dport=4))
    sll = bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=0x0800) / IP(src="192.0.2.7") / UDP())
    data = (
        pb.shb("<", pb.option(4, b"ipsotrace tests") + pb.option(0, b""))
        + pb.idb(1, "<")  # Ethernet, default microseconds
        + pb.idb(101, "<", tsresol=9, tsoffset=100)  # raw IP, nanoseconds, +100 s
        + pb.block(0x0BAD, b"unknown block body", "<")  # must be skipped
        + pb.block(4, b"\0\0\0\0", "<")  # name resolution block: skipped
        + pb.epb(0, 1_700_000_000_123_456, FRAMES[0], "<")
        + pb.epb(1, 5_000_000_007, raw_ip, "<")
        + pb.block(5, struct.pack("<III", 0, 0, 0), "<")  # interface statistics: skipped
        # a second section, big-endian: interface ids restart at 0
        + pb.shb(">")
        + pb.idb(113, ">", tsresol=0x80 | 10)  # SLL, binary 2^-10 s
        + pb.epb(0, 3 * 1024 + 512, sll, ">")
        + pb.spb(FRAMES[1][:60], orig=len(FRAMES[1]), endian=">")
    )
    frames, cap = _read(_write(tmp_path, "t.pcapng", data))
    assert cap.status.format == "pcapng"
    assert cap.status.damage is None
    assert cap.status.linktypes == {0: 1, 1: 101, 2: 113}
    assert [(f.number, f.linktype, f.interface) for f in frames] == [(1, 1, 0), (2, 101, 1), (3, 113, 2), (4, 113, 2)]
    assert frames[0].ts_ns == 1_700_000_000_123_456_000
    assert frames[1].ts_ns == 5_000_000_007 + 100 * 10**9
    assert frames[2].ts_ns == 3_500_000_000
    assert [f.data for f in frames[:3]] == [FRAMES[0], raw_ip, sll]
    assert (frames[3].caplen, frames[3].wirelen, frames[3].data) == (60, len(FRAMES[1]), FRAMES[1][:60])
    pkts = list(decode(frames))
    assert [ly.proto for ly in pkts[1].layers] == ["ipv6", "udp"]
    assert [ly.proto for ly in pkts[2].layers] == ["sll", "ipv4", "udp"]
    assert pkts[3].truncated


def test_pcapng_big_endian_only(tmp_path: Path) -> None:
    data = pb.shb(">") + pb.idb(1, ">") + b"".join(pb.epb(0, i, d, ">") for i, d in enumerate(FRAMES))
    frames, cap = _read(_write(tmp_path, "be.pcapng", data))
    assert cap.status.damage is None
    assert [f.data for f in frames] == FRAMES
    assert [f.ts_ns for f in frames] == [0, 1000, 2000]


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_gzip_compressed(tmp_path: Path, kind: str) -> None:
    if kind == "pcap":
        data = pb.pcap([(1, 2, d) for d in FRAMES])
    else:
        data = pb.shb() + pb.idb(1) + b"".join(pb.epb(0, 7, d) for d in FRAMES)
    frames, cap = _read(_write(tmp_path, f"t.{kind}.gz", gzip.compress(data, mtime=0)))
    assert cap.status.format == f"gzip+{kind}"
    assert [f.data for f in frames] == FRAMES
    assert cap.status.damage is None


def test_gzip_cut_short_delivers_every_frame_before_the_cut(tmp_path: Path) -> None:
    rng = random.Random(7)
    payloads = [FRAMES[0] + rng.randbytes(200) for _ in range(300)]  # incompressible: a long .gz
    data = gzip.compress(pb.pcap([(1, 2, d) for d in payloads]), mtime=0)
    cut = data[: len(data) // 2]
    frames, cap = _read(_write(tmp_path, "cut.pcap.gz", cut))
    # everything the first half decompresses to is delivered, to the last whole record
    plain = zlib.decompressobj(wbits=31).decompress(cut)
    whole = sum(1 for i in range(300) if 24 + (i + 1) * (16 + len(payloads[0])) <= len(plain))
    assert len(frames) == whole > 100
    assert [f.data for f in frames] == payloads[:whole]
    assert cap.status.damage is not None
    assert "gzip stream" in cap.status.damage


def test_gzip_concatenated_members(tmp_path: Path) -> None:
    data = pb.pcap([(1, 2, d) for d in FRAMES])
    gz = gzip.compress(data[:50], mtime=0) + gzip.compress(data[50:], mtime=0)
    frames, cap = _read(_write(tmp_path, "multi.pcap.gz", gz))
    assert [f.data for f in frames] == FRAMES and cap.status.damage is None


def test_truncated_mid_record(tmp_path: Path) -> None:
    data = pb.pcap([(1, 0, d) for d in FRAMES])
    third = 24 + 2 * 16 + len(FRAMES[0]) + len(FRAMES[1])
    frames, cap = _read(_write(tmp_path, "cut.pcap", data[: third + 16 + 10]))
    assert [f.data for f in frames] == FRAMES[:2]
    assert cap.status.frames == 2
    assert cap.status.damage == f"file ends inside record 3 (10 of {len(FRAMES[2])} bytes)"
    assert cap.status.damage_offset == third


def test_truncated_inside_record_header(tmp_path: Path) -> None:
    data = pb.pcap([(1, 0, d) for d in FRAMES[:1]]) + b"\0" * 7
    frames, cap = _read(_write(tmp_path, "cuth.pcap", data))
    assert len(frames) == 1
    assert cap.status.damage == "file ends inside the header of record 2 (7 of 16 bytes)"
    assert cap.status.damage_offset == 24 + 16 + len(FRAMES[0])


def test_truncated_pcapng_block(tmp_path: Path) -> None:
    data = pb.shb() + pb.idb(1) + pb.epb(0, 1, FRAMES[0]) + pb.epb(0, 2, FRAMES[1])
    frames, cap = _read(_write(tmp_path, "cut.pcapng", data[:-20]))
    assert [f.data for f in frames] == FRAMES[:1]
    assert cap.status.damage is not None and cap.status.damage.startswith("file ends inside a block of type 0x6")
    assert cap.status.damage_offset == len(data) - len(pb.epb(0, 2, FRAMES[1]))


def test_corrupt_record_length(tmp_path: Path) -> None:
    data = bytearray(pb.pcap([(1, 0, d) for d in FRAMES]))
    second = 24 + 16 + len(FRAMES[0])
    data[second + 8 : second + 12] = struct.pack("<I", 0x7FFF_FFF0)
    frames, cap = _read(_write(tmp_path, "bad.pcap", bytes(data)))
    assert [f.data for f in frames] == FRAMES[:1]
    assert cap.status.damage is not None and "corrupt record header" in cap.status.damage
    assert cap.status.damage_offset == second
    # a plausible-looking but impossible size (larger than snaplen and than the wire length)
    data[second + 8 : second + 12] = struct.pack("<I", 300_000)
    _, cap = _read(_write(tmp_path, "bad2.pcap", bytes(data)))
    assert cap.status.damage is not None and "300000 captured bytes" in cap.status.damage


def test_big_tcp_record_is_not_corrupt(tmp_path: Path) -> None:
    big = bytes(ETH / IPv6(src="2001:db8::1", dst="2001:db8::2", plen=0) / UDP(len=0) / Raw(b"b" * 400_000))
    frames, cap = _read(_write(tmp_path, "big.pcap", pb.pcap([(1, 0, big)], snaplen=262144)))
    assert cap.status.damage is None and frames[0].caplen == len(big)


def test_pcapng_corrupt_lengths(tmp_path: Path) -> None:
    good = pb.shb() + pb.idb(1) + pb.epb(0, 1, FRAMES[0])
    bad_trailer = bytearray(pb.epb(0, 2, FRAMES[1]))
    bad_trailer[-4:] = struct.pack("<I", 12)
    frames, cap = _read(_write(tmp_path, "t1.pcapng", good + bytes(bad_trailer)))
    assert len(frames) == 1 and cap.status.damage is not None and "does not match its trailer" in cap.status.damage
    odd = struct.pack("<II", 6, 13) + b"\0" * 8
    frames, cap = _read(_write(tmp_path, "t2.pcapng", good + odd))
    assert len(frames) == 1 and cap.status.damage == "block of type 0x6 has invalid length 13"
    frames, cap = _read(_write(tmp_path, "t3.pcapng", good + pb.epb(5, 2, FRAMES[1])))
    assert len(frames) == 1 and cap.status.damage == "packet block for undeclared interface 5"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", "not a pcap or pcapng file (starts with 47455420"),
        (b"", "empty or too short to be a capture file (0 bytes)"),
        (b"\xd4\xc3", "empty or too short to be a capture file (2 bytes)"),
        (gzip.compress(b"just some text, compressed", mtime=0), "not a pcap or pcapng file"),
        (b"\x1f\x8b\x08\x00garbage-not-really-gzip", "broken gzip stream"),
    ],
)
def test_not_a_capture(tmp_path: Path, content: bytes, message: str) -> None:
    path = _write(tmp_path, "x.bin", content)
    with pytest.raises(CaptureError) as err:
        CaptureFile(path)
    assert str(err.value).startswith(str(path))
    assert message in str(err.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="No such file"):
        CaptureFile(tmp_path / "absent.pcap")
    with pytest.raises(CaptureError, match="directory"):
        CaptureFile(tmp_path)


def test_pcap_header_cut_short(tmp_path: Path) -> None:
    frames, cap = _read(_write(tmp_path, "h.pcap", pb.pcap_header()[:10]))
    assert frames == []
    assert cap.status.damage == "file header cut short (10 of 24 bytes)"


def test_snaplen_truncated_packet_decodes_as_far_as_it_goes(tmp_path: Path) -> None:
    full = FRAMES[0]
    rec = pb.pcap_header(snaplen=64) + pb.pcap_record(full[:64], 1, 0, orig=len(full))
    frames, cap = _read(_write(tmp_path, "snap.pcap", rec))
    assert cap.status.damage is None
    assert (frames[0].caplen, frames[0].wirelen) == (64, len(full))
    (pkt,) = decode(frames)
    assert pkt.truncated is True
    assert [ly.proto for ly in pkt.layers] == ["eth", "ipv4", "udp", "vxlan", "eth"]
    assert [a.kind for a in pkt.anomalies] == ["ipv4.truncated"]
    assert "capture snaplen" in pkt.anomalies[0].detail
    assert pkt.to_json()["truncated"] is True


def test_reader_streams(tmp_path: Path) -> None:
    frame = FRAMES[0]
    n = 40_000
    path = tmp_path / "many.pcap"
    with path.open("wb") as fh:
        fh.write(pb.pcap_header())
        rec = pb.pcap_record(frame, 1, 0)
        for _ in range(n):
            fh.write(rec)
    size = path.stat().st_size
    assert size > 4_000_000
    with CaptureFile(path) as cap:
        it = iter(cap)
        first = next(it)
        assert first.data == frame
        # the first frame arrives after reading only a buffer's worth, not the file
        assert cap.status.bytes_read < 64 * 1024
        tracemalloc.start()
        count = 1 + sum(1 for _ in it)
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert count == n
    assert peak < 1_000_000, f"reading {size} bytes peaked at {peak} bytes"
