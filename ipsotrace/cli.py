"""The ``ipsotrace`` command line.  Each command lives in :mod:`ipsotrace.commands`.

Exit codes (docs/cli.md): 0 success; 1 the command ran and found a problem it
was asked to detect (e.g. a probe target unreachable); 2 usage error or input
that cannot be read at all; 3 input damaged part-way (output covers what was
read before the damage).
"""

from __future__ import annotations

import typer

from ipsotrace.commands import analyze, dissect, explain, lab, probe

app = typer.Typer(
    name="ipsotrace",
    help="Troubleshoot IP overlays: decode, correlate and probe VXLAN, Geneve, GRE, ERSPAN, GTP-U, MPLS…",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for _module in (dissect, analyze, explain, lab, probe):
    _module.register(app)


def _version(value: bool) -> None:
    if value:
        from ipsotrace import __version__

        typer.echo(f"ipsotrace {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Troubleshoot IP overlays: decode, correlate and probe VXLAN, Geneve, GRE, ERSPAN, GTP-U, MPLS…"""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
