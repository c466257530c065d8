"""``ipsotrace analyze``: JSON contract, CSV, the report, several files, damage and usage errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw
from scapy.utils import wrpcap
from typer.testing import CliRunner

from ipsotrace.cli import app
from ipsotrace.correlate import ANALYZE_SCHEMA
from tests.correlate import scenarios

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, ["analyze", *args])
    return res.exit_code, res.stdout, res.stderr


def test_json_document_contract(tmp_path: Path) -> None:
    a = scenarios.write("overlapping_tenants", tmp_path)
    b = scenarios.write("frag_needed", tmp_path)
    code, out, _ = _run(str(a), str(b), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == ANALYZE_SCHEMA
    for key in (
        "sources",
        "packets",
        "time",
        "summary",
        "tunnels",
        "flows",
        "icmp_errors",
        "anomalies",
        "evicted_flows",
    ):
        assert key in doc
    assert doc["packets"] == 7
    assert [s["path"] for s in doc["sources"]] == [str(a), str(b)]
    assert [s["frames"] for s in doc["sources"]] == [5, 2]
    # the same tunnel and flow seen in both files are one tunnel and one flow
    t100 = [t for t in doc["tunnels"] if t["tunnel_id"] == 100]
    assert len(t100) == 1 and t100[0]["packets"] == 4
    assert len(doc["flows"]) == 2
    (err,) = doc["icmp_errors"]
    assert err["first"]["source"] == str(b) and err["flows"] == [
        ["vxlan", 100, "ipv4", "10.0.0.1", "10.0.0.2", 6, 40000, 80]
    ]
    assert doc["time"]["span_s"] == 0.004


def test_same_file_twice_doubles_counts_not_entries(tmp_path: Path) -> None:
    a = scenarios.write("two_paths", tmp_path)
    once = json.loads(_run(str(a), "--json")[1])
    twice = json.loads(_run(str(a), str(a), "--json")[1])
    assert len(twice["tunnels"]) == len(once["tunnels"]) == 1
    assert twice["tunnels"][0]["packets"] == 2 * once["tunnels"][0]["packets"]
    assert twice["tunnels"][0]["entropy_ports"] == once["tunnels"][0]["entropy_ports"] == 2
    assert len(twice["flows"]) == 1 and twice["flows"][0]["packets"] == 10


def test_csv_matches_json(tmp_path: Path) -> None:
    cap = scenarios.write("nested", tmp_path)
    out_dir = tmp_path / "csv"
    code, out, _ = _run(str(cap), "--json", "--csv", str(out_dir))
    assert code == 0
    doc = json.loads(out)
    with (out_dir / "tunnels.csv").open() as fh:
        tunnels = list(csv.DictReader(fh))
    with (out_dir / "flows.csv").open() as fh:
        flows = list(csv.DictReader(fh))
    assert [(r["encap"], r["src"], r["tunnel_id"], r["packets"]) for r in tunnels] == [
        (t["encap"], t["src"], "" if t["tunnel_id"] is None else str(t["tunnel_id"]), str(t["packets"]))
        for t in doc["tunnels"]
    ]
    (flow,) = flows
    assert (flow["encap"], flow["tunnel_id"], flow["sport"], flow["dport"], flow["packets"]) == (
        "vxlan",
        "300",
        "5000",
        "53",
        "3",
    )
    assert flow["outer_paths"] == "192.0.2.1>192.0.2.2:49200>4789=2;192.0.2.1>192.0.2.2:49201>4789=1"
    assert tunnels[0]["ttl"] == "60:3"
    assert {r["schema"] for r in tunnels + flows} == {doc["schema"]}


def test_report_for_people(tmp_path: Path) -> None:
    caps = [str(scenarios.write(n, tmp_path)) for n in ("overlapping_tenants", "frag_needed", "plain_and_odd")]
    code, out, _ = _run(*caps)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("9 packets")
    assert "3 tunnels" in lines[0] and "tenants (vxlan 100, vxlan 200, vxlan 500)" in lines[0]
    assert "Tunnels (by bytes)" in out and "192.0.2.1 → 192.0.2.2" in out
    assert "inner flows (by bytes)" in out and "10.0.0.1:40000 → 10.0.0.2:80 tcp" in out
    assert "192.0.2.1→192.0.2.2 49152>4789: 4" in out
    assert "ICMP errors" in out and "frag-needed" in out and "1400" in out
    assert "Anomalies by kind" in out and "vxlan.i-flag-unset" in out
    # tables come in the documented order
    order = [out.index(s) for s in ("Tunnels (by bytes)", "Top 3 of 3 inner flows", "ICMP errors", "Anomalies by kind")]
    assert order == sorted(order)


def test_flow_cap_is_reported(tmp_path: Path) -> None:
    cap = scenarios.write("overlapping_tenants", tmp_path)
    code, out, _ = _run(str(cap), "--max-flows", "1")
    assert code == 0
    # VNI 100 and 200 alternate, so with room for one flow each packet evicts the other's flow
    assert "flow cap 1 reached: 4 flows evicted (4 packets" in out
    doc = json.loads(_run(str(cap), "--max-flows", "1", "--json")[1])
    assert doc["evicted_flows"]["flows"] == 4 and len(doc["flows"]) == 1
    assert doc["flows"][0]["tunnel_id"] == 100 and doc["flows"][0]["packets"] == 1


def test_damaged_file_is_analysed_up_to_the_damage(tmp_path: Path) -> None:
    good = scenarios.write("two_paths", tmp_path)
    cut = tmp_path / "cut.pcap"
    data = good.read_bytes()
    cut.write_bytes(data[: len(data) - 30])
    code, out, err = _run(str(cut), "--json")
    assert code == 3
    doc = json.loads(out)
    assert doc["packets"] == 4
    (src,) = doc["sources"]
    assert src["damage"] and src["frames"] == 4
    assert "warning" in err
    code, out, _ = _run(str(cut))
    assert code == 3 and "warning: " in out and "analysed the 4 frames before it" in out


def test_usage_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    assert _run(str(junk))[0] == 2
    assert _run(str(tmp_path / "missing.pcap"))[0] == 2
    assert _run(str(scenarios.write("nested", tmp_path)), "--max-flows", "0")[0] == 2


def test_port_option_binds_vxlan(tmp_path: Path) -> None:
    pkt = (
        Ether(src=scenarios.MAC_V1, dst=scenarios.MAC_R)
        / IP(src=scenarios.VTEP1, dst=scenarios.VTEP2, id=1)
        / UDP(sport=40000, dport=9999)
        / VXLAN(flags=0x08, vni=77)
        / Ether(src=scenarios.MAC_A, dst=scenarios.MAC_B)
        / IP(src="10.9.0.1", dst="10.9.0.2", id=2)
        / UDP(sport=1, dport=2)
        / Raw(b"z" * 8)
    )
    pkt.time = scenarios.T0
    cap = tmp_path / "port9999.pcap"
    wrpcap(str(cap), [pkt])
    plain = json.loads(_run(str(cap), "--json", "--no-heuristics")[1])
    assert plain["tunnels"] == [] and plain["summary"]["untunnelled_packets"] == 1
    bound = json.loads(_run(str(cap), "--json", "--no-heuristics", "--port", "vxlan=9999")[1])
    assert [(t["encap"], t["tunnel_id"]) for t in bound["tunnels"]] == [("vxlan", 77)]


def test_tunnel_cap_is_reported(tmp_path: Path) -> None:
    cap = scenarios.write("overlapping_tenants", tmp_path)
    code, out, _ = _run(str(cap), "--max-tunnels", "1")
    assert code == 0
    # VNI 100 and 200 alternate: with room for one tunnel each new one evicts the other
    assert "tunnel cap 1 reached: 4 tunnel sessions evicted (4 packets" in out
    doc = json.loads(_run(str(cap), "--max-tunnels", "1", "--json")[1])
    assert doc["max_tunnels"] == 1 and doc["evicted_tunnels"]["tunnels"] == 4
    assert [(t["tunnel_id"], t["packets"]) for t in doc["tunnels"]] == [(100, 1)]
    assert len(doc["flows"]) == 2  # flows have their own cap
    assert _run(str(cap), "--max-tunnels", "0")[0] == 2


def test_nvgre_is_named_and_gre_key_as_id_keeps_the_key(tmp_path: Path) -> None:
    cap = scenarios.write("nvgre", tmp_path)
    code, out, _ = _run(str(cap))
    assert code == 0
    assert "encapsulations: nvgre 3" in out and "1 tenants (nvgre 43981)" in out
    assert "192.0.2.10→192.0.2.20 flow 0x21: 2" in out and "192.0.2.10→192.0.2.20 flow 0x42: 1" in out
    doc = json.loads(_run(str(cap), "--json")[1])
    assert [(t["encap"], t["tunnel_id"], t["entropy_ports"]) for t in doc["tunnels"]] == [("nvgre", 0xABCD, 2)]
    doc = json.loads(_run(str(cap), "--json", "--gre-key-as-id")[1])
    assert sorted((t["encap"], t["tunnel_id"]) for t in doc["tunnels"]) == [("gre", 0xABCD21), ("gre", 0xABCD42)]


def test_csv_creates_missing_directories(tmp_path: Path) -> None:
    cap = scenarios.write("two_paths", tmp_path)
    out_dir = tmp_path / "not" / "yet" / "there"
    assert _run(str(cap), "--csv", str(out_dir))[0] == 0
    assert (out_dir / "tunnels.csv").read_text().count("\n") == 2  # header + one tunnel
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert _run(str(cap), "--csv", str(blocker / "sub"))[0] == 2


def _keys_sorted(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    assert keys == sorted(keys)
    return dict(pairs)


def test_json_is_byte_identical_across_runs_and_hash_seeds(tmp_path: Path) -> None:
    caps = [str(scenarios.write(n, tmp_path)) for n in ("overlapping_tenants", "frag_needed", "nested", "nvgre")]
    outs = []
    for seed in ("1", "2"):
        res = subprocess.run(
            [sys.executable, "-m", "ipsotrace", "analyze", *caps, "--json"],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        outs.append(res.stdout)
    assert outs[0] == outs[1]
    json.loads(outs[0], object_pairs_hook=_keys_sorted)


def test_fast_engine_gives_the_scalar_result(tmp_path: Path) -> None:
    """The default (fast) engine and `--jobs` print the scalar engine's document, findings included."""
    files = [str(scenarios.write(name, tmp_path)) for name in ("overlapping_tenants", "frag_needed", "nvgre")]
    files.append(str(Path(__file__).resolve().parents[2] / "captures" / "mixed-overlays.pcap"))
    code, scalar, _ = _run(*files, "--json", "--engine", "scalar")
    assert code == 0
    assert "findings" in json.loads(scalar)
    code, fast, err = _run(*files, "--json")
    assert code == 0
    assert fast == scalar  # byte for byte
    assert "findings" not in err  # no "findings not computed" note any more
    # --jobs on one file (split at record boundaries): the merge of the parts equals one pass.  Across
    # several files whose timestamps tie exactly, merged "first seen" evidence may name another file.
    code, one, _ = _run(files[-1], "--json", "--engine", "scalar")
    code, out, _ = _run(files[-1], "--json", "--jobs", "2")
    assert code == 0
    assert out == one


def test_engine_options_are_checked(tmp_path: Path) -> None:
    cap = scenarios.write("frag_needed", tmp_path)
    assert _run(str(cap), "--engine", "turbo")[0] == 2
    assert _run(str(cap), "--engine", "scalar", "--jobs", "2")[0] == 2  # --jobs goes with the fast engine
    assert _run(str(cap), "--jobs", "0")[0] == 2
