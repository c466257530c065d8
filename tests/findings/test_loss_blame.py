"""Loss is blamed on the outer path that first carried the lost data, as Linux really recovers.

The shape is the one captured in the lab (tests/lab/test_lab_findings.py) with kernel VXLAN and a
PMTU black hole on one ECMP path: an initial window of ten full-size segments (and a tail-loss probe)
leaves on port A and vanishes; the retransmission timeout re-draws the port (Linux net.core.txrehash),
the first resend leaves on port B and vanishes too, the next re-draw lands on port C, and once it is
acknowledged Linux resends the rest of the window *interleaved with new data* on C.  Blaming "the path
of the most recent new data" put those resends on C, the healthy path, and the black hole was missed.
"""

from __future__ import annotations

import random

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.findings import Collector, Facts, evaluate
from ipsotrace.records import Packet
from tests.findings.helpers import analyse, generator

GEN = generator()
A, B = GEN.HOST_A, GEN.HOST_B
MSS = 1398  # full-size segment with timestamps: 1450-byte inner packets
LOST_PORT, REDRAW_LOST, RESCUE = 50201, 50202, 50203


def _recovery() -> object:
    b = GEN.Builder()
    cport, seq = 40700, 1000
    b.add(GEN.vx(GEN.tcp(b, A, B, cport, 5001, seq - 1, flags="S", mss=1410, ack=0), LOST_PORT))
    b.add(GEN.vx(GEN.tcp(b, B, A, 5001, cport, 7000, flags="SA", mss=1410, ack=seq), 51000, **GEN.REV))
    b.add(GEN.vx(GEN.tcp(b, A, B, cport, 5001, seq, 6, "PA", ack=7001), LOST_PORT))  # small request passes
    b.add(GEN.vx(GEN.tcp(b, B, A, 5001, cport, 7001, 3, "PA", ack=seq + 6), 51000, **GEN.REV))
    seq += 6
    window = [seq + i * MSS for i in range(11)]  # ten segments and the tail-loss probe's new one
    for s in window:
        b.add(GEN.vx(GEN.tcp(b, A, B, cport, 5001, s, MSS, ack=7004), LOST_PORT))
    b.add(GEN.vx(GEN.tcp(b, A, B, cport, 5001, window[0], MSS, ack=7004), REDRAW_LOST), gap=0.2)  # RTO 1
    b.add(GEN.vx(GEN.tcp(b, A, B, cport, 5001, window[0], MSS, ack=7004), RESCUE), gap=0.4)  # RTO 2: gets through
    nxt = window[-1] + MSS
    for s in window[1:]:  # the rest of the window, each resend followed by new data
        b.add(GEN.vx(GEN.tcp(b, A, B, cport, 5001, s, MSS, ack=7004), RESCUE))
        b.add(GEN.vx(GEN.tcp(b, A, B, cport, 5001, nxt, MSS, ack=7004), RESCUE))
        nxt += MSS
    for _ in range(20):
        b.add(GEN.vx(GEN.tcp(b, A, B, cport, 5001, nxt, MSS, ack=7004), RESCUE))
        nxt += MSS
    return b


def _packets(b: object) -> list[Packet]:
    cfg = DissectConfig()
    return [
        dissect_frame(bytes(p), 1, cfg, frame=i + 1, ts_ns=round(p.time * 1e6) * 1000)
        for i, p in enumerate(b.packets)  # type: ignore[attr-defined]
    ]


def _facts(pkts: list[Packet]) -> Facts:
    c = Collector()
    c.begin_source("t.pcap")
    for p in pkts:
        c.add(p)
    return c.result


