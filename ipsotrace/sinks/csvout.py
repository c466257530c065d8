"""``analyze --csv DIR``: tunnels.csv and flows.csv, one row per tunnel / inner flow.

Rows come from the ``analyze --json`` document, so both outputs say the same thing
(docs/analyze-schema.md lists the columns).  Small histograms are ``value:count``
pairs joined with ``;``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

TUNNEL_COLUMNS = (
    "encap",
    "src",
    "dst",
    "tunnel_id",
    "packets",
    "bytes",
    "max_size",
    "entropy_ports",
    "inner_flows",
    "first_ts",
    "last_ts",
    "ttl",
    "dscp",
    "ecn",
    "schema",
)
FLOW_COLUMNS = (
    "encap",
    "tunnel_id",
    "l3",
    "src",
    "dst",
    "proto",
    "sport",
    "dport",
    "packets",
    "bytes",
    "max_size",
    "max_size_df",
    "fragments",
    "retransmissions",
    "paths",
    "outer_paths",
    "first_ts",
    "last_ts",
    "schema",
)


def _hist(d: dict[str, int]) -> str:
    return ";".join(f"{k}:{v}" for k, v in d.items())


def tunnel_row(t: dict[str, Any], schema: str) -> dict[str, Any]:
    return {
        **{k: t[k] for k in TUNNEL_COLUMNS[:9]},
        "tunnel_id": "" if t["tunnel_id"] is None else t["tunnel_id"],
        "first_ts": t["first"]["ts"],
        "last_ts": t["last_ts"],
        "ttl": _hist(t["ttl"]),
        "dscp": _hist(t["dscp"]),
        "ecn": _hist(t["ecn"]),
        "schema": schema,
    }


def flow_row(f: dict[str, Any], schema: str) -> dict[str, Any]:
    return {
        **{k: f[k] for k in FLOW_COLUMNS[:13]},
        "tunnel_id": "" if f["tunnel_id"] is None else f["tunnel_id"],
        "retransmissions": f.get("tcp", {}).get("retransmissions", 0),
        "paths": len(f["paths"]),
        # src>dst:sport>dport=packets per outer path, the underlay path keys
        "outer_paths": ";".join(f"{p['src']}>{p['dst']}:{p['sport']}>{p['dport']}={p['packets']}" for p in f["paths"]),
        "first_ts": f["first"]["ts"],
        "last_ts": f["last_ts"],
        "schema": schema,
    }


def write_csv(doc: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    tpath, fpath = directory / "tunnels.csv", directory / "flows.csv"
    with tpath.open("w", newline="") as fh:
        w = csv.DictWriter(fh, TUNNEL_COLUMNS)
        w.writeheader()
        w.writerows(tunnel_row(t, doc["schema"]) for t in doc["tunnels"])
    with fpath.open("w", newline="") as fh:
        w = csv.DictWriter(fh, FLOW_COLUMNS)
        w.writeheader()
        w.writerows(flow_row(f, doc["schema"]) for f in doc["flows"])
    return tpath, fpath
