"""``ipsotrace explain [ID]``: what a finding means, what fires it, what to do."""

from __future__ import annotations

import textwrap

import typer

from ipsotrace.commands.common import EXIT_USAGE, fail, write_line
from ipsotrace.findings import DEFAULT_THRESHOLDS, SPECS
from ipsotrace.findings.model import SEVERITY_RANK

WIDTH = 100


def explain(
    finding_id: str | None = typer.Argument(None, metavar="ID", help="A finding ID; omit to list them all."),
) -> None:
    """Print the long explanation of a finding, or list every finding ID."""
    if finding_id is None:
        width = max(len(i) for i in SPECS)
        for spec in sorted(SPECS.values(), key=lambda s: (s.id.split(".")[0], SEVERITY_RANK[s.severity], s.id)):
            write_line(f"{spec.id:<{width}}  {spec.severity:<7}  {spec.title}")
        return
    found = SPECS.get(finding_id)
    if found is None:
        close = [i for i in SPECS if finding_id in i or i.split(".")[-1] in finding_id]
        hint = f"; did you mean {', '.join(sorted(close))}?" if close else "; `ipsotrace explain` lists them"
        fail(f"unknown finding {finding_id!r}{hint}", EXIT_USAGE)
        return
    spec = found
    lines = [f"{spec.id} ({spec.severity})", spec.title, ""]
    lines += [p for para in spec.explanation.split("\n") for p in (textwrap.fill(para, WIDTH), "")]
    lines += [textwrap.fill(f"Fires when: {spec.fires_when}", WIDTH), textwrap.fill(f"Remedy: {spec.remedy}", WIDTH)]
    if spec.thresholds:
        lines.append(
            "Thresholds (--thresholds FILE): " + ", ".join(f"{t} = {DEFAULT_THRESHOLDS[t]}" for t in spec.thresholds)
        )
    for line in lines:
        write_line(line)


def register(app: typer.Typer) -> None:
    app.command()(explain)
