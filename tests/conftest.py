"""Shared fixtures.  Prerequisites (root, tshark, netns, servers) skip locally but FAIL in CI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skip when a prerequisite is missing on a developer machine; fail in CI (CI=true)."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {why}")
    pytest.skip(why)


@pytest.fixture
def tshark() -> str:
    path = shutil.which("tshark")
    require(path is not None, "tshark is not installed (apt-get install tshark)")
    assert path is not None
    return path
