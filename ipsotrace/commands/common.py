"""Options and plumbing shared by the CLI commands (terminal I/O lives here, not in the core)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from ipsotrace.dissectors.registry import DissectConfig, parse_port_spec
from ipsotrace.sources import CaptureError, CaptureFile, Frame, SourceStatus

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_DAMAGED = 3

stderr = Console(stderr=True, soft_wrap=True)

PortOption = typer.Option(
    None,
    "--port",
    "-p",
    help="Bind a UDP port to a decoder, PROTO=PORT (vxlan=8472, geneve=6082, none=4789 to unbind). Repeatable.",
)
NoHeuristicsOption = typer.Option(
    False, "--no-heuristics", help="Do not guess VXLAN/Geneve/GTP-U on UDP ports nobody configured."
)
NoReassembleOption = typer.Option(
    False,
    "--no-reassemble",
    help="Decode every frame on its own: no IP reassembly (a first fragment's payload is decoded as far as it goes).",
)


def dissect_config(ports: list[str] | None, no_heuristics: bool) -> DissectConfig:
    overrides: dict[int, str] = {}
    for spec in ports or []:
        try:
            port, proto = parse_port_spec(spec)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
        overrides[port] = proto
    return DissectConfig.from_overrides(overrides, heuristics=not no_heuristics)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def open_or_fail(path: Path) -> CaptureFile:
    try:
        return CaptureFile(path)
    except CaptureError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


class LazyProgress:
    """A rich progress bar on stderr that appears only once work has taken over a second."""

    def __init__(self, total_bytes: int, label: str, *, enabled: bool = True) -> None:
        self.total = total_bytes
        self.label = label
        self.enabled = enabled and stderr.is_terminal
        self.start = time.monotonic()
        self._progress: Progress | None = None
        self._task = TaskID(0)

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, done_bytes: int) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            if time.monotonic() - self.start < 1.0:
                return
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
                console=stderr,
                transient=True,
            )
            self._task = self._progress.add_task(self.label, total=self.total or None)
            self._progress.start()
        self._progress.update(self._task, completed=done_bytes)


def frames_with_progress(cap: CaptureFile, label: str) -> Iterator[Frame]:
    size = cap.path.stat().st_size if not cap.status.format.startswith("gzip") else 0
    with LazyProgress(size, label) as bar:
        for i, fr in enumerate(cap):
            if i & 0x3FF == 0:
                bar.update(cap.status.bytes_read)
            yield fr


def report_damage(cap: CaptureFile) -> bool:
    return report_status_damage(cap.status)


def report_status_damage(st: SourceStatus) -> bool:
    if st.damage is None:
        return False
    stderr.print(
        f"[bold yellow]warning:[/] {st.path}: {st.damage} at byte {st.damage_offset}; "
        f"analysed the {st.frames} frames before it",
        highlight=False,
    )
    return True


def write_line(text: str) -> None:
    try:
        sys.stdout.write(text + "\n")
    except BrokenPipeError:  # `ipsotrace dissect … | head` is normal use
        raise typer.Exit(EXIT_OK) from None
