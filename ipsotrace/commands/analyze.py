"""``ipsotrace analyze``: tunnels, tenant flows, underlay paths and ICMP errors of captures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ipsotrace.commands.common import (
    EXIT_DAMAGED,
    EXIT_USAGE,
    LazyProgress,
    NoHeuristicsOption,
    NoReassembleOption,
    PortOption,
    dissect_config,
    fail,
    frames_with_progress,
    open_or_fail,
    report_damage,
    report_status_damage,
    stderr,
    write_line,
)
from ipsotrace.commands.findings_options import (
    InventoryOption,
    ThresholdsOption,
    UntrustedOption,
    findings_doc,
    load_inventory,
    load_thresholds,
    parse_untrusted,
)
from ipsotrace.correlate import DEFAULT_MAX_FLOWS, DEFAULT_MAX_TUNNELS, Aggregates, Correlator, SourceInfo
from ipsotrace.decode import decode
from ipsotrace.dissectors.registry import DissectConfig
from ipsotrace.findings import Collector, Facts
from ipsotrace.reassembly import Head, Reassembler, ReassemblySummary
from ipsotrace.sources import SourceStatus


def analyze(
    files: list[Path] = typer.Argument(
        ..., help="pcap/pcapng files (optionally gzip-compressed), merged into one result."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON document (docs/analyze-schema.md) instead of the report."
    ),
    csv_dir: Path | None = typer.Option(
        None, "--csv", help="Also write tunnels.csv and flows.csv into this directory."
    ),
    port: list[str] = PortOption,
    no_heuristics: bool = NoHeuristicsOption,
    no_reassemble: bool = NoReassembleOption,
    max_flows: int = typer.Option(
        DEFAULT_MAX_FLOWS, "--max-flows", help="Track at most N inner flows; the least active are evicted and counted."
    ),
    max_tunnels: int = typer.Option(
        DEFAULT_MAX_TUNNELS,
        "--max-tunnels",
        help="Track at most N tunnel sessions; the least active are evicted and counted.",
    ),
    gre_key_as_id: bool = typer.Option(
        False,
        "--gre-key-as-id",
        help="Read GRE-with-key over Ethernet as gretap (whole key = tunnel ID), not NVGRE (VSID + FlowID).",
    ),
    top: int = typer.Option(20, "--top", help="Inner flows shown in the report (all are in --json and --csv)."),
    inventory_file: Path | None = InventoryOption,
    thresholds_file: Path | None = ThresholdsOption,
    untrusted: list[str] = UntrustedOption,
    engine: str = typer.Option(
        "fast",
        "--engine",
        help="fast: vectorized numpy path, frames it cannot decode go through the dissectors (the default). "
        "scalar: every packet through the dissectors. Both give the same report, findings included.",
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", help="With the fast engine: split the input over N processes."),
) -> None:
    """Correlate captures: tunnels between VTEPs, inner flows per tenant and the outer paths that carried them."""
    if max_flows < 1:
        fail("--max-flows must be at least 1", EXIT_USAGE)
    if max_tunnels < 1:
        fail("--max-tunnels must be at least 1", EXIT_USAGE)
    if engine not in ("scalar", "fast"):
        fail(f"--engine must be scalar or fast, not {engine!r}", EXIT_USAGE)
    if jobs < 1 or (jobs > 1 and engine != "fast"):
        fail("--jobs N (N >= 1) goes with --engine fast", EXIT_USAGE)
    cfg = dissect_config(port, no_heuristics)
    inventory = load_inventory(inventory_file)
    thresholds = load_thresholds(thresholds_file)
    untrusted_nets = parse_untrusted(untrusted)
    if engine == "fast":
        for path in files:
            open_or_fail(path).close()  # same clear error as the scalar engine for unreadable input
        agg, facts, reassembly, damaged = _analyze_fast(
            files, cfg, jobs, max_flows, max_tunnels, gre_key_as_id, reassemble=not no_reassemble
        )
    else:
        agg, facts, reassembly, damaged = _analyze_scalar(
            files, cfg, max_flows, max_tunnels, gre_key_as_id, reassemble=not no_reassemble
        )
    doc = agg.to_json()
    doc["reassembly"] = reassembly.to_json()
    doc["findings"] = findings_doc(agg, facts, inventory, thresholds, untrusted_nets)
    _emit(doc, as_json, csv_dir, top, damaged)


def _analyze_scalar(
    files: list[Path],
    cfg: DissectConfig,
    max_flows: int,
    max_tunnels: int,
    gre_key_as_id: bool,
    *,
    reassemble: bool,
) -> tuple[Aggregates, Facts, ReassemblySummary, bool]:
    coll = Collector(max_flows=max_flows, max_tunnels=max_tunnels)
    corr = Correlator(max_flows=max_flows, max_tunnels=max_tunnels, gre_key_as_id=gre_key_as_id)
    damaged = False
    reassembly = ReassemblySummary(enabled=reassemble)
    for path in files:
        with open_or_fail(path) as cap:
            corr.begin_source(str(path))
            coll.begin_source(str(path))
            reasm: Reassembler[Head] = Reassembler()
            packets = decode(frames_with_progress(cap, f"analyze {path.name}"), cfg, reassemble, reassembler=reasm)
            for pkt in packets:
                coll.add(pkt, corr.add(pkt))  # the findings' facts reuse the correlator's view
            st = cap.status
            corr.end_source(SourceInfo(str(path), st.format, st.frames, st.damage, st.damage_offset))
            reassembly.add(str(path), reasm)
            damaged = report_damage(cap) or damaged
    return corr.result, coll.result, reassembly, damaged


def _analyze_fast(
    files: list[Path],
    cfg: DissectConfig,
    jobs: int,
    max_flows: int,
    max_tunnels: int,
    gre_key_as_id: bool,
    *,
    reassemble: bool,
) -> tuple[Aggregates, Facts, ReassemblySummary, bool]:
    from ipsotrace.fast.engine import FastAnalyzer
    from ipsotrace.fast.parallel import Settings, analyze_parallel

    statuses: list[SourceStatus] = []
    if jobs > 1:
        settings = Settings(cfg, max_flows, max_tunnels, gre_key_as_id, reassemble, findings=True)
        # fragments straddling a cut between processes are not reassembled (docs/analyze-schema.md)
        par = analyze_parallel(files, jobs, settings)
        assert par.facts is not None
        agg, facts, reassembly, statuses = par.result, par.facts, par.reassembly, par.statuses
        report_inexact_merge(facts)
    else:
        reassembly = ReassemblySummary(enabled=reassemble)
        corr = Correlator(max_flows=max_flows, max_tunnels=max_tunnels, gre_key_as_id=gre_key_as_id)
        coll = Collector(max_flows=max_flows, max_tunnels=max_tunnels)
        for path in files:
            size = path.stat().st_size
            with LazyProgress(size, f"analyze {path.name}") as bar:
                fa = FastAnalyzer(corr, cfg, reassemble=reassemble, progress=bar.update, collector=coll)
                statuses.append(fa.add_file(path))
            reassembly.add(str(path), fa.reassembler)
        agg, facts = corr.result, coll.result
    damaged = False
    for st in statuses:
        damaged = report_status_damage(st) or damaged
    return agg, facts, reassembly, damaged


def report_inexact_merge(facts: Facts) -> int:
    """Warn when merging the parts of ``--jobs`` could not place some TCP loss exactly (Facts.merge's bound)."""
    flows = sum(1 for ff in facts.flows.values() if ff.tcp is not None and ff.tcp.inexact)
    if flows:
        stderr.print(
            f"[bold yellow]warning:[/] {flows} TCP flow(s) were reordered across the parts of --jobs: their "
            "loss attribution (health.retransmissions) is approximate; --jobs 1 gives exact figures",
            highlight=False,
        )
    return flows


def _emit(doc: dict[str, Any], as_json: bool, csv_dir: Path | None, top: int, damaged: bool) -> None:
    if csv_dir is not None:
        from ipsotrace.sinks.csvout import write_csv

        try:
            write_csv(doc, csv_dir)
        except OSError as exc:
            fail(f"cannot write CSV to {csv_dir}: {exc}", EXIT_USAGE)
    if as_json:
        write_line(json.dumps(doc, indent=1, sort_keys=True))  # byte-stable: diffable between runs
    else:
        from ipsotrace.sinks.report import print_report

        print_report(doc, top=top)
    if damaged:
        raise typer.Exit(EXIT_DAMAGED)


def register(app: typer.Typer) -> None:
    app.command()(analyze)
