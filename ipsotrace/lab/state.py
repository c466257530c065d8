"""The state file: what a lab created, written *before* creating it, so ``lab down`` works after a crash."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_SCHEMA = "ipsotrace.lab-state/1"
PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,15}$")


def state_dir() -> Path:
    return Path(os.environ.get("IPSOTRACE_LAB_STATE_DIR", "/run/ipsotrace"))


def check_prefix(prefix: str) -> str:
    if not PREFIX_RE.match(prefix):
        raise ValueError(f"lab prefix {prefix!r}: use 1-16 characters from a-z 0-9 _ - (e.g. 'ipt-')")
    return prefix


@dataclass
class LabState:
    prefix: str
    namespaces: list[str] = field(default_factory=list)
    #: veth ends created in the caller's namespace and not yet moved (left behind by a crash mid-build)
    root_links: list[str] = field(default_factory=list)
    options: dict[str, object] = field(default_factory=dict)
    complete: bool = False
    created_by_pid: int = 0

    @property
    def path(self) -> Path:
        return state_path(self.prefix)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"schema": STATE_SCHEMA, **asdict(self)}, indent=1))
        tmp.replace(self.path)

    @classmethod
    def load(cls, prefix: str) -> LabState | None:
        p = state_path(prefix)
        try:
            raw = json.loads(p.read_text())
        except (OSError, ValueError):
            return None
        raw.pop("schema", None)
        try:
            return cls(**raw)
        except TypeError:
            return None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def state_path(prefix: str) -> Path:
    return state_dir() / f"lab-{prefix}.json"


def known_prefixes() -> list[str]:
    d = state_dir()
    if not d.is_dir():
        return []
    return sorted(p.name[4:-5] for p in d.glob("lab-*.json"))
