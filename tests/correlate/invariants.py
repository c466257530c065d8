"""Consistency every ``analyze --json`` document must have, whatever the capture."""

from __future__ import annotations

from typing import Any


def check_invariants(doc: dict[str, Any]) -> None:
    s = doc["summary"]
    assert s["tunnelled_packets"] + s["untunnelled_packets"] == doc["packets"]
    # every tunnel hop is in exactly one tunnel session (or was evicted with it)
    tunnel_packets = sum(t["packets"] for t in doc["tunnels"]) + doc["evicted_tunnels"]["packets"]
    assert sum(e["packets"] for e in s["encapsulations"].values()) == tunnel_packets
    assert len(doc["tunnels"]) <= doc["max_tunnels"] and len(doc["flows"]) <= doc["max_flows"]
    assert s["tunnels"] == len(doc["tunnels"]) and s["flows"] == len(doc["flows"])
    # every tunnelled packet belongs to exactly one inner flow (or was evicted with it)
    assert sum(f["packets"] for f in doc["flows"]) + doc["evicted_flows"]["packets"] == s["tunnelled_packets"]
    for f in doc["flows"]:
        assert sum(p["packets"] for p in f["paths"]) + f["paths_overflow"] == f["packets"]
        assert sum(f["sizes"]) == f["packets"]
        assert f["max_size_df"] <= f["max_size"]
        if "tcp" in f:
            assert sum(p["retransmissions"] for p in f["paths"]) <= f["tcp"]["retransmissions"]
    for t in doc["tunnels"]:
        assert t["packets"] >= 1 and t["inner_flows"] >= 1
        if t["ttl"]:
            assert sum(t["ttl"].values()) == t["packets"]
    assert sum(s_["frames"] for s_ in doc["sources"]) == doc["packets"]
