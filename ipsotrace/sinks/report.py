"""The ``analyze`` report for people, rendered with rich from the ``analyze --json`` document.

Rendering from the documented JSON (not from core objects) keeps the report and
the machine output saying the same thing.  Order: summary, source damage,
tunnels by bytes, top inner flows with their outer paths, ICMP errors tied to
tunnels and flows, anomalies grouped by kind.  (Findings, when they exist, go
first.)
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ipsotrace.sinks.findings_report import findings_renderables

PROTO_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 58: "icmpv6", 132: "sctp", 4: "ipip", 41: "ipv6"}


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def _tid(v: int | None, encap: str = "") -> str:
    if v is None:
        return "-"
    # GRE keys and TEIDs are read as 32-bit hex everywhere else (tshark, router configs)
    return f"{v:#010x}" if encap in ("gre", "gtpu") else str(v)


def _hist(d: dict[str, int], limit: int = 3) -> str:
    items = sorted(d.items(), key=lambda kv: -kv[1])
    shown = ",".join(k for k, _ in items[:limit])
    return shown + ("…" if len(items) > limit else "")


def _tuple(f: dict[str, Any]) -> str:
    proto = PROTO_NAMES.get(f["proto"], str(f["proto"]))
    if f["l3"] == "eth":
        return f"{f['src']} → {f['dst']} ethertype {f['proto']:#06x}"
    if f["l3"] == "":
        return "(payload not decoded)"
    if f["proto"] in (1, 58):
        return f"{f['src']} → {f['dst']} {proto} type {f['sport']} code {f['dport']}"
    if f["sport"] or f["dport"]:
        return f"{f['src']}:{f['sport']} → {f['dst']}:{f['dport']} {proto}"
    return f"{f['src']} → {f['dst']} {proto}"


def summary_line(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    t = doc["time"]
    enc = ", ".join(f"{k} {v['packets']}" for k, v in s["encapsulations"].items()) or "none"
    tenants = ", ".join(f"{e} {_tid(i, e)}" for e, i in s["tenants"][:8])
    if len(s["tenants"]) > 8:
        tenants += f", … ({len(s['tenants'])})"
    return (
        f"{doc['packets']} packets ({_size(doc['bytes'])}) over {t['span_s']:.3f} s "
        f"from {_when(t['first'])} · encapsulations: {enc} · {s['tunnels']} tunnels · "
        f"{len(s['tenants'])} tenants ({tenants or 'none'}) · {s['flows']} inner flows · "
        f"{s['untunnelled_packets']} untunnelled packets"
    )


def tunnel_table(doc: dict[str, Any]) -> Table:
    tb = Table(title="Tunnels (by bytes)", title_justify="left", expand=False)
    for col, just in (
        ("encap", "left"),
        ("outer src → dst", "left"),
        ("tunnel ID", "right"),
        ("packets", "right"),
        ("bytes", "right"),
        ("max", "right"),
        ("entropy", "right"),
        ("inner flows", "right"),
        ("TTL / DSCP / ECN", "left"),
    ):
        tb.add_column(col, justify=just)  # type: ignore[arg-type]
    for t in doc["tunnels"]:
        tb.add_row(
            t["encap"] + (" (nested)" if t["nesting"] and t["nesting"] != [0] else ""),
            f"{t['src']} → {t['dst']}",
            _tid(t["tunnel_id"], t["encap"]),
            str(t["packets"]),
            _size(t["bytes"]),
            str(t["max_size"]),
            f"{t['entropy_ports']}{'' if t['entropy_ports_exact'] else '≈'}",
            f"{t['inner_flows']}{'' if t['inner_flows_exact'] else '≈'}",
            f"{_hist(t['ttl'])} / {_hist(t['dscp'])} / {_hist(t['ecn'])}",
        )
    return tb


def flow_table(doc: dict[str, Any], top: int) -> Table:
    flows = doc["flows"][:top]
    tb = Table(title=f"Top {len(flows)} of {len(doc['flows'])} inner flows (by bytes)", title_justify="left")
    for col, just in (
        ("tenant", "left"),
        ("inner flow", "left"),
        ("packets", "right"),
        ("bytes", "right"),
        ("max / DF", "right"),
        ("retx", "right"),
        ("outer paths (src→dst sport>dport or NVGRE flow: packets, retx)", "left"),
    ):
        tb.add_column(col, justify=just)  # type: ignore[arg-type]
    for f in flows:
        paths = []
        for p in f["paths"][:6]:
            via = "".join(f" via {v[0]} {v[1]}→{v[2]}" for v in p["via"])
            if f["encap"] == "nvgre":
                ports = f" flow {p['sport']:#04x}"  # NVGRE's FlowID holds the path's entropy
            else:
                ports = f" {p['sport']}>{p['dport']}" if p["sport"] or p["dport"] else ""
            fl = f" fl {p['flow_label']:#x}" if p["flow_label"] else ""
            retx = f", {p['retransmissions']} retx" if p["retransmissions"] else ""
            paths.append(f"{p['src']}→{p['dst']}{ports}{fl}{via}: {p['packets']}{retx}")
        if len(f["paths"]) > 6:
            paths.append(f"… {len(f['paths']) - 6} more")
        if f["paths_overflow"]:
            paths.append(f"+{f['paths_overflow']} packets on untracked paths")
        tcp = f.get("tcp")
        tb.add_row(
            f"{f['encap']} {_tid(f['tunnel_id'], f['encap'])}",
            _tuple(f),
            str(f["packets"]),
            _size(f["bytes"]),
            f"{f['max_size']} / {f['max_size_df']}",
            str(tcp["retransmissions"]) if tcp else "",
            "\n".join(paths),
        )
    return tb


def icmp_table(doc: dict[str, Any]) -> Table:
    tb = Table(title="ICMP errors", title_justify="left")
    for col in ("reporter", "kind", "MTU", "count", "first frame", "tunnel", "inner flow"):
        tb.add_column(col)
    for e in doc["icmp_errors"]:
        tunnels = "\n".join(f"{t[0]} {t[1]}→{t[2]} {_tid(t[3], t[0])}" for t in e["tunnels"][:4]) or "(not in capture)"
        if e["quoted_tunnel"] is None and e["quoted_path"] is None:
            tunnels = "(quote not decoded)"
        flows = [f for f in e["flows"]]
        flow_txt = "\n".join(
            _tuple(dict(zip(("encap", "tunnel_id", "l3", "src", "dst", "proto", "sport", "dport"), f, strict=True)))
            for f in flows[:3]
        )
        if len(flows) > 3:
            flow_txt += f"\n… {len(flows) - 3} more"
        if not flows:
            flow_txt = "(not in capture)" if e["quoted_flow"] else "(quote too short)"
        tb.add_row(
            e["reporter"],
            e["kind"],
            str(e["mtu"]) if e["mtu"] else "",
            str(e["count"]),
            f"{e['first']['frame']} of {e['first']['source']}",
            tunnels,
            flow_txt,
        )
    return tb


def anomaly_table(doc: dict[str, Any]) -> Table:
    tb = Table(title="Anomalies by kind", title_justify="left")
    for col in ("kind", "count", "example frames", "detail"):
        tb.add_column(col)
    for a in doc["anomalies"]:
        ex = a["examples"]
        tb.add_row(
            a["kind"],
            str(a["count"]),
            ", ".join(str(e["frame"]) for e in ex)
            + (f" ({ex[0]['source']})" if ex and len(doc["sources"]) > 1 else ""),
            ex[0]["detail"] if ex else "",
        )
    return tb


def render(doc: dict[str, Any], top: int = 20) -> Group:
    parts: list[Any] = [Text(summary_line(doc), style="bold")]
    parts += findings_renderables(doc)  # findings first, most severe first
    for s in doc["sources"]:
        if s["damage"]:
            parts.append(
                Text(
                    f"warning: {s['path']}: {s['damage']} at byte {s['damage_offset']}; "
                    f"analysed the {s['frames']} frames before it",
                    style="yellow",
                )
            )
    ev = doc["evicted_flows"]
    if ev["flows"]:
        parts.append(
            Text(
                f"warning: flow cap {doc['max_flows']} reached: {ev['flows']} flows evicted "
                f"({ev['packets']} packets, {ev['bytes']} bytes not in the flow table); raise --max-flows",
                style="yellow",
            )
        )
    et = doc.get("evicted_tunnels")
    if et and et["tunnels"]:
        parts.append(
            Text(
                f"warning: tunnel cap {doc['max_tunnels']} reached: {et['tunnels']} tunnel sessions evicted "
                f"({et['packets']} packets, {et['bytes']} bytes not in the tunnel table); raise --max-tunnels",
                style="yellow",
            )
        )
    if doc["tunnels"]:
        parts.append(tunnel_table(doc))
    if doc["flows"] and top > 0:
        parts.append(flow_table(doc, top))
    if doc["icmp_errors"]:
        parts.append(icmp_table(doc))
    reasm = doc.get("reassembly") or {}
    if reasm.get("verdict"):
        parts.append(Text(f"warning: {reasm['verdict']}", style="yellow"))
    if doc["anomalies"]:
        parts.append(anomaly_table(doc))
    elif doc["packets"] and not reasm.get("verdict"):
        parts.append(Text("No anomalies."))
    return Group(*parts)


def print_report(doc: dict[str, Any], top: int = 20, console: Console | None = None) -> None:
    # piped output keeps wide tables readable instead of wrapping at 80 columns
    con = console or Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
    con.print(render(doc, top))
