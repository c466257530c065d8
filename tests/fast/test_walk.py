"""The compiled record walks (ipsotrace/fast/_walk.c) stop exactly where the Python loops stop."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsotrace.fast import batch
from tests.conftest import IN_CI, require
from tests.fast.conftest import COMPILED
from tests.fast.gen import mixed_frames, write_pcap, write_pcapng


def test_the_extension_is_built() -> None:
    # `pip install .` builds it wherever a C compiler is present; CI must not silently lose it
    require(COMPILED is not None, "ipsotrace.fast._walk is not built (no C compiler at install?)")
    if IN_CI:
        assert batch._walker() is not None


def both_pcap(data: bytes, pos: int, have: int, rec: int, big: bool) -> tuple[list[int], int]:
    buf = np.frombuffer(data, dtype=np.uint8)
    saved = batch.WALK
    try:
        batch.WALK = None
        py_offs, py_fields, py_p = batch._walk_pcap(buf, pos, have, rec, big, batch._Space())
        batch.WALK = COMPILED
        c_offs, c_fields, c_p = batch._walk_pcap(buf, pos, have, rec, big, batch._Space())
    finally:
        batch.WALK = saved
    assert c_offs.tolist() == py_offs.tolist()
    assert c_fields.tolist() == py_fields.tolist()
    assert c_p == py_p
    return c_offs.tolist(), c_p


def both_pcapng(data: bytes, pos: int, have: int, endian: str) -> tuple[list[int], int]:
    buf = np.frombuffer(data, dtype=np.uint8)
    results = []
    saved = batch.WALK
    try:
        for walk in (None, COMPILED):
            batch.WALK = walk
            out = np.full(max(0, have - pos) // 12 + 3, -1, dtype=np.int64)
            k, p = batch._walk_pcapng(buf, pos, have, endian, out, 2)
            assert (out[:2] == -1).all() and (out[2 + k :] == -1).all()  # nothing written outside its slots
            results.append((out[2 : 2 + k].tolist(), p))
    finally:
        batch.WALK = saved
    assert results[0] == results[1]
    return results[1]


needs_compiled = pytest.mark.skipif(COMPILED is None, reason="the compiled walker is not built")


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), pos=st.integers(0, 320), cut=st.integers(0, 320), rec=st.sampled_from([16, 24]))
def test_random_bytes_walk_alike(data: bytes, pos: int, cut: int, rec: int) -> None:
    have = max(0, len(data) - cut)
    for big in (False, True):
        both_pcap(data, pos, have, rec, big)
    for endian in "<>":
        both_pcapng(data, pos, have, endian)


@needs_compiled
@pytest.mark.parametrize("seed", range(6))
def test_cut_and_corrupted_captures_walk_alike(seed: int) -> None:
    r = random.Random(seed)
    frames = mixed_frames(60, seed=seed)
    pcap = bytearray(write_pcap(frames, big_endian=seed % 2 == 1))
    ng = bytearray(write_pcapng(frames, big_endian=seed % 2 == 1))
    for _ in range(40):
        for raw, is_ng in ((pcap, False), (ng, True)):
            data = bytearray(raw)
            for _ in range(r.randrange(3)):  # corrupt a few bytes, lengths included
                data[r.randrange(len(data))] = r.randrange(256)
            have = r.randrange(len(data) + 1)
            if is_ng:
                both_pcapng(bytes(data), 0, have, ">" if seed % 2 else "<")
            else:
                offs, _ = both_pcap(bytes(data), 24, have, 16, seed % 2 == 1)
                assert all(o + 16 <= have for o in offs)


@needs_compiled
def test_huge_lengths_stop_inside_the_buffer() -> None:
    rec = struct.pack("<IIII", 0, 0, 0xFFFFFFFF, 0xFFFFFFFF)
    assert both_pcap(bytes(24) + rec + bytes(100), 24, 140, 16, False) == ([], 24)
    blocks = struct.pack("<II", 6, 0xFFFFFFFC) + bytes(8)
    assert both_pcapng(blocks, 0, len(blocks), "<") == ([], 0)


@needs_compiled
def test_bounds_outside_the_buffer_are_refused() -> None:
    assert COMPILED is not None
    buf = np.zeros(64, dtype=np.uint8)
    out = np.zeros(8, dtype=np.int64)
    fields = np.zeros((8, 4), dtype=np.int64)
    with pytest.raises(ValueError):
        COMPILED.pcap(buf, 0, 65, 16, False, out, fields)
    with pytest.raises(ValueError):
        COMPILED.pcapng(buf, -1, 64, False, 1 << 28, out)
    with pytest.raises(ValueError):
        COMPILED.pcap(buf, 0, 64, 8, False, out, fields)
    with pytest.raises(BufferError):
        COMPILED.pcap(buf, 0, 64, 16, False, b"read-only output", fields)
    with pytest.raises(BufferError):
        COMPILED.pcap(buf, 0, 64, 16, False, out, b"read-only fields")
    # a full output stops the walk, not a write past it
    chain = np.frombuffer(struct.pack("<IIII", 0, 0, 0, 0) * 4, dtype=np.uint8)
    assert COMPILED.pcap(chain, 0, 64, 16, False, np.zeros(2, dtype=np.int64), fields) == (2, 32)
    assert COMPILED.pcap(chain, 0, 64, 16, False, out, np.zeros((3, 4), dtype=np.int64)) == (3, 48)


@needs_compiled
@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=400),
    picks=st.lists(st.integers(0, 10_000), max_size=30),
    width=st.integers(0, 200),
)
def test_header_windows_copy_like_numpy(data: bytes, picks: list[int], width: int) -> None:
    assert COMPILED is not None
    buf = np.frombuffer(data, dtype=np.uint8)
    width = min(width, len(data))
    offsets = np.array([p % (len(data) - width + 1) for p in picks], dtype=np.int64)
    saved = batch.WALK
    try:
        batch.WALK = None
        py = batch.windows(buf, offsets, width)
        batch.WALK = COMPILED
        c = batch.windows(buf, offsets, width)
    finally:
        batch.WALK = saved
    assert c.shape == py.shape and c.dtype == py.dtype
    assert c.tobytes() == py.tobytes()


@needs_compiled
def test_header_windows_refuse_what_does_not_fit() -> None:
    assert COMPILED is not None
    buf = np.arange(64, dtype=np.uint8)
    out = np.zeros((4, 16), dtype=np.uint8)
    for bad in ([49], [-1], [0, 10, 60]):
        with pytest.raises(ValueError):
            COMPILED.windows(buf, np.array(bad, dtype=np.int64), 16, out)
    with pytest.raises(ValueError):  # not int64
        COMPILED.windows(buf, np.array([0], dtype=np.int32), 16, out)
    with pytest.raises(ValueError):  # five windows, room for four
        COMPILED.windows(buf, np.zeros(5, dtype=np.int64), 16, out)
    COMPILED.windows(buf, np.array([48, 0], dtype=np.int64), 16, out)
    assert out[0].tolist() == list(range(48, 64)) and out[1].tolist() == list(range(16))
