"""The fast path's heuristic screens are necessary conditions of the registry's heuristics."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ipsotrace.dissectors import registry as reg
from ipsotrace.fast import heuristics

# payload starts that pass some screen, so the byte strings after them get exercised too
PREFIXES = [
    b"\x08\x00\x00\x00",
    b"\x88\x00\x00\x00",
    b"\x00\x00\x65\x58",
    b"\x00\x00\x08\x00",
    b"\x30\xff\x00\x00",
    b"\x34\xff\x00\x10",
    b"\x60\x00\x00\x00",
    b"\x00\x01\x00\x00",
    b"\x00\x00\x00\x00",
    b"\x04\x00\x00\x00",
    b"\x01\x00\x00\x00",
    b"\x17\xfe\xfd\x00",
    b"\x16\xfe\xff\x00",
    b"\x60\x00\x00\x00\x00\x08\x11\x40",
    b"\x08\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00",
]


def screened(payload: bytes, junk: int = 0xA5) -> bool:
    """The screen's verdict; bytes past the payload are junk, as in a header window."""
    b = np.frombuffer(payload[: heuristics.SCREEN_BYTES].ljust(heuristics.SCREEN_BYTES, bytes([junk])), dtype=np.uint8)
    m = b.reshape(1, -1)
    return bool(heuristics.may_fire(lambda k: m[:, k], np.array([len(payload)]))[0])


def check(payload: bytes) -> None:
    if not (screened(payload, 0x00) and screened(payload, 0x60) and screened(payload, 0xA5)):
        for name, probe in reg.HEURISTICS.items():
            assert probe(payload, 0, len(payload)) < reg.HEURISTIC_THRESHOLD, (name, payload[:16].hex())


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=120))
def test_random_payloads(payload: bytes) -> None:
    check(payload)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(PREFIXES), st.binary(max_size=120), st.integers(0, 21), st.integers(0, 255))
def test_crafted_payloads(prefix: bytes, rest: bytes, pos: int, value: int) -> None:
    head = bytearray(prefix)
    head[pos % len(head)] = value  # one byte off a passing prefix: the screen must still be necessary
    check(bytes(head) + rest)


def test_real_tunnel_payloads_pass_the_screen() -> None:
    inner = (
        bytes.fromhex("020000000002020000000001")
        + b"\x08\x00"
        + bytes.fromhex("4500001c00000000401100000a0000010a000002")
    )
    vx = struct.pack("!BBHI", 0x08, 0, 0, 5 << 8) + inner
    assert screened(vx)
    gen = struct.pack("!BBHI", 0, 0, 0x6558, 5 << 8) + inner
    assert screened(gen)
    assert not screened(b"\x45\x00\x00\x1c")  # an IPv4 header is no UDP tunnel header


def test_every_registered_heuristic_has_a_screen() -> None:
    """Not required for correctness (unscreened heuristics are called), but for speed."""
    assert all(p in heuristics.SCREENS for p in reg.HEURISTICS.values())
