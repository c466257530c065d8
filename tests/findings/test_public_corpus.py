"""No finding of severity warning or above on the clean public captures, except where the capture
really has the problem (each listed with the reason)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require
from tests.findings.helpers import findings_of

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "public"

#: (capture, finding id) pairs of severity warning/error that are true: why each is real.
REAL: dict[tuple[str, str], str] = {
    ("tcpdump__geneve.pcap", "mtu.mss-exceeds-overlay"): (
        "SYNs announce MSS 1460 inside Geneve with 8 bytes of options: 1558-byte outer packets, and no outer "
        "packet above 1500 shows a jumbo underlay"
    ),
    ("tcpdump__geneve.pcap", "overlay.return-vni-mismatch"): (
        "30.0.0.1 → 30.0.0.2 (one /24) travels in VNI 10, the replies in VNI 11"
    ),
    ("zeek__erspan.pcap", "mtu.outer-fragmentation"): "the mirror session's packets are IP-fragmented (frames 153…)",
    ("zeek__tunnels__gre-sample.pcap", "mtu.mss-exceeds-overlay"): "MSS 1460 inside GRE: 1524-byte outer packets",
    ("zeek__tunnels_gtp__gtp1_gn_normal_incl_fragmentation.pcap", "mtu.mss-exceeds-overlay"): (
        "MSS 1460/1440 inside GTP-U; the capture shows the consequence: outer fragmentation"
    ),
    ("zeek__tunnels_gtp__gtp1_gn_normal_incl_fragmentation.pcap", "mtu.outer-fragmentation"): (
        "40 GTP-U packets fragmented on the underlay (what the capture was made to show)"
    ),
    ("zeek__tunnels_gtp__gtp2_different_udp_port.pcap", "mtu.mss-exceeds-overlay"): "MSS 1460/1440 inside GTP-U",
    ("zeek__tunnels_gtp__gtp2_different_udp_port.pcap", "mtu.outer-fragmentation"): "42 GTP-U packets fragmented",
    (
        "zeek__tunnels_gtp__gtp_ext_header.pcap",
        "mtu.outer-fragmentation",
    ): "one GTP-U packet larger than 1500 bytes split in two fragments",
}


def _captures() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.suffix in (".pcap", ".pcapng"))


def test_corpus_present() -> None:
    require(bool(_captures()), f"public corpus not found at {CORPUS}")


@pytest.mark.parametrize("path", _captures(), ids=lambda p: p.name)
def test_no_false_warnings(path: Path) -> None:
    found = findings_of(path)
    serious = {(path.name, f.id) for f in found if f.severity != "info"}
    expected = {k for k in REAL if k[0] == path.name}
    assert serious == expected, [f.title for f in found if f.severity != "info"]
