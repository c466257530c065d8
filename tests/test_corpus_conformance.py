"""Decoded addresses, ports and tunnel IDs equal tshark's on every public corpus capture.

Where tshark decodes differently on purpose or is wrong, ``EXPECTED`` lists the
frames and the reason; any other difference fails.  No capture may raise.
"""

from __future__ import annotations

import pytest

from tests.conftest import require
from tests.corpus import CORPUS, compare_file, truth_files

# file name → {frame number or "*" (every frame that differs): reason}
EXPECTED: dict[str, dict[int | str, str]] = {
    # Linux BIG TCP (IPv6 payload length 0, no hop-by-hop jumbo option since kernel 6.3) over VXLAN:
    # tshark 4.0 takes the zero length literally, finds no room for UDP and marks the frame
    # malformed; we bound the payload by the frame as tcpdump does and decode UDP/VXLAN/inner IPv6.
    "tcpdump__bigtcp-ipv6-vxlan-ipv6.pcap": {
        1: "BIG TCP super-frame (IPv6 payload length 0): tshark stops as malformed, we decode the VXLAN inside"
    },
    # GTP-U over outer IPv4 fragments (Zeek's GTP captures): same per-frame vs reassembly difference.
    "zeek__tunnels_gtp__gtp1_gn_normal_incl_fragmentation.pcap": {
        **{
            fr: "outer IPv4 first fragment: UDP/GTP-U/inner IP decoded here, tshark waits for reassembly"
            for fr in (4, 10, 12, 14, 16, 18, 20, 22, 24, 26, 30, 32, 34, 36, 38, 42, 44, 46, 48, 50, 52, 56, 57, 59, 61, 63, 66, 68, 70, 73, 75, 77, 80, 81, 83, 86, 88, 90, 92, 93)
        },
        **{
            fr: "outer IPv4 last fragment: tshark shows the reassembled GTP-U packet, we decode per frame"
            for fr in (5, 11, 13, 15, 17, 19, 21, 23, 25, 27, 31, 33, 35, 37, 39, 43, 45, 47, 49, 51, 53, 58, 60, 62, 64, 67, 69, 71, 74, 76, 78, 82, 84, 87, 89, 94)
        },
    },
    "zeek__tunnels_gtp__gtp2_different_udp_port.pcap": {
        **{
            fr: "outer IPv4 first fragment: UDP/GTP-U/inner IP decoded here, tshark waits for reassembly"
            for fr in (7, 10, 12, 14, 18, 20, 22, 24, 26, 30, 32, 34, 36, 38, 40, 46, 48, 50, 52, 54, 56, 64, 66, 68, 70, 72, 74, 76, 78, 80, 87, 89, 91, 93, 95, 97, 99, 101, 103, 105, 107, 109)
        },
        **{
            fr: "outer IPv4 last fragment: tshark shows the reassembled GTP-U packet, we decode per frame"
            for fr in (8, 11, 13, 15, 19, 21, 23, 25, 27, 31, 33, 35, 37, 39, 41, 47, 49, 51, 53, 55, 57, 65, 67, 69, 71, 73, 75, 77, 79, 81, 88, 90, 92, 94, 96, 98, 100, 102, 104, 106, 108, 110)
        },
    },
    "zeek__tunnels_gtp__gtp_ext_header.pcap": {
        1: "outer IPv4 first fragment: UDP 9000->2152, GTP-U (PDU session container) and inner IPv4 decoded"
        " here, tshark waits for reassembly",
        2: "outer IPv4 last fragment: tshark shows the reassembled GTP-U packet, we decode per frame",
    },
    # GRE (TEB) packets fragmented in the outer IPv4: tshark reassembles and shows the inner
    # layers on the last fragment only; we decode per frame, so the inner headers appear on
    # the first fragment (whose payload holds them) and not on the last.
    "zeek__erspan.pcap": {
        **{
            fr: "outer IPv4 first fragment: inner headers decoded here, tshark waits for reassembly"
            for fr in (153, 157, 178, 182, 187, 191, 199, 216, 220, 226, 243, 251, 255, 265, 279, 283)
        },
        **{
            fr: "outer IPv4 last fragment: tshark shows the reassembled inner packet, we decode per frame"
            for fr in (155, 160, 180, 183, 189, 194, 201, 218, 223, 231, 244, 252, 260, 269, 281, 284)
        },
    },
    "suricata-verify__defrag_bug-6942-6887-defrag-eth-ip-gre-ppp-ip-udp-data__eth-ip-gre-ppp-max-ip-packet.pcap": {
        1: "inner IPv4 (in GRE/PPP) first fragment: we decode its UDP header, tshark waits for reassembly",
        1024: "inner IPv4 fragment completing reassembly: tshark shows UDP from the reassembled packet",
    },
    "zeek__tunnels__gre-aruba-amsdu.pcap": {
        1: "A-MSDU with 2 subframes: the layer stack is one chain, so only the first subframe's IPv4 is"
        " decoded (the amsdu layer counts 2 subframes); tshark lists both",
    },
}


def _ids() -> list[str]:
    return [p.name[: -len(".truth.json")] for p in truth_files()]


def test_corpus_present() -> None:
    require(CORPUS.is_dir() and len(truth_files()) >= 40, f"public corpus not found at {CORPUS}")


@pytest.mark.parametrize("name", _ids())
def test_matches_tshark(name: str) -> None:
    res = compare_file(CORPUS / f"{name}.truth.json")
    expected = EXPECTED.get(name, {})
    unexpected = {fr: d for fr, d in res.diffs.items() if fr not in expected and "*" not in expected}
    shown = "\n".join(
        f"frame {fr}: {k}: tshark={want} ours={got}"
        for fr, d in list(unexpected.items())[:5]
        for k, (want, got) in d.items()
    )
    assert not unexpected, f"{len(unexpected)} of {res.frames} frames differ from tshark:\n{shown}"
    stale = [fr for fr in expected if fr != "*" and fr not in res.diffs]
    assert not stale, f"frames listed as expected differences now match tshark: {stale}"
