"""``ipsotrace dissect`` end to end, in a subprocess: JSON lines, exit codes, no traceback ever."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from ipsotrace.records import DISSECT_SCHEMA
from tests.sources import pcapbuild as pb

OUTER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="192.0.2.1", dst="192.0.2.2")
INNER = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / IP(src="203.0.113.10", dst="203.0.113.20")
FRAMES = [
    bytes(OUTER / UDP(sport=50000 + i, dport=4789) / VXLAN(flags=8, vni=100 * (i + 1)) / INNER / UDP() / Raw(b"x"))
    for i in range(3)
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ipsotrace", *args], capture_output=True, text=True, timeout=60, check=False
    )


def _err(res: subprocess.CompletedProcess[str]) -> str:
    """stderr with rich's line wrapping undone."""
    return " ".join(res.stderr.split())


def _no_traceback(res: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout


def test_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "ok.pcap"
    path.write_bytes(pb.pcap([(1_700_000_000, 500_000, d) for d in FRAMES]))
    res = _run("dissect", str(path), "--json")
    _no_traceback(res)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 3
    objs = [json.loads(line) for line in lines]
    assert [o["frame"] for o in objs] == [1, 2, 3]
    assert all(o["schema"] == DISSECT_SCHEMA for o in objs)
    assert objs[0]["ts"] == 1_700_000_000.5
    for i, o in enumerate(objs):
        assert [ly["proto"] for ly in o["layers"]] == ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4", "udp"]
        assert o["layers"][3]["vni"] == 100 * (i + 1)
        assert o["layers"][2]["sport"] == 50000 + i
        assert o["layers"][4]["depth"] == 1 and o["layers"][4]["parent"] == 3


def test_port_override(tmp_path: Path) -> None:
    path = tmp_path / "p.pcap"
    path.write_bytes(pb.pcap([(1, 0, FRAMES[0])]))
    res = _run("dissect", str(path), "--json", "--port", "none=4789", "--no-heuristics")
    assert res.returncode == 0, res.stderr
    assert [ly["proto"] for ly in json.loads(res.stdout)["layers"]] == ["eth", "ipv4", "udp"]
    res = _run("dissect", str(path), "--port", "bogus")
    _no_traceback(res)
    assert res.returncode == 2
    assert "PROTO=PORT" in _err(res)


def test_truncated_file_exit_3_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pb.pcap([(1, 0, d) for d in FRAMES])[:-10])
    res = _run("dissect", str(path), "--json")
    _no_traceback(res)
    assert res.returncode == 3
    assert len(res.stdout.splitlines()) == 2
    assert "warning" in _err(res) and "file ends inside record 3" in _err(res)
    assert "analysed the 2 frames before it" in _err(res)


def test_not_a_capture_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not packets\n")
    res = _run("dissect", str(path), "--json")
    _no_traceback(res)
    assert res.returncode == 2
    assert res.stdout == ""
    assert _err(res).startswith("error:") and "not a pcap or pcapng file" in _err(res)
    res = _run("dissect", str(tmp_path / "missing.pcap"))
    _no_traceback(res)
    assert res.returncode == 2


def test_text_output(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    path.write_bytes(pb.pcap([(1, 0, d) for d in FRAMES]))
    res = _run("dissect", str(path), "-c", "1")
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) == 1
    assert "vni=100" in res.stdout and "203.0.113.10" in res.stdout
    res = _run("dissect", str(path), "-c", "-1")  # used to print one frame
    _no_traceback(res)
    assert res.returncode == 2 and res.stdout == ""