def test_resends_mixed_with_new_data_are_blamed_on_the_first_port() -> None:
    pkts = _packets(_recovery())
    agg, facts = analyse(pkts, "t.pcap")
    (ff,) = [f for fk, f in facts.finalized_copy().flows.items() if fk[6] == 40700]
    by_port = {pk[3]: pf for pk, pf in ff.paths.items()}
    assert sum(by_port[LOST_PORT].retx_bins) == 12  # the whole window, wherever it was resent from
    assert sum(by_port[RESCUE].retx_bins) == sum(by_port[REDRAW_LOST].retx_bins) == 0
    assert (by_port[REDRAW_LOST].retx_here, by_port[RESCUE].retx_here) == (1, 11)
    (bh,) = [f for f in evaluate(agg, facts) if f.id == "mtu.pmtu-black-hole"]
    assert [p[3] for p in bh.evidence.paths] == [LOST_PORT]
    assert bh.evidence.facts["healthy_paths"] == [RESCUE] and bh.evidence.facts["retransmissions"] == 12


def test_split_anywhere_in_the_recovery_merges_exactly() -> None:
    pkts = _packets(_recovery())
    whole = _facts(pkts).finalized_copy()
    for k in range(len(pkts) + 1):
        merged = _facts(pkts[:k]).merge(_facts(pkts[k:])).finalized_copy()
        assert merged == whole, f"split at {k}"
    for a in range(0, len(pkts), 3):
        for b in range(a, len(pkts), 7):
            merged = _facts(pkts[:a]).merge(_facts(pkts[a:b])).merge(_facts(pkts[b:])).finalized_copy()
            assert merged == whole, (a, b)


def _random_stream(rng: random.Random) -> object:
    """One flow with random loss and resends, some after a port re-draw and mixed with new data."""
    b = GEN.Builder()
    port, seq, lost = 50300, 1000, []
    for _ in range(rng.randrange(30, 90)):
        r = rng.random()
        if r < 0.08:
            port += 1  # a re-draw
        if lost and r < 0.35:
            s = lost.pop(rng.randrange(len(lost)))
            b.add(GEN.vx(GEN.tcp(b, A, B, 40800, 5001, s, MSS, ack=1), port))
            continue
        if rng.random() < 0.3:
            lost.append(seq)
        b.add(GEN.vx(GEN.tcp(b, A, B, 40800, 5001, seq, MSS, ack=1), port))
        seq += MSS
    return b


def test_random_streams_merge_exactly_or_say_so() -> None:
    rng = random.Random(7)
    splits = flagged = 0
    for _ in range(25):
        pkts = _packets(_random_stream(rng))
        whole = _facts(pkts).finalized_copy()
        for k in range(0, len(pkts) + 1, 2):
            merged = _facts(pkts[:k]).merge(_facts(pkts[k:])).finalized_copy()
            splits += 1
            if merged != whole:
                (ff,) = merged.flows.values()
                assert ff.tcp is not None and ff.tcp.inexact > 0, f"split at {k} differs and is not flagged"
                flagged += 1
    assert flagged <= splits // 20, (flagged, splits)  # the exception stays an exception


def test_inexact_merges_are_reported(capsys: object) -> None:
    """analyze --jobs warns when Facts.merge could not place some loss exactly (and stays quiet otherwise)."""
    from ipsotrace.commands.analyze import report_inexact_merge

    b = GEN.Builder()
    for k in range(40):  # the first part: new data
        b.add(GEN.vx(GEN.tcp(b, A, B, 40800, 5001, 1000 + k * MSS, MSS, ack=1), 50300))
    for k in range(30):  # the second part starts by resending old data: its own view of the flow differs
        b.add(GEN.vx(GEN.tcp(b, A, B, 40800, 5001, 1000 + k * MSS, MSS, ack=1), 50301))
    pkts = _packets(b)
    assert report_inexact_merge(_facts(pkts)) == 0
    assert report_inexact_merge(_facts(pkts[:20]).merge(_facts(pkts[20:]))) == 0
    merged = _facts(pkts[:40]).merge(_facts(pkts[40:]))
    (ff,) = merged.flows.values()
    assert ff.tcp is not None and ff.tcp.inexact > 0
    assert report_inexact_merge(merged) == 1
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err.count("warning") == 1 and "1 TCP flow(s) were reordered across the parts of --jobs" in err
