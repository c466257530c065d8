"""README.md's two set-up commands stay true: CI runs the README's test command, the demo capture exists."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def _sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_ci_runs_the_readme_test_command() -> None:
    ci_lines = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    test_cmd = ci_lines[-1].strip()
    assert "pytest" in test_cmd
    assert any(test_cmd == block.strip() for block in _sh_blocks()), f"README lacks {test_cmd!r}"


def test_main_command_uses_a_shipped_capture() -> None:
    main = next(b.strip() for b in _sh_blocks() if "ipsotrace analyze" in b)
    capture = re.search(r"ipsotrace analyze (\S+)", main)
    assert capture is not None
    assert (ROOT / capture.group(1)).is_file()
