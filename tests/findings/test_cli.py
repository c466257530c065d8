"""``ipsotrace analyze`` carries the findings: report first, ``--json`` ``findings``, the options."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from ipsotrace.cli import app
from tests.conftest import require
from tests.findings.helpers import CAPTURES

runner = CliRunner()


def _integrated() -> None:
    res = runner.invoke(app, ["analyze", "--help"])
    require("--inventory" in res.output, "analyze has no findings options yet (integration pending)")


def _json(*args: str) -> dict:  # type: ignore[type-arg]
    res = runner.invoke(app, ["analyze", "--json", *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_json_carries_findings_most_severe_first() -> None:
    _integrated()
    doc = _json(str(CAPTURES / "mtu.ptb-for-tunnel.pcap"))
    found = doc["findings"]
    assert [f["id"] for f in found] == ["mtu.inner-df-exceeds-overlay", "mtu.mss-exceeds-overlay", "mtu.ptb-for-tunnel"]
    for f in found:
        assert {"id", "severity", "title", "evidence", "remedy"} <= set(f)
    assert _json(str(CAPTURES / "clean.pcap"))["findings"] == []


def test_inventory_thresholds_and_untrusted_options(tmp_path: Path) -> None:
    _integrated()
    inv = str(CAPTURES / "inventory.yaml")
    ids = {f["id"] for f in _json(str(CAPTURES / "inventory.unexpected-vni.pcap"), "--inventory", inv)["findings"]}
    assert "inventory.unexpected-vni" in ids
    toml_inv = tmp_path / "inv.toml"
    toml_inv.write_text("vnis = [100]\n")
    ids = {
        f["id"]
        for f in _json(str(CAPTURES / "inventory.unexpected-vni.pcap"), "--inventory", str(toml_inv))["findings"]
    }
    assert "inventory.unexpected-vni" in ids
    cap = str(CAPTURES / "security.cleartext-overlay.pcap")
    assert "security.cleartext-overlay" in {f["id"] for f in _json(cap, "--untrusted", "203.0.113.0/24")["findings"]}
    th = tmp_path / "t.toml"
    th.write_text("[blackhole]\nmin_retransmissions = 4\n")
    bh = str(CAPTURES / "mtu.pmtu-black-hole.pcap")
    assert "mtu.pmtu-black-hole" in {f["id"] for f in _json(bh)["findings"]}
    assert "mtu.pmtu-black-hole" not in {f["id"] for f in _json(bh, "--thresholds", str(th))["findings"]}


def test_bad_option_files_are_usage_errors(tmp_path: Path) -> None:
    _integrated()
    clean = str(CAPTURES / "clean.pcap")
    bad = tmp_path / "bad.toml"
    bad.write_text("[nosuch]\n")
    for args in (["--thresholds", str(bad)], ["--inventory", str(tmp_path / "missing.yaml")], ["--untrusted", "x"]):
        res = runner.invoke(app, ["analyze", clean, *args])
        assert res.exit_code == 2, (args, res.output)


def test_report_shows_findings_first() -> None:
    _integrated()
    res = runner.invoke(app, ["analyze", str(CAPTURES / "mtu.pmtu-black-hole.pcap")], terminal_width=200)
    assert res.exit_code == 0
    out = res.stdout
    assert out.index("Findings: 1 error") < out.index("Tunnels")
    assert "PMTU black hole on 1 of 4 ECMP paths" in out
