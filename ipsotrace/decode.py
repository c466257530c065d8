"""Source → dissect: the one loop that turns frames of a source into packets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Packet
from ipsotrace.sources.base import Frame


def decode(frames: Iterable[Frame], cfg: DissectConfig | None = None) -> Iterator[Packet]:
    cfg = cfg or DissectConfig()
    for fr in frames:
        yield dissect_frame(
            fr.data,
            fr.linktype,
            cfg,
            frame=fr.number,
            ts_ns=fr.ts_ns,
            wirelen=fr.wirelen,
            interface=fr.interface,
        )
