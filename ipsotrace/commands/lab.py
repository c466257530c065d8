"""``ipsotrace lab up|down|status|exec|capture``: the network lab of DESIGN.md on this host."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from ipsotrace.commands.common import EXIT_OK, EXIT_USAGE, fail, stderr, write_line

lab_app = typer.Typer(
    name="lab",
    help="Build the VXLAN/ECMP lab in network namespaces (needs root): v1 — r1 — {ra, rb} — r3 — v2.",
    no_args_is_help=True,
)

PrefixOption = typer.Option(
    "ipt-",
    "--prefix",
    envvar="IPSOTRACE_LAB_PREFIX",
    help="Namespace name prefix; two labs with different prefixes coexist.",
)


def _lab():  # type: ignore[no-untyped-def]
    # pyroute2 is imported only when a lab command runs
    from ipsotrace import lab

    return lab


@lab_app.command("up")
def up(
    prefix: str = PrefixOption,
    blackhole: bool = typer.Option(
        False, "--blackhole", help="Routers in front of the 1400-byte links drop their ICMP fragmentation-needed."
    ),
    loss: float = typer.Option(0.0, "--loss", help="Drop PCT %% of forward (v1 → v2) packets on the rb path."),
    delay: float = typer.Option(0.0, "--delay", help="Add MS one-way delay on the rb path (needs sch_netem)."),
    icmp_ratelimit: int | None = typer.Option(
        None, "--icmp-ratelimit", help="net.ipv4.icmp_ratelimit (ms) in the routers; default: the kernel's (1000)."
    ),
    srcport_range: str | None = typer.Option(
        None,
        "--srcport-range",
        metavar="FIRST-LAST",
        help="Outer UDP source ports the VTEPs use (both included; one port: N-N). Default: the kernel's range.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the lab status as JSON."),
) -> None:
    """Build the lab (a leftover lab with the same prefix is removed first)."""
    lab = _lab()
    try:
        ports = _port_range(srcport_range) if srcport_range is not None else None
        lab.up(lab.LabOptions(prefix, blackhole, loss, delay, icmp_ratelimit, ports))
    except (lab.LabError, ValueError) as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    _print_status(prefix, as_json)


def _port_range(text: str) -> tuple[int, int]:
    first, sep, last = text.partition("-")
    try:
        return int(first), int(last if sep else first)
    except ValueError:
        raise ValueError(f"--srcport-range {text!r}: give FIRST-LAST, e.g. 49152-49152") from None


@lab_app.command("down")
def down(prefix: str = PrefixOption) -> None:
    """Remove everything the lab created (works after a crash: the state file lists it)."""
    lab = _lab()
    try:
        removed = lab.down(prefix)
    except ValueError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    write_line(f"removed {len(removed)} namespaces" + (f": {' '.join(removed)}" if removed else ""))


@lab_app.command("status")
def status(prefix: str = PrefixOption, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show the lab's namespaces, interfaces and addresses (exit 1 when it is not up)."""
    if not _print_status(prefix, as_json):
        raise typer.Exit(1)


def _print_status(prefix: str, as_json: bool) -> bool:
    lab = _lab()
    st = lab.status(prefix)
    if as_json:
        write_line(json.dumps(st, indent=1))
        return bool(st["up"])
    opts = st["options"] or {}
    faults = [k for k in ("blackhole", "loss", "delay_ms", "srcport_range") if opts.get(k)]
    write_line(f"lab {prefix!r}: {'up' if st['up'] else 'DOWN'}" + (f" ({', '.join(faults)})" if faults else ""))
    for node, info in st["nodes"].items():
        if info is None:
            write_line(f"  {node:3} (missing)")
            continue
        parts = [
            f"{name} {','.join(v['addresses']) or '-'} mtu {v['mtu']}"
            for name, v in info["interfaces"].items()
            if name != "lo" or len(v["addresses"]) > 1
        ]
        write_line(f"  {node:3} {info['namespace']:10} " + "; ".join(parts))
    return bool(st["up"])


@lab_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(
    node: str = typer.Argument(..., help="v1, r1, ra, rb, r3 or v2"),
    cmd: list[str] = typer.Argument(..., help="The command, after --"),
    prefix: str = PrefixOption,
) -> None:
    """Run CMD inside NODE's namespace: ``ipsotrace lab exec v1 -- ipsotrace trace 192.0.2.2 …``."""
    lab = _lab()
    from ipsotrace.lab import nsutil

    try:
        nsutil.setns(lab.ns_name(prefix, node))
    except nsutil.NamespaceError as exc:
        raise fail(f"{exc} (is the lab up? `ipsotrace lab up --prefix {prefix}`)", EXIT_USAGE) from None
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        raise fail(f"{cmd[0]}: {exc.strerror}", EXIT_USAGE) from None


@lab_app.command("capture")
def capture(
    node: str = typer.Argument(..., help="Node whose interface to record (v1, r1, ra, rb, r3, v2)"),
    iface: str = typer.Argument(..., help="Interface in that node (to-r1, vxlan100, …; see `lab status`)"),
    out: Path = typer.Option(..., "-o", "--output", help="pcap file to write"),
    count: int = typer.Option(0, "--count", "-c", help="Stop after N frames (0: no limit)"),
    duration: float = typer.Option(0.0, "--duration", "-d", help="Stop after S seconds (0: until Ctrl-C)"),
    prefix: str = PrefixOption,
) -> None:
    """Record real traffic on a lab interface into a pcap file, for tests and demos."""
    lab = _lab()
    from ipsotrace.lab import nsutil
    from ipsotrace.lab.capture import capture as run_capture

    try:
        n = run_capture(lab.ns_name(prefix, node), iface, out, count=count, duration=duration)
    except nsutil.NamespaceError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    stderr.print(f"{n} frames written to {out}", highlight=False)
    raise typer.Exit(EXIT_OK)


def register(app: typer.Typer) -> None:
    app.add_typer(lab_app)
