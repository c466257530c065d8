"""The batch reader delivers exactly the frames and damage reports of the scalar CaptureFile."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipsotrace.fast.batch import BatchReader
from ipsotrace.sources import CaptureFile
from tests.corpus import CORPUS
from tests.fast.gen import mixed_frames, write_pcap, write_pcapng

Row = tuple[int, int, int, int, int, bytes, int]


def scalar_rows(path: Path) -> tuple[list[Row], dict[str, object]]:
    with CaptureFile(path) as cf:
        # the batch reader keeps nanoseconds in int64: timestamps past 2262 saturate
        rows = [
            (
                f.number,
                min(max(f.ts_ns, -(1 << 63)), (1 << 63) - 1),
                len(f.data),
                f.wirelen,
                f.linktype,
                f.data,
                f.interface,
            )
            for f in cf
        ]
        return rows, cf.status.to_json()


def batch_rows(path: Path, chunk: int) -> tuple[list[Row], dict[str, object]]:
    rows: list[Row] = []
    with BatchReader(path, chunk) as br:
        for b in br:
            for i in range(len(b)):
                rows.append(
                    (
                        int(b.frame[i]),
                        int(b.ts_ns[i]),
                        int(b.caplen[i]),
                        int(b.wirelen[i]),
                        int(b.linktype[i]),
                        b.frame_bytes(i),
                        int(b.interface[i]),
                    )
                )
        return rows, br.status.to_json()


def assert_same(path: Path, chunk: int) -> None:
    exp_rows, exp_status = scalar_rows(path)
    got_rows, got_status = batch_rows(path, chunk)
    assert got_status == exp_status
    assert len(got_rows) == len(exp_rows)
    for got, exp in zip(got_rows, exp_rows, strict=True):
        assert got == exp


CORPUS_FILES = sorted(p for p in CORPUS.glob("*.pcap*") if not p.name.endswith(".json")) if CORPUS.is_dir() else []

#: every test here runs with the compiled record walk and with the pure-Python one
pytestmark = pytest.mark.usefixtures("walker")


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("chunk", [4096, 1 << 20])
def test_corpus_files_read_identically(path: Path, chunk: int) -> None:
    assert_same(path, chunk)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng", "pcap-ns-be", "pcapng-be"])
@pytest.mark.parametrize("gz", [False, True])
def test_generated_files_all_chunk_sizes(tmp_path: Path, fmt: str, gz: bool) -> None:
    frames = mixed_frames(300, seed=7)
    path = tmp_path / ("x." + fmt + (".gz" if gz else ""))
    raw = write_pcapng(frames, big_endian=fmt.endswith("be")) if fmt.startswith("pcapng") else None
    if raw is None:
        raw = write_pcap(frames, nanos=fmt == "pcap-ns-be", big_endian=fmt.endswith("be"))
    path.write_bytes(gzip.compress(raw) if gz else raw)
    for chunk in (4096, 10_000, 1 << 20):
        assert_same(path, chunk)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.integers(min_value=0, max_value=40_000),
    flip_at=st.integers(min_value=0, max_value=40_000),
    flip=st.integers(min_value=1, max_value=255),
    ng=st.booleans(),
)
def test_damaged_files_report_the_same_damage(
    tmp_path_factory: pytest.TempPathFactory, cut: int, flip_at: int, flip: int, ng: bool
) -> None:
    frames = mixed_frames(80, seed=3)
    raw = bytearray(write_pcapng(frames) if ng else write_pcap(frames))
    if flip_at < len(raw):
        raw[flip_at] ^= flip
    raw = raw[: len(raw) - cut % max(1, len(raw))]
    path = tmp_path_factory.mktemp("dmg") / ("d.pcapng" if ng else "d.pcap")
    path.write_bytes(bytes(raw))
    try:
        CaptureFile(path).close()
    except Exception:
        return  # not a capture any more: both readers refuse it in the constructor (shared)
    assert_same(path, 4096)


def test_corrupt_record_length_stops_like_scalar(tmp_path: Path) -> None:
    frames = mixed_frames(20, seed=1)
    raw = bytearray(write_pcap(frames))
    # record 3's incl_len: the third header after the 24-byte file header
    pos = 24
    for _ in range(2):
        pos += 16 + struct.unpack_from("<I", raw, pos + 8)[0]
    struct.pack_into("<I", raw, pos + 8, 5_000_000)
    path = tmp_path / "c.pcap"
    path.write_bytes(bytes(raw))
    rows, status = batch_rows(path, 4096)
    assert len(rows) == 2
    assert status["damage"] is not None and "record 3 claims 5000000" in str(status["damage"])
    assert_same(path, 4096)


@pytest.mark.parametrize("ng", [False, True])
def test_cut_gzip_reports_like_scalar(tmp_path: Path, ng: bool) -> None:
    frames = mixed_frames(200, seed=5)
    packed = gzip.compress(write_pcapng(frames) if ng else write_pcap(frames))
    for keep in (30, len(packed) // 3, len(packed) // 2, len(packed) - 9, len(packed) - 1):
        path = tmp_path / f"g{keep}.{'pcapng' if ng else 'pcap'}.gz"
        path.write_bytes(packed[:keep])
        try:
            CaptureFile(path).close()
        except Exception:
            continue
        assert_same(path, 4096)
