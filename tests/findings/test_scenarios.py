"""Every finding fires on the capture that reproduces it, with the right evidence, and stays
silent on the clean capture of similar traffic."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsotrace.findings import SPECS, Inventory
from tests.findings.helpers import CAPTURES, findings_of, frames, generator, scenario_options

GEN = generator()
NAMES = [n for n in GEN.SCENARIOS if n != "clean"]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("findings")
    for name in GEN.SCENARIOS:
        GEN.write(name, out)
    return out


def test_every_finding_has_a_scenario() -> None:
    assert set(NAMES) == set(SPECS)


@pytest.mark.parametrize("name", NAMES)
def test_finding_fires_with_its_evidence(name: str, written: Path) -> None:
    inventory, untrusted = scenario_options(name)
    found = [f for f in findings_of(written / f"{name}.pcap", inventory, untrusted) if f.id == name]
    assert len(found) == 1, [f.title for f in found]
    f = found[0]
    expected = sorted(GEN.build(name).evidence)[:8]
    assert frames(f) == expected
    assert f.severity in ("info", "warning", "error")
    assert f.title and f.detail and f.remedy
    js = f.to_json()
    assert {"id", "severity", "title", "evidence", "remedy"} <= set(js)
    assert js["evidence"]["frames"][0] == {"source": f"{name}.pcap", "frame": expected[0]}


@pytest.mark.parametrize("name", NAMES)
def test_clean_capture_stays_silent(name: str, written: Path) -> None:
    # analysed with the same inventory / untrusted networks as the scenario
    inventory, untrusted = scenario_options(name)
    found = findings_of(written / "clean.pcap", inventory, untrusted)
    assert found == []


def test_without_inventory_or_untrusted_the_inventory_findings_stay_silent(written: Path) -> None:
    for name in ("inventory.unexpected-vtep", "inventory.unexpected-vni", "security.cleartext-overlay"):
        assert name not in {f.id for f in findings_of(written / f"{name}.pcap", Inventory(), ())}


def test_shipped_captures_are_those_the_script_writes(written: Path) -> None:
    for name in GEN.SCENARIOS:
        shipped = CAPTURES / f"{name}.pcap"
        assert shipped.read_bytes() == (written / f"{name}.pcap").read_bytes(), f"rerun {GEN.__file__}"
        assert shipped.stat().st_size < 100_000
    assert (CAPTURES / "inventory.yaml").read_text() == GEN.INVENTORY_YAML


def test_documentation_addresses_only(written: Path) -> None:
    import ipaddress

    from tests.findings.helpers import packets

    doc = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]
    for name in GEN.SCENARIOS:
        for pkt in packets(written / f"{name}.pcap"):
            for ly in pkt.layers:
                if ly.proto in ("ipv4", "ipv6"):
                    for a in (ly.fields["src"], ly.fields["dst"]):
                        assert any(ipaddress.ip_address(a) in n for n in doc), (name, pkt.frame, a)
