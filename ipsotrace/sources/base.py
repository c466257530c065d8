"""What a packet source yields, and how it reports damage."""

from __future__ import annotations

from dataclasses import dataclass


class CaptureError(Exception):
    """The input is not a capture we can read at all (bad magic, unreadable file)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame as read from a source: bytes plus capture metadata."""

    number: int  # 1-based, across the whole source
    ts_ns: int
    caplen: int
    wirelen: int
    linktype: int
    data: bytes
    #: pcapng interface, numbered on across sections (the key of ``SourceStatus.linktypes``)
    interface: int = 0


@dataclass(slots=True)
class SourceStatus:
    """How reading went; ``damage`` is set when the file ended badly (we stopped there)."""

    path: str
    format: str = ""
    frames: int = 0
    bytes_read: int = 0
    damage: str | None = None
    damage_offset: int | None = None
    linktypes: dict[int, int] | None = None  # interface id → link type

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "format": self.format,
            "frames": self.frames,
            "damage": self.damage,
            "damage_offset": self.damage_offset,
        }
