"""Thresholds of the findings: defaults, validated overrides.

The defaults are stated once, here, and shipped as the commented file
``thresholds.toml`` next to this module (a test keeps the two equal).  Users
pass their own TOML with ``--thresholds``: the CLI reads it and hands the
parsed mapping to :meth:`Thresholds.with_overrides`; the core never opens files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEFAULTS: dict[str, dict[str, Any]] = {
    "mtu": {"assumed_underlay_mtu": 1500, "min_fragments": 2},
    "blackhole": {"large_min": 576, "min_retransmissions": 3, "large_retx_ratio": 0.5, "small_retx_ratio": 0.1},
    "ecmp": {"min_flows": 8, "min_spread": 0.5, "max_share": 0.5},
    "qos": {"min_packets": 10, "min_ratio": 0.9},
    "asymmetry": {"min_packets": 4},
    "health": {
        "retx_ratio": 0.03,
        "min_retransmissions": 10,
        "min_duplicates": 3,
        "duplicate_ratio": 0.01,
        "min_ttl_expired": 3,
    },
    "security": {
        "encrypted_tcp_ports": [22, 443, 465, 636, 853, 993, 995, 5061, 6443, 8443],
        "encrypted_udp_ports": [443, 500, 853, 4500, 51820],
    },
}


class ThresholdError(ValueError):
    pass


class Thresholds:
    """Read-only view of the thresholds: ``t.get("blackhole", "min_retransmissions")``."""

    __slots__ = ("_v",)

    def __init__(self, values: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._v = {s: dict(kv) for s, kv in (values or DEFAULTS).items()}

    def get(self, section: str, key: str) -> Any:
        return self._v[section][key]

    def __getitem__(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return self._v[section][key]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {s: dict(kv) for s, kv in self._v.items()}

    def with_overrides(self, overrides: Mapping[str, Any]) -> Thresholds:
        """A copy with ``overrides`` (the parsed TOML) applied; unknown keys and wrong types are errors."""
        out = self.as_dict()
        for section, kv in overrides.items():
            if section not in out:
                raise ThresholdError(f"unknown thresholds section [{section}]; known: {', '.join(sorted(out))}")
            if not isinstance(kv, Mapping):
                raise ThresholdError(f"[{section}] must be a table")
            for key, value in kv.items():
                if key not in out[section]:
                    known = ", ".join(sorted(out[section]))
                    raise ThresholdError(f"unknown threshold {section}.{key}; known in [{section}]: {known}")
                out[section][key] = _check(f"{section}.{key}", out[section][key], value)
        return Thresholds(out)


def _check(name: str, default: Any, value: Any) -> Any:
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ThresholdError(f"{name} must be a list of integers")
        return list(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ThresholdError(f"{name} must be a number")
    if isinstance(default, int) and not isinstance(value, int):
        raise ThresholdError(f"{name} must be an integer")
    if value < 0:
        raise ThresholdError(f"{name} must not be negative")
    return value


DEFAULT_THRESHOLDS = Thresholds()
