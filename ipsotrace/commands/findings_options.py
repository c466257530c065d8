"""CLI side of the findings: the options and the file reading the core does not do."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer

from ipsotrace.commands.common import EXIT_USAGE, fail
from ipsotrace.correlate import Aggregates
from ipsotrace.findings import (
    DEFAULT_THRESHOLDS,
    Facts,
    Inventory,
    InventoryError,
    ThresholdError,
    Thresholds,
    evaluate,
    findings_json,
    network,
    parse_inventory,
)
from ipsotrace.findings.inventory import Network

InventoryOption = typer.Option(
    None,
    "--inventory",
    help="YAML or TOML file of expected VTEPs, VNIs, MTUs and untrusted networks (docs/findings.md).",
)
ThresholdsOption = typer.Option(
    None,
    "--thresholds",
    help="TOML file overriding finding thresholds (defaults: ipsotrace/findings/thresholds.toml).",
)
UntrustedOption = typer.Option(
    None,
    "--untrusted",
    help="A network the overlay must not cross in clear, as CIDR (repeatable).",
)


def findings_doc(
    agg: Aggregates,
    facts: Facts,
    inventory: Inventory,
    thresholds: Thresholds,
    untrusted: tuple[Network, ...],
) -> list[dict[str, Any]]:
    """The ``findings`` list of ``analyze --json``: most severe first."""
    found = evaluate(agg, facts, thresholds=thresholds, inventory=inventory, untrusted=untrusted)
    return findings_json(found)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {what} {path}: {exc}", EXIT_USAGE) from None


def load_inventory(path: Path | None) -> Inventory:
    if path is None:
        return Inventory()
    fmt = "toml" if path.suffix.lower() == ".toml" else "yaml"
    try:
        return parse_inventory(_read(path, "inventory"), fmt)
    except InventoryError as exc:
        raise fail(f"{path}: {exc}", EXIT_USAGE) from None


def load_thresholds(path: Path | None) -> Thresholds:
    if path is None:
        return DEFAULT_THRESHOLDS
    try:
        return DEFAULT_THRESHOLDS.with_overrides(tomllib.loads(_read(path, "thresholds file")))
    except (tomllib.TOMLDecodeError, ThresholdError) as exc:
        raise fail(f"{path}: {exc}", EXIT_USAGE) from None


def parse_untrusted(cidrs: list[str] | None) -> tuple[Network, ...]:
    try:
        return tuple(network(c) for c in cidrs or [])
    except InventoryError as exc:
        raise fail(f"--untrusted: {exc}", EXIT_USAGE) from None
