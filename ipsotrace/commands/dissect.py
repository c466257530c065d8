"""``ipsotrace dissect``: every layer of every packet, as text or JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ipsotrace.commands.common import (
    EXIT_DAMAGED,
    NoHeuristicsOption,
    NoReassembleOption,
    PortOption,
    dissect_config,
    frames_with_progress,
    open_or_fail,
    report_damage,
    write_line,
)
from ipsotrace.decode import decode
from ipsotrace.records import DISSECT_SCHEMA
from ipsotrace.sinks.text import packet_summary


def dissect(
    file: Path = typer.Argument(..., help="pcap or pcapng file (optionally gzip-compressed)."),
    count: int = typer.Option(0, "--count", "-c", min=0, help="Stop after N frames (0: all)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per frame (docs/dissect-schema.md)."),
    port: list[str] = PortOption,
    no_heuristics: bool = NoHeuristicsOption,
    no_reassemble: bool = NoReassembleOption,
) -> None:
    """Decode every layer of every packet: outer headers, tunnel IDs, inner headers, ICMP quotes."""
    cfg = dissect_config(port, no_heuristics)
    with open_or_fail(file) as cap:
        for n, pkt in enumerate(decode(frames_with_progress(cap, "dissect"), cfg, not no_reassemble), 1):
            if as_json:
                # every line names its schema: a line read on its own is still versioned (house rule 12)
                write_line(json.dumps({"schema": DISSECT_SCHEMA, **pkt.to_json()}, separators=(",", ":")))
            else:
                write_line(packet_summary(pkt))
            if count and n >= count:
                break
        if report_damage(cap):
            raise typer.Exit(EXIT_DAMAGED)


def register(app: typer.Typer) -> None:
    app.command()(dissect)
