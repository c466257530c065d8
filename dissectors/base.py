"""What every dissector returns, and the small helpers they share.

A dissector is a function ``dissect(buf, off, end, ctx) -> Decoded | Anomaly``:
it reads the header at ``buf[off:end]`` and never raises on bad input.  It says
how the next layer is recognised (``Next``) but never which module handles it:
that binding lives in :mod:`ipsotrace.dissectors.registry` only.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ipsotrace.records import Anomaly, FieldValue


@dataclass(frozen=True, slots=True)
class Next:
    """How the layer after this one is recognised.

    ``table`` names a binding table of the registry (``ethertype``, ``ipproto``,
    ``udp``, ``gre``, ``ppp``, ``nsh``, ``proto``…) and ``key`` the value looked up in it.
    The ``proto`` table means "this protocol name, no look-up" (VXLAN → ``eth``).
    """

    table: str
    key: int | str | tuple[int, int]


@dataclass(slots=True)
class Decoded:
    """A header that was read successfully.

    ``length`` is the number of header bytes; the next layer starts at
    ``off + length``.  ``end`` narrows the payload (IPv4 total length trims the
    Ethernet trailer); None keeps the enclosing limit.
    """

    fields: dict[str, FieldValue]
    length: int
    next: Next | None = None
    end: int | None = None
    anomalies: list[Anomaly] = field(default_factory=list)
    #: what follows is an encapsulated packet (tunnel header, IP-in-IP, bottom MPLS label)
    encap: bool = False
    #: set by ICMP errors: the payload is a quoted packet, dissected as ``next``
    quote: bool = False
    #: the payload is incomplete by design (first IP fragment): short headers after it are expected
    partial: bool = False


class Context(Protocol):
    """What a dissector may know about the packet being decoded."""

    @property
    def snaplen_cut(self) -> bool: ...

    @property
    def partial(self) -> bool:
        """True inside an ICMP quote or a first fragment, where payloads are cut by design."""
        ...


Dissector = Callable[[bytes, int, int, Context], "Decoded | Anomaly"]


def truncated(proto: str, off: int, need: int, have: int) -> Anomaly:
    return Anomaly(f"{proto}.truncated", proto, off, f"header needs {need} bytes, {have} captured")


def malformed(proto: str, off: int, detail: str) -> Anomaly:
    return Anomaly(f"{proto}.malformed", proto, off, detail)


@dataclass(frozen=True, slots=True)
class Header:
    """A fixed header declared as data: names and one ``struct`` format (network order)."""

    proto: str
    fmt: str
    names: Sequence[str]
    size: int = field(init=False)
    _struct: struct.Struct = field(init=False, repr=False)

    def __post_init__(self) -> None:
        st = struct.Struct("!" + self.fmt)
        object.__setattr__(self, "_struct", st)
        object.__setattr__(self, "size", st.size)

    def unpack(self, buf: bytes, off: int, end: int) -> tuple[int, ...] | Anomaly:
        if end - off < self.size:
            return truncated(self.proto, off, self.size, max(0, end - off))
        return self._struct.unpack_from(buf, off)

    def fields(self, values: tuple[int, ...]) -> dict[str, FieldValue]:
        return {n: v for n, v in zip(self.names, values, strict=True) if not n.startswith("_")}

    def pack(self, *values: int) -> bytes:
        return self._struct.pack(*values)


def inet_sum(buf: bytes, start: int, end: int) -> int:
    """The folded 16-bit ones' complement sum of ``buf[start:end]`` (RFC 1071): 0xFFFF when a
    checksum over these bytes, checksum field included, verifies."""
    data = buf[start:end]
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def ipv4_str(buf: bytes, off: int) -> str:
    return socket.inet_ntop(socket.AF_INET, buf[off : off + 4])


def ipv6_str(buf: bytes, off: int) -> str:
    return socket.inet_ntop(socket.AF_INET6, buf[off : off + 16])


def mac_str(buf: bytes, off: int) -> str:
    return buf[off : off + 6].hex(":")
