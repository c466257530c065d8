"""``analyze`` on the shipped captures and the scenario captures agrees with tshark run live.

tshark (``-T fields``, the same fields as the corpus truth files) is run on each file
and its output walked exactly as tests/correlate/test_corpus_counts.py walks the truth
files: packets per tunnel ID and per outer address pair must equal ours.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CAPTURES, require
from tests.corpus import COMPARED
from tests.correlate import scenarios
from tests.correlate.helpers import aggregate, flows_by_key, tunnels_by_key
from tests.correlate.invariants import check_invariants
from tests.correlate.test_corpus_counts import our_counts, truth_counts

SHIPPED = sorted(p for p in CAPTURES.glob("*.pcap*") if not p.name.endswith(".json"))


def tshark_truth(tshark: str, path: Path) -> dict[str, Any]:
    fields = ["frame.number", "frame.protocols", *COMPARED]
    cmd = [tshark, "-r", str(path), "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    cmd += ["-E", "occurrence=a", "-E", "aggregator=,", "-E", "separator=/t"]
    # a damaged capture makes tshark exit 2 after printing the frames before the damage
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode in (0, 2), run.stderr
    out = run.stdout
    packets = []
    for line in out.splitlines():
        cols = line.split("\t") + [""] * len(fields)
        pkt: dict[str, Any] = {"frame": int(cols[0]), "protocols": cols[1].split(":") if cols[1] else []}
        for f, v in zip(fields[2:], cols[2 : len(fields)], strict=True):
            pkt[f] = v.split(",") if v else []
        packets.append(pkt)
    return {"packet_count": len(packets), "packets": packets}


def _agree(tshark: str, path: Path) -> dict[str, Any]:
    doc = aggregate(path).to_json()
    check_invariants(doc)
    truth = tshark_truth(tshark, path)
    assert doc["packets"] == truth["packet_count"]
    want_ids, want_pairs = truth_counts(truth)
    got_ids, got_pairs = our_counts(doc)
    assert got_ids == want_ids
    assert got_pairs == want_pairs
    return doc


@pytest.mark.parametrize("name", sorted(scenarios.SCENARIOS))
def test_scenario_counts_match_tshark(name: str, tshark: str, tmp_path: Path) -> None:
    doc = _agree(tshark, scenarios.write(name, tmp_path))
    assert doc["tunnels"], "every scenario has at least one tunnel"


def test_mixed_overlays_capture_is_shipped() -> None:
    require(
        (CAPTURES / "mixed-overlays.pcap").is_file(),
        "captures/mixed-overlays.pcap not generated (captures/make_captures.py)",
    )


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_capture_counts_match_tshark(path: Path, tshark: str) -> None:
    _agree(tshark, path)


def test_mixed_overlays_expected_output() -> None:
    """What captures/README.md says the demo capture holds, frame by frame."""
    path = CAPTURES / "mixed-overlays.pcap"
    require(path.is_file(), "captures/mixed-overlays.pcap not generated (captures/make_captures.py)")
    doc = aggregate(path).to_json()
    assert doc["packets"] == 23 and doc["summary"]["untunnelled_packets"] == 1  # frame 11, the ICMP error
    assert {(t["encap"], t["tunnel_id"]) for t in doc["tunnels"]} == {
        ("vxlan", 100),
        ("vxlan", 200),
        ("vxlan", 300),
        ("vxlan", 400),
        ("geneve", 500),
        ("gre", 0x00012345),
        ("nvgre", 0xABC),  # the GRE key 0x000abc11 is VSID 0xabc and FlowID 0x11
        ("ipip", None),
        ("gtpu", 0x1A2B3C4D),
        ("mpls", 1000),
        ("erspan", 42),
    }
    flows = flows_by_key(doc)
    tenant = ("ipv4", "203.0.113.10", "203.0.113.20", 6, 40000, 80)
    a, b = flows[("vxlan", 100, *tenant)], flows[("vxlan", 200, *tenant)]  # same 5-tuple, two tenants
    assert (a["packets"], b["packets"]) == (6, 3)
    # frames 1, 3, 4, 10, 12 on outer port 49200; frame 13 on 51515; frames 12 and 13 resend 1019
    assert [(p["sport"], p["packets"], p["retransmissions"]) for p in a["paths"]] == [(49200, 5, 1), (51515, 1, 1)]
    assert a["tcp"]["retransmissions"] == 2 and a["tcp"]["mss_min"] == 1410
    assert (a["max_size"], a["max_size_df"]) == (1450, 1450)
    (err,) = doc["icmp_errors"]
    assert (err["reporter"], err["kind"], err["mtu"], err["first"]["frame"]) == (
        "198.51.100.6",
        "frag-needed",
        1400,
        11,
    )
    assert err["tunnels"] == [["vxlan", "192.0.2.1", "192.0.2.2", 100]]
    assert err["flows"] == [["vxlan", 100, *tenant]]
    v6 = tunnels_by_key(doc)[("vxlan", "2001:db8:0:1::1", "2001:db8:0:2::2", 400)]
    assert v6["packets"] == 1
