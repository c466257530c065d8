"""The findings part of the ``analyze`` report, rendered from ``doc["findings"]`` (the JSON)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _frames(f: dict[str, Any], many_sources: bool) -> str:
    frames = f["evidence"]["frames"]
    if not frames:
        return ""
    if many_sources:
        return "\n".join(f"{e['frame']} ({e['source']})" for e in frames[:4])
    return ", ".join(str(e["frame"]) for e in frames)


def findings_renderables(doc: dict[str, Any]) -> list[Any]:
    """A table of findings, most severe first (the JSON's order), or a one-line all-clear."""
    findings = doc.get("findings")
    if findings is None:
        return []
    if not findings:
        return [Text("No findings.", style="green")] if doc.get("packets") else []
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("error", "warning", "info")}
    title = "Findings: " + ", ".join(f"{n} {s}{'s' if n > 1 else ''}" for s, n in counts.items() if n)
    tb = Table(title=title, title_justify="left", show_lines=True)
    tb.add_column("severity")
    tb.add_column("finding", ratio=3)
    tb.add_column("evidence frames")
    tb.add_column("remedy", ratio=2)
    many = len(doc.get("sources", [])) > 1
    for f in findings:
        verdict = Text(f["title"], style="bold")
        verdict.append(f"\n{f['detail']}\n", style="default")
        verdict.append(f"{f['id']} · confidence {f.get('confidence', 'high')} · ipsotrace explain {f['id']}", "dim")
        tb.add_row(Text(f["severity"], style=STYLE[f["severity"]]), verdict, _frames(f, many), f["remedy"])
    return [tb]
