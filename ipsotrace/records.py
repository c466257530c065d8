"""Core records shared by sources, dissectors, correlation and sinks.

Everything here is plain data: no I/O, no terminal, no store.  Sinks and the
TUI consume these records; nothing in the core imports them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Version of the JSON emitted by ``ipsotrace dissect --json`` (docs/dissect-schema.md).
DISSECT_SCHEMA = "ipsotrace.dissect/1"

FieldValue = Any  # int | str | bool | float | list | dict | None: JSON-representable


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something wrong with one packet: ``kind`` is ``<proto>.<what>`` (``vxlan.truncated``)."""

    kind: str
    layer: str
    offset: int
    detail: str = ""

    def to_json(self) -> dict[str, FieldValue]:
        return {"kind": self.kind, "layer": self.layer, "offset": self.offset, "detail": self.detail}


#: Keys of a layer's JSON object that belong to the layer itself; dissector fields never use them.
RESERVED_KEYS = frozenset({"proto", "offset", "length", "parent", "depth", "quoted", "reassembled"})


@dataclass(slots=True)
class Layer:
    """One header of a decoded packet.

    ``parent`` is the index of the enclosing layer in the packet's stack (None for the
    link layer); ``depth`` counts the tunnels (encapsulations) above this layer, so the
    outer headers are depth 0, the headers carried by the first tunnel depth 1, etc.
    ``quoted`` marks headers that sit inside an ICMP/ICMPv6 error quote.
    ``reassembled`` marks headers decoded from a reassembled IP datagram: their ``offset``
    indexes that datagram laid out after this frame's headers (the frame's bytes up to the
    end of the fragmented IP header, then the reassembled payload), not the frame itself.
    """

    proto: str
    offset: int
    length: int
    fields: dict[str, FieldValue]
    parent: int | None = None
    depth: int = 0
    quoted: bool = False
    reassembled: bool = False

    def get(self, name: str, default: FieldValue = None) -> FieldValue:
        return self.fields.get(name, default)

    def to_json(self) -> dict[str, FieldValue]:
        out: dict[str, FieldValue] = {
            "proto": self.proto,
            "offset": self.offset,
            "length": self.length,
            "parent": self.parent,
            "depth": self.depth,
        }
        if self.quoted:
            out["quoted"] = True
        if self.reassembled:
            out["reassembled"] = True
        out.update(self.fields)
        return out


@dataclass(slots=True)
class Packet:
    """A decoded frame: its layer stack, outermost first, and its anomalies."""

    frame: int
    ts_ns: int
    caplen: int
    wirelen: int
    linktype: int
    layers: list[Layer] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    interface: int = 0

    @property
    def truncated(self) -> bool:
        """True when the capture kept fewer bytes than were on the wire (snaplen)."""
        return self.caplen < self.wirelen

    def find(self, proto: str, *, quoted: bool = False) -> list[Layer]:
        return [ly for ly in self.layers if ly.proto == proto and ly.quoted == quoted]

    def to_json(self) -> dict[str, FieldValue]:
        out: dict[str, FieldValue] = {
            "frame": self.frame,
            "ts": self.ts_ns / 1e9,
            "caplen": self.caplen,
            "len": self.wirelen,
            "layers": [ly.to_json() for ly in self.layers],
        }
        if self.truncated:
            out["truncated"] = True
        if self.anomalies:
            out["anomalies"] = [a.to_json() for a in self.anomalies]
        return out
