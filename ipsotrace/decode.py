"""Source → dissect → reassemble: the one loop that turns frames of a source into packets."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.reassembly import FragmentStage, Head, Reassembler
from ipsotrace.records import Packet
from ipsotrace.sources.base import Frame


def decode(
    frames: Iterable[Frame],
    cfg: DissectConfig | None = None,
    reassemble: bool = True,
    *,
    reassembler: Reassembler[Head] | None = None,
) -> Iterator[Packet]:
    """Decode frames in capture order.

    With ``reassemble`` (the default, as in tshark) IP fragments are reassembled: a fragment
    that does not complete its datagram is decoded up to its IP layer, the one that does carries
    the reassembled datagram's layers (docs/dissect-schema.md, "Reassembly").  Pass a
    ``reassembler`` to choose its limits and read its statistics and never-completed datagrams
    afterwards; it is flushed when ``frames`` is exhausted (the end of the capture).
    ``reassemble=False`` decodes every frame on its own.
    """
    cfg = cfg or DissectConfig()
    if not reassemble:
        for fr in frames:
            yield dissect_frame(
                fr.data, fr.linktype, cfg, frame=fr.number, ts_ns=fr.ts_ns, wirelen=fr.wirelen, interface=fr.interface
            )
        return
    stage = FragmentStage(reassembler)
    reasm = stage.reassembler
    for fr in frames:
        reasm.expire(fr.ts_ns)
        yield dissect_frame(
            fr.data,
            fr.linktype,
            cfg,
            frame=fr.number,
            ts_ns=fr.ts_ns,
            wirelen=fr.wirelen,
            interface=fr.interface,
            fragments=stage,
        )
    reasm.flush()
