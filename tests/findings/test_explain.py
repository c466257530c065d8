"""``ipsotrace explain``: every finding listed; the long explanation of one; unknown IDs fail."""

from __future__ import annotations

from typer.testing import CliRunner

from ipsotrace.cli import app
from ipsotrace.findings import SPECS

runner = CliRunner()


def test_lists_every_finding() -> None:
    res = runner.invoke(app, ["explain"])
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert len(lines) == len(SPECS)
    assert {ln.split()[0] for ln in lines} == set(SPECS)


def test_explains_one_finding() -> None:
    res = runner.invoke(app, ["explain", "mtu.pmtu-black-hole"])
    assert res.exit_code == 0
    out = res.stdout
    assert out.startswith("mtu.pmtu-black-hole (error)")
    assert "re-draws" in out and "Remedy:" in out and "blackhole.min_retransmissions = 3" in out


def test_every_spec_is_complete() -> None:
    for spec in SPECS.values():
        assert spec.severity in ("info", "warning", "error")
        assert len(spec.explanation) > 200 and spec.fires_when and spec.remedy and spec.title


def test_unknown_id_is_a_usage_error() -> None:
    res = runner.invoke(app, ["explain", "pmtu-black-hole"])
    assert res.exit_code == 2
    assert "mtu.pmtu-black-hole" in res.output  # the hint
