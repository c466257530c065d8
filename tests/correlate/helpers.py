"""Analyse scenario captures through the real source → decode → correlate chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ipsotrace.correlate import Aggregates, Correlator, SourceInfo
from ipsotrace.decode import decode
from ipsotrace.sources import CaptureFile
from tests.correlate import scenarios


def aggregate(*paths: Path, max_flows: int = 100_000, gre_key_as_id: bool = False) -> Aggregates:
    corr = Correlator(max_flows, gre_key_as_id=gre_key_as_id)
    for p in paths:
        with CaptureFile(p) as cap:
            corr.begin_source(p.name)
            corr.add_all(decode(cap))
            corr.end_source(SourceInfo(p.name, cap.status.format, cap.status.frames))
    return corr.result


def scenario_doc(name: str, tmp: Path) -> dict[str, Any]:
    return aggregate(scenarios.write(name, tmp)).to_json()


def tunnels_by_key(doc: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {(t["encap"], t["src"], t["dst"], t["tunnel_id"]): t for t in doc["tunnels"]}


def flows_by_key(doc: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    keys = ("encap", "tunnel_id", "l3", "src", "dst", "proto", "sport", "dport")
    return {tuple(f[k] for k in keys): f for f in doc["flows"]}
