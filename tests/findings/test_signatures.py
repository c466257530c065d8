"""The signatures behave as on-call engineers need: the black hole is told from random loss,
losses are blamed on the first path when Linux re-draws the entropy port, re-drawn flows are not
polarization, monitoring sessions are not asymmetric overlays."""

from __future__ import annotations

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.findings import Finding, evaluate
from tests.findings.helpers import analyse, generator

GEN = generator()
A, B = GEN.HOST_A, GEN.HOST_B


def _run(b: object) -> list[Finding]:
    cfg = DissectConfig()
    pkts = [
        dissect_frame(bytes(p), 1, cfg, frame=i + 1, ts_ns=round(p.time * 1e6) * 1000)
        for i, p in enumerate(b.packets)  # type: ignore[attr-defined]
    ]
    agg, facts = analyse(pkts, "t.pcap")
    return evaluate(agg, facts)


def _ids(found: list[Finding]) -> set[str]:
    return {f.id for f in found}


def _server_stream(b: object, lost: set[int], sizes: list[int], port: int = 50100) -> None:
    """HOST_B → HOST_A segments on one outer port; segment i in ``lost`` is resent right after."""
    seq = 1000
    for i, size in enumerate(sizes):
        pkt = GEN.tcp(b, B, A, 80, 40900, seq, size, ack=1)
        b.add(GEN.vx(pkt, port, **GEN.REV))  # type: ignore[attr-defined]
        if i in lost:
            b.add(GEN.vx(GEN.tcp(b, B, A, 80, 40900, seq, size, ack=1), port, **GEN.REV))  # type: ignore[attr-defined]
        seq += size


def test_random_loss_of_all_sizes_is_not_a_black_hole() -> None:
    b = GEN.Builder()
    sizes = [1460, 120, 1460, 400, 1460, 80] * 10
    _server_stream(b, {1, 3, 5, 7, 13, 21, 33, 41, 47, 55}, sizes)  # small and large alike
    found = _run(b)
    assert "mtu.pmtu-black-hole" not in _ids(found)
    assert "health.retransmissions" in _ids(found)


def test_losing_only_large_segments_is_a_black_hole_even_on_one_path() -> None:
    b = GEN.Builder()
    sizes = [200, 1460, 1460, 1460, 300, 1460]
    _server_stream(b, {1, 2, 3, 5}, sizes)
    (f,) = [f for f in _run(b) if f.id == "mtu.pmtu-black-hole"]
    assert f.evidence.facts["smallest_lost_inner"] == 1500
    assert f.evidence.facts["paths_seen"] == 1 and f.evidence.facts["ptb_seen"] is False
    assert "port 50100" in f.title and "lower the inner MTU to 1450" in f.remedy


def test_black_hole_blames_the_first_path_after_a_redraw() -> None:
    f = next(f for f in _run(GEN.build("mtu.pmtu-black-hole")) if f.id == "mtu.pmtu-black-hole")
    assert [p[3] for p in f.evidence.paths] == [50001]  # the resends left on 50002, the loss was on 50001
    assert 50002 in f.evidence.facts["healthy_paths"]
    assert f.severity == "error" and f.confidence == "high"
    assert "--sport 50001 192.0.2.1" in f.remedy


def test_black_hole_with_ptb_in_the_capture_says_the_limit_was_not_relayed() -> None:
    b = GEN.build("mtu.pmtu-black-hole")
    err = (
        GEN.Ether() / GEN.IP(src=GEN.ROUTER_B, dst=GEN.VTEP2, ttl=254, id=9) / GEN.ICMP(type=3, code=4, nexthopmtu=1400)
    )
    quote = GEN.vx(GEN.tcp(b, B, A, 80, 40003, 801, 1460, ack=221), 50001, **GEN.REV)
    b.add(err / GEN.Raw(bytes(quote[GEN.IP])[:548]))
    found = _run(b)
    (bh,) = [f for f in found if f.id == "mtu.pmtu-black-hole"]
    assert bh.evidence.facts["ptb_seen"] and "not relayed" in bh.detail
    (ptb,) = [f for f in found if f.id == "mtu.ptb-for-tunnel"]
    assert ptb.severity == "error" and ptb.evidence.facts["mtu"] == 1400
    assert "lower the inner MTU to 1350" in ptb.remedy and "1550 on the link behind 198.51.100.6" in ptb.remedy


def test_flows_moved_by_a_redraw_are_not_polarization() -> None:
    b = GEN.Builder()
    for n in range(10):  # each flow starts on its own port, then all re-draw onto 50999 after a timeout
        b.add(GEN.vx(GEN.udp(b, A, B, 30000 + n, 5000, 100), 50000 + n))
    for n in range(10):
        b.add(GEN.vx(GEN.udp(b, A, B, 30000 + n, 5000, 100), 50999))
    assert not {"ecmp.polarization", "ecmp.constant-entropy-port"} & _ids(_run(b))


def test_a_mirror_session_is_not_an_asymmetric_overlay() -> None:
    """Both directions of a conversation inside VTEP1 → VTEP2 (VXLAN traffic mirroring)."""
    b = GEN.Builder()
    for i in range(6):
        b.add(GEN.vx(GEN.tcp(b, A, B, 40950, 80, 100 + i, 1460), 51000 + i))
        b.add(GEN.vx(GEN.tcp(b, B, A, 80, 40950, 900 + i, 1460), 51100 + i))
    found = _ids(_run(b))
    assert not {i for i in found if i.startswith(("overlay.", "mtu.mss", "ecmp."))}
