"""Thresholds (one file, documented defaults, validated overrides) and the inventory file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ipsotrace.findings import DEFAULT_THRESHOLDS, DEFAULTS, SPECS, InventoryError, ThresholdError, parse_inventory
from tests.conftest import ROOT
from tests.findings.helpers import findings_of, generator

TOML = ROOT / "ipsotrace" / "findings" / "thresholds.toml"
DOC = ROOT / "docs" / "findings.md"


def test_shipped_thresholds_file_states_the_defaults() -> None:
    assert tomllib.loads(TOML.read_text()) == DEFAULTS


def test_every_threshold_a_finding_names_exists() -> None:
    for spec in SPECS.values():
        for name in spec.thresholds:
            DEFAULT_THRESHOLDS[name]  # raises KeyError when a spec names a threshold that does not exist


def test_docs_list_every_finding_and_threshold() -> None:
    text = DOC.read_text()
    for fid in SPECS:
        assert f"`{fid}`" in text, fid
    for section, kv in DEFAULTS.items():
        for key in kv:
            assert f"{section}.{key}" in text, f"{section}.{key}"


def test_overrides_apply_and_are_checked() -> None:
    t = DEFAULT_THRESHOLDS.with_overrides({"blackhole": {"min_retransmissions": 5}})
    assert t["blackhole.min_retransmissions"] == 5
    assert t["blackhole.large_min"] == DEFAULTS["blackhole"]["large_min"]
    assert DEFAULT_THRESHOLDS["blackhole.min_retransmissions"] == 3  # the defaults are untouched
    for bad, why in (
        ({"nosuch": {}}, "unknown thresholds section"),
        ({"blackhole": {"nosuch": 1}}, "unknown threshold blackhole.nosuch"),
        ({"blackhole": {"min_retransmissions": 2.5}}, "must be an integer"),
        ({"blackhole": {"large_retx_ratio": "x"}}, "must be a number"),
        ({"ecmp": {"min_flows": -1}}, "must not be negative"),
        ({"security": {"encrypted_tcp_ports": [443, "x"]}}, "list of integers"),
    ):
        with pytest.raises(ThresholdError, match=why):
            DEFAULT_THRESHOLDS.with_overrides(bad)


def test_a_raised_threshold_silences_a_finding(tmp_path: Path) -> None:
    gen = generator()
    path = gen.write("mtu.pmtu-black-hole", tmp_path)
    assert "mtu.pmtu-black-hole" in {f.id for f in findings_of(path)}
    from ipsotrace.findings import evaluate
    from tests.findings.helpers import analyse, packets

    agg, facts = analyse(packets(path))
    strict = DEFAULT_THRESHOLDS.with_overrides({"blackhole": {"min_retransmissions": 4}})
    assert "mtu.pmtu-black-hole" not in {f.id for f in evaluate(agg, facts, thresholds=strict)}


YAML = """
underlay_mtu: 9000
overlay_mtu: 8950
vteps:
  - 192.0.2.1
  - {address: 192.0.2.2, mtu: 1500}
  - 198.51.100.0/28
vnis: [100, "200-299"]
untrusted: [203.0.113.0/24]
"""

TOML_INV = """
underlay_mtu = 9000
overlay_mtu = 8950
vteps = ["192.0.2.1", {address = "192.0.2.2", mtu = 1500}, "198.51.100.0/28"]
vnis = [100, "200-299"]
untrusted = ["203.0.113.0/24"]
"""


@pytest.mark.parametrize(("text", "fmt"), [(YAML, "yaml"), (TOML_INV, "toml")])
def test_inventory_yaml_and_toml(text: str, fmt: str) -> None:
    inv = parse_inventory(text, fmt)
    assert inv.underlay_mtu == 9000 and inv.overlay_mtu == 8950
    assert inv.vtep_known("192.0.2.1") and inv.vtep_known("198.51.100.14")
    assert not inv.vtep_known("198.51.100.16") and not inv.vtep_known("2001:db8::1")
    assert inv.vni_known(100) and inv.vni_known(250) and not inv.vni_known(101) and not inv.vni_known(300)
    assert inv.mtu_for("192.0.2.1", "192.0.2.2") == 1500  # the smaller of the path's VTEPs
    assert inv.mtu_for("192.0.2.1", "198.51.100.3") == 9000
    assert [str(n) for n in inv.untrusted] == ["203.0.113.0/24"]
    assert inv.lists_vteps and inv.lists_vnis


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("vteps: [not-an-address]", "not an address"),
        ("vnis: [abc]", "bad VNI"),
        ("underlay_mtu: 20", "between 68 and 65535"),
        ("mtus: 1500", "unknown inventory keys: mtus"),
        ("vteps: [{mtu: 1500}]", "needs an 'address'"),
        ("- a\n- b", "must be a mapping"),
        ("vteps: [", "cannot parse the inventory as YAML"),
    ],
)
def test_inventory_errors(text: str, why: str) -> None:
    with pytest.raises(InventoryError, match=why):
        parse_inventory(text, "yaml")


def test_inventory_vtep_mtu_drives_the_df_finding(tmp_path: Path) -> None:
    gen = generator()
    path = gen.write("mtu.inner-df-exceeds-overlay", tmp_path)
    jumbo = parse_inventory("underlay_mtu: 9000\nvteps: [192.0.2.0/24]", "yaml")
    assert "mtu.inner-df-exceeds-overlay" not in {f.id for f in findings_of(path, jumbo)}
    small = parse_inventory("vteps: [192.0.2.1, {address: 192.0.2.2, mtu: 1500}]", "yaml")
    (f,) = [f for f in findings_of(path, small) if f.id == "mtu.inner-df-exceeds-overlay"]
    assert f.evidence.facts["overlay_capacity"] == 1450 and f.evidence.facts["largest_df_inner"] == 1500
    assert "lower the inner MTU to 1450 or raise the underlay MTU to 1550" in f.remedy
