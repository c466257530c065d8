"""The lab and the probes on real namespaces and kernel VXLAN (root; fails in CI without it).

Everything runs through the CLI as a user would (``ipsotrace lab …``, ``ipsotrace lab exec v1 --
ipsotrace trace …``).  Each module run uses its own namespace prefix and removes its lab even when a
test fails.  Routers keep the kernel's default ICMP rate limit (a burst of 6, then one per second)
unless a test says otherwise, so the tool's retries are exercised.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

PATH_A = ["198.51.100.2", "198.51.100.6", "198.51.100.14", "192.0.2.2"]  # via ra, MTU 1500
PATH_B = ["198.51.100.2", "198.51.100.10", "198.51.100.18", "192.0.2.2"]  # via rb, MTU 1400
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
PROBE = ["192.0.2.2", "--vni", "100", "--inner-dst", "203.0.113.2"]
CLI = [sys.executable, "-m", "ipsotrace"]


def _prerequisites() -> None:
    require(os.geteuid() == 0, "lab tests need root (network namespaces)")
    require(shutil.which("ip") is not None, "iproute2 is not installed")
    require(shutil.which("nft") is not None, "nftables is not installed (apt-get install nftables)")
    require(os.path.isdir("/proc/sys/net/ipv4"), "no IPv4 sysctls")


class Lab:
    def __init__(self, prefix: str, state_dir: Path) -> None:
        self.prefix = prefix
        self.env = {**os.environ, "IPSOTRACE_LAB_STATE_DIR": str(state_dir)}
        self.options: tuple[str, ...] | None = None

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*CLI, *args], capture_output=True, text=True, env=self.env, timeout=timeout)
        if check and res.returncode not in (0, 1):
            raise AssertionError(f"{args} exited {res.returncode}: {res.stderr}")
        return res

    def up(self, *options: str) -> None:
        if self.options == options:
            return
        self.options = None
        self.cli("lab", "up", "--prefix", self.prefix, *options)
        self.options = options

    def down(self) -> None:
        self.cli("lab", "down", "--prefix", self.prefix, check=False)
        self.options = None

    def exec(self, node: str, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.cli("lab", "exec", "--prefix", self.prefix, node, "--", *cmd, check=False, timeout=timeout)

    def probe(self, command: str, *args: str) -> tuple[dict[str, Any], float]:
        t0 = time.monotonic()
        res = self.exec("v1", *CLI, command, *PROBE, *args, "--json")
        took = time.monotonic() - t0
        assert res.returncode in (0, 1), res.stderr
        assert "Traceback" not in res.stderr
        return json.loads(res.stdout), took

    def namespaces(self) -> list[str]:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(self.prefix)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    _prerequisites()
    handle = Lab(f"t{os.getpid() % 100000}-", tmp_path_factory.mktemp("labstate"))
    try:
        yield handle
    finally:
        handle.down()
        leftover = handle.namespaces()
        assert not leftover, f"lab down left {leftover}"


def hops(path: dict[str, Any]) -> list[str]:
    """Hop addresses (trace gives hop objects, pmtu and ping the addresses)."""
    return [h if isinstance(h, str) else h["address"] for h in path["hops"]]


def test_lab_topology(lab: Lab) -> None:
    lab.up()
    st = json.loads(lab.cli("lab", "status", "--prefix", lab.prefix, "--json").stdout)
    assert st["up"] is True
    nodes = st["nodes"]
    assert set(nodes) == {"v1", "r1", "ra", "rb", "r3", "v2"}
    assert nodes["v1"]["interfaces"]["to-r1"] == {"mtu": 1500, "addresses": ["198.51.100.1/30"]}
    assert nodes["r1"]["interfaces"]["to-rb"]["mtu"] == 1400
    assert nodes["rb"]["interfaces"]["to-r3"] == {"mtu": 1400, "addresses": ["198.51.100.17/30"]}
    assert "192.0.2.1/32" in nodes["v1"]["interfaces"]["lo"]["addresses"]
    assert nodes["v2"]["interfaces"]["vxlan100"]["addresses"] == ["203.0.113.2/24"]
    routes = subprocess.run(
        ["ip", "-n", f"{lab.prefix}r1", "route", "show", "192.0.2.2"], capture_output=True, text=True, check=True
    ).stdout
    assert "nexthop via 198.51.100.6" in routes and "nexthop via 198.51.100.10" in routes


def test_trace_finds_both_paths(lab: Lab) -> None:
    lab.up()
    r, took = lab.probe("trace", "--paths", "4")
    assert r["schema"] == "ipsotrace.trace/1"
    assert sorted(hops(p) for p in r["paths"]) == sorted([PATH_A, PATH_B])
    assert r["stopped"] == "mda" and r["balancing"] == "per-flow"
    for p in r["paths"]:
        assert p["reached"] is True
        last = p["hops"][-1]
        assert last["kind"] == "vtep" and last["address"] == "192.0.2.2"
        assert last["evidence"]["inner_reply_from"] == "203.0.113.2"
        first = p["hops"][0]
        assert first["evidence"]["quoted_vni"] == 100 and first["evidence"]["quoted_sport"] in p["sports"]
        assert all(h["rtt_ms"] is not None for h in p["hops"] if not h.get("inherited"))
    # each port was really mapped: re-tracing one port of each path follows that path (Paris)
    for p in r["paths"]:
        one, _ = lab.probe("trace", "--sport", str(p["sports"][-1]))
        assert [hops(q) for q in one["paths"]] == [hops(p)]
    print(f"trace --paths 4: {r['flows_probed']} flows, {r['probes_sent']} probes, {took:.1f} s")


def test_pmtu_with_ptb(lab: Lab) -> None:
    lab.up()
    r, took = lab.probe("pmtu", "--paths", "4")
    by_path = {tuple(hops(p)): p for p in r["paths"]}
    assert set(by_path) == {tuple(PATH_A), tuple(PATH_B)}
    a, b = by_path[tuple(PATH_A)], by_path[tuple(PATH_B)]
    assert (a["underlay_mtu"], a["overhead"], a["overlay_mtu"]) == (1500, VXLAN_OVERHEAD, 1500 - VXLAN_OVERHEAD)
    assert (b["underlay_mtu"], b["overhead"], b["overlay_mtu"]) == (1400, VXLAN_OVERHEAD, 1400 - VXLAN_OVERHEAD)
    assert a["ptbs"] == [] and a["blackhole"] is False
    assert b["blackhole"] is False
    assert [(p["from"], p["mtu"]) for p in b["ptbs"]] == [("198.51.100.2", 1400)]
    assert b["ptbs"][0]["quoted_sport"] == b["sport"] and b["sport"] in b["sports"]
    assert r["recommended_inner_mtu"] == 1350
    assert all(p["probes"] <= 40 for p in r["paths"])
    print(f"trace + pmtu, 2 paths: {took:.1f} s")


def test_pmtu_blackhole(lab: Lab) -> None:
    lab.up("--blackhole")
    r, took = lab.probe("pmtu", "--paths", "4")
    by_path = {tuple(hops(p)): p for p in r["paths"]}
    a, b = by_path[tuple(PATH_A)], by_path[tuple(PATH_B)]
    assert a["blackhole"] is False and a["underlay_mtu"] == 1500
    assert b["blackhole"] is True and b["ptbs"] == []
    assert b["underlay_mtu"] == 1400 and b["overlay_mtu"] == 1350
    assert b["blackhole_at"]["last_hop_reached"] == {"ttl": 1, "address": "198.51.100.2"}
    assert b["blackhole_at"]["first_hop_not_reached"] == {"ttl": 2, "address": "198.51.100.10"}
    assert b["blackhole_at"]["culprit"] == "198.51.100.2"
    assert b["elapsed_s"] <= 10.0 and b["probes"] <= 40
    assert r["blackhole"] is True
    print(f"black hole found in {b['elapsed_s']:.1f} s with {b['probes']} probes; whole run {took:.1f} s")


def test_ping_reports_configured_loss(lab: Lab) -> None:
    # 20 % forward loss on the rb path.  300 probes per path: the standard deviation of the
    # measured loss is 2.3 points, so the stated tolerance is 3 sigma = +-7 points.
    lab.up("--loss", "20", "--icmp-ratelimit", "0")
    r, _ = lab.probe("ping", "--paths", "2", "--count", "300", "--interval", "0.005")
    by_path = {tuple(p["hops"]): p for p in r["paths"]}
    a, b = by_path[tuple(PATH_A)], by_path[tuple(PATH_B)]
    assert a["sent"] == b["sent"] == 300
    assert a["loss_pct"] <= 2.0
    assert abs(b["loss_pct"] - 20.0) <= 7.0, b
    for p in (a, b):
        assert 0 < p["rtt_min_ms"] <= p["rtt_avg_ms"] <= p["rtt_max_ms"] and p["rtt_mdev_ms"] >= 0
        assert p["jitter_ms"] is not None


def _udp_flows(lab: Lab, n: int) -> None:
    """Real overlay traffic through the kernel VXLAN: n UDP sockets in v1, each its own inner flow."""
    code = (
        "import socket, time\n"
        f"socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range({n})]\n"
        "for s in socks: s.bind(('203.0.113.1', 0))\n"
        "for _ in range(3):\n"
        "    for s in socks: s.sendto(b'ipsotrace replay test', ('203.0.113.2', 9))\n"
        "    time.sleep(0.1)\n"
    )
    res = lab.exec("v1", sys.executable, "-c", code)
    assert res.returncode == 0, res.stderr


def test_replay_flow_follows_the_captured_path(lab: Lab, tmp_path: Path) -> None:
    lab.up()
    at_v1, at_ra = tmp_path / "v1.pcap", tmp_path / "ra.pcap"
    captures = [
        subprocess.Popen(
            [*CLI, "lab", "capture", "--prefix", lab.prefix, node, "to-r1", "-o", str(out), "-d", "4"],
            env=lab.env,
            stderr=subprocess.DEVNULL,
        )
        for node, out in (("v1", at_v1), ("ra", at_ra))
    ]
    try:
        time.sleep(0.8)
        _udp_flows(lab, 8)
    finally:
        for c in captures:
            c.wait(timeout=30)
    from ipsotrace.correlate.extract import view
    from ipsotrace.decode import decode
    from ipsotrace.sources import CaptureFile

    def flows(path: Path) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        with CaptureFile(path) as cap:
            for pkt in decode(cap):
                v = view(pkt)
                if v.hops and v.icmp is None and v.hops[-1].src == "192.0.2.1" and v.inner.dport == 9:
                    out.setdefault(v.inner.sport, set()).add(v.hops[-1].sport)
        return out

    seen, via_ra = flows(at_v1), flows(at_ra)
    assert len(seen) == 8
    both = {True: 0, False: 0}
    for inner_sport, outer in seen.items():
        (outer_sport,) = outer
        spec = f"{at_v1}:vni=100,src=203.0.113.1,dst=203.0.113.2,proto=udp,sport={inner_sport},dport=9"
        r, _ = lab.probe("trace", "--replay-flow", spec)
        assert r["replay"]["sport"] == outer_sport and r["replay"]["packets"] == 3
        (path,) = r["paths"]
        assert path["sports"] == [outer_sport]
        went_via_ra = inner_sport in via_ra
        assert hops(path) == (PATH_A if went_via_ra else PATH_B), (inner_sport, outer_sport)
        both[went_via_ra] += 1
    print(f"replayed 8 kernel flows: {both[True]} via ra, {both[False]} via rb")


def test_no_cap_net_raw_is_a_clean_error(lab: Lab) -> None:
    lab.up()
    require(shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
    res = lab.exec(
        "v1",
        "setpriv",
        "--bounding-set=-net_raw",
        "--inh-caps=-net_raw",
        *CLI,
        "trace",
        *PROBE,
    )
    assert res.returncode == 2, res
    assert "CAP_NET_RAW" in res.stderr and "Traceback" not in res.stderr


def test_delay_without_netem_is_explained(lab: Lab) -> None:
    prefix = f"d{os.getpid() % 100000}-"
    res = lab.cli("lab", "up", "--prefix", prefix, "--delay", "10", check=False)
    try:
        if res.returncode == 0:  # this kernel has netem
            st = json.loads(lab.cli("lab", "status", "--prefix", prefix, "--json").stdout)
            assert st["options"]["delay_ms"] == 10
        else:
            assert res.returncode == 2 and "netem" in res.stderr and "Traceback" not in res.stderr
            out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
            assert prefix not in out  # nothing left behind
    finally:
        lab.cli("lab", "down", "--prefix", prefix, check=False)


def test_down_after_a_crash_and_up_over_a_leftover(lab: Lab) -> None:
    prefix = f"c{os.getpid() % 100000}-"
    try:
        # a leftover lab (nobody ran `down`) does not break the next `up`
        lab.cli("lab", "up", "--prefix", prefix)
        assert lab.cli("lab", "up", "--prefix", prefix).returncode == 0
        # a crash in the middle of `up`: the state file lists a namespace and a veth still in
        # the root namespace (not moved yet); `down` removes both
        lab.cli("lab", "down", "--prefix", prefix)
        subprocess.run(["ip", "netns", "add", f"{prefix}v1"], check=True)
        veth = f"c{os.getpid() % 100000}x"
        subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", veth + "p"], check=True)
        state = {
            "schema": "ipsotrace.lab-state/1",
            "prefix": prefix,
            "namespaces": [f"{prefix}v1", f"{prefix}r1"],
            "root_links": [veth],
            "options": {},
            "complete": False,
            "created_by_pid": 1,
        }
        state_dir = Path(lab.env["IPSOTRACE_LAB_STATE_DIR"])
        (state_dir / f"lab-{prefix}.json").write_text(json.dumps(state))
        assert lab.cli("lab", "status", "--prefix", prefix, check=False).returncode == 1
        res = lab.cli("lab", "down", "--prefix", prefix)
        assert f"{prefix}v1" in res.stdout
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
        assert veth not in links
        assert not (state_dir / f"lab-{prefix}.json").exists()
    finally:
        lab.cli("lab", "down", "--prefix", prefix, check=False)
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert prefix not in out
