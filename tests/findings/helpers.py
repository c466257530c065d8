"""Run captures through the real chain: source → decode → correlate + collect → findings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ipsotrace.correlate import Aggregates, Correlator, SourceInfo
from ipsotrace.decode import decode
from ipsotrace.findings import Collector, Facts, Finding, Inventory, evaluate, network, parse_inventory
from ipsotrace.records import Packet
from ipsotrace.sources import CaptureFile
from tests.conftest import ROOT

GENERATOR = ROOT / "captures" / "make_findings_captures.py"
CAPTURES = ROOT / "captures" / "findings"


def generator() -> ModuleType:
    """captures/make_findings_captures.py, imported from its path (captures/ is not a package)."""
    name = "make_findings_captures"
    mod = sys.modules.get(name)
    if mod is None:
        spec = importlib.util.spec_from_file_location(name, GENERATOR)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return mod


def packets(path: Path) -> list[Packet]:
    with CaptureFile(path) as cap:
        return list(decode(cap))


def analyse(packets_: list[Packet], source: str = "") -> tuple[Aggregates, Facts]:
    corr, coll = Correlator(), Collector()
    corr.begin_source(source)
    coll.begin_source(source)
    for pkt in packets_:
        corr.add(pkt)
        coll.add(pkt)
    corr.end_source(SourceInfo(source))
    return corr.result, coll.result


def scenario_options(name: str) -> tuple[Inventory, tuple]:  # type: ignore[type-arg]
    gen = generator()
    sc = gen.SCENARIOS[name]
    inv = parse_inventory(gen.INVENTORY_YAML, "yaml") if sc.inventory else Inventory()
    return inv, tuple(network(c) for c in sc.untrusted)


def findings_of(path: Path, inventory: Inventory | None = None, untrusted: tuple = ()) -> list[Finding]:  # type: ignore[type-arg]
    agg, facts = analyse(packets(path), path.name)
    return evaluate(agg, facts, inventory=inventory, untrusted=untrusted)


def frames(f: Finding) -> list[int]:
    return [e[2] for e in f.evidence.frames]
