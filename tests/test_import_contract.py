"""House rule 5: the core never imports the CLI, a sink, the TUI or a terminal/store client."""

from __future__ import annotations

import json
import subprocess
import sys

CORE = [
    "ipsotrace.records",
    "ipsotrace.decode",
    "ipsotrace.sources",
    "ipsotrace.dissectors",
    "ipsotrace.dissectors.registry",
]
OPTIONAL_CORE = ["ipsotrace.correlate", "ipsotrace.findings", "ipsotrace.probe", "ipsotrace.fast"]
FORBIDDEN_PREFIXES = (
    "ipsotrace.cli",
    "ipsotrace.commands",
    "ipsotrace.sinks",
    "ipsotrace.tui",
    "typer",
    "rich",
    "textual",
    "influxdb_client",
    "sqlite3",
)


def _imports(module: str) -> list[str]:
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out))


def _present(module: str) -> bool:
    code = f"import importlib.util, sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)"
    return subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_core_imports_no_front_end_or_store() -> None:
    modules = CORE + [m for m in OPTIONAL_CORE if _present(m)]
    for module in modules:
        bad = [m for m in _imports(module) if m.startswith(FORBIDDEN_PREFIXES)]
        assert not bad, f"{module} pulls in {bad}"


def test_no_generic_top_level_packages_installed() -> None:
    code = (
        "import importlib.util; "
        "print(importlib.util.find_spec('dissectors') is None and importlib.util.find_spec('tui') is None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.strip() == "True"
