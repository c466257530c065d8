"""Analysis throughput: ipsotrace fast path vs scalar path vs tshark -T fields vs a plain dpkt loop.

Tools: ``fast`` (the default analyze engine with the findings' facts), ``fast-agg`` (the same without
the findings' facts), ``cli`` (the whole ``python -m ipsotrace analyze FILE --json`` command: start-up,
imports, findings and the JSON document included), ``scalar``, ``tshark``, ``dpkt``.

    python benchmarks/analyze.py               # 1 M packets, plus the 4 M peak-RSS run
    python benchmarks/analyze.py --quick       # 100 k packets, no 4 M run
    python benchmarks/analyze.py --packets 2000000 --sample 200000

Captures are generated once (benchmarks/captures.py) and cached in benchmarks/data/ (git-ignored).
Every measurement runs in its own process; packets/s are per CPU second of that process (user +
sys, children included for tshark), so other load on the machine barely moves them; wall-clock
rates are shown too.  tshark and dpkt read the whole file, as the fast path does (tshark gets slower
per packet as a file goes on: ~31 k pkt/s over the first 100 k packets of the 1 M VXLAN capture, ~16 k
over all of it; ``--slow-sample N`` limits them to the first N packets for a quicker, kinder run).
The scalar path runs on the first ``--sample`` packets (labelled "sample").  Each of the fast tools
runs ``--repeat`` times and keeps its fastest run; tshark and dpkt run ``--slow-repeat`` times
(default once).  Peak RSS is the measuring process's ``ru_maxrss``.

Not a timed test: it prints a table (benchmarks/README.md shows one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import captures  # noqa: E402  (the generator beside this script)

TSHARK_FIELDS = ["ip.src", "ip.dst", "udp.srcport", "vxlan.vni", "tcp.srcport", "tcp.dstport"]


# --- measurements (each runs in a child process) ------------------------------------------------
def _fast(path: str, limit: int) -> int:
    """What ``ipsotrace analyze`` does by default: the fast engine, feeding the findings' collector."""
    from ipsotrace.correlate import Correlator
    from ipsotrace.fast.engine import FastAnalyzer
    from ipsotrace.findings import Collector

    corr = Correlator()
    FastAnalyzer(corr, collector=Collector()).add_file(path)
    return corr.result.packets


def _fast_aggregates(path: str, limit: int) -> int:
    """The fast engine without the findings' facts (tunnels, flows and counters only)."""
    from ipsotrace.correlate import Correlator
    from ipsotrace.fast.engine import FastAnalyzer

    corr = Correlator()
    FastAnalyzer(corr).add_file(path)
    return corr.result.packets


def _scalar(path: str, limit: int) -> int:
    from itertools import islice

    from ipsotrace.correlate import Correlator
    from ipsotrace.decode import decode
    from ipsotrace.findings import Collector
    from ipsotrace.sources import CaptureFile

    corr = Correlator()
    coll = Collector()
    with CaptureFile(path) as cap:
        for pkt in decode(islice(cap, limit) if limit else cap):
            coll.add(pkt, corr.add(pkt))
    return corr.result.packets


def _cli(path: str, limit: int) -> int:
    """The whole command, as a user runs it: interpreter start, imports, analysis, findings, JSON."""
    args = [sys.executable, "-m", "ipsotrace", "analyze", path, "--json"]
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    return int(json.loads(out)["packets"])


def _tshark(path: str, limit: int) -> int:
    args = ["tshark", "-n", "-r", path, "-T", "fields"]
    for f in TSHARK_FIELDS:
        args += ["-e", f]
    if limit:
        args += ["-c", str(limit)]
    out = subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    return out.count(b"\n")


def _dpkt(path: str, limit: int) -> int:
    """A plain dpkt loop reading what tshark prints, plus a dict of flows (a minimal analysis)."""
    import dpkt

    flows: dict[tuple[object, ...], int] = {}
    n = 0
    with open(path, "rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            n += 1
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            vni = sport = dport = None
            outer = None
            if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
                outer = (ip.src, ip.dst)
                l4 = ip.data
                if isinstance(l4, dpkt.udp.UDP) and l4.dport in (4789, 8472) and len(l4.data) >= 8:
                    vni = struct.unpack("!I", l4.data[4:8])[0] >> 8
                    inner = dpkt.ethernet.Ethernet(l4.data[8:]).data
                    if isinstance(inner, (dpkt.ip.IP, dpkt.ip6.IP6)):
                        t = inner.data
                        if isinstance(t, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                            sport, dport = t.sport, t.dport
                        key = (vni, inner.src, inner.dst, inner.p, sport, dport)
                        flows[key] = flows.get(key, 0) + 1
            del outer
            if limit and n >= limit:
                break
    return n


TOOLS = {"fast": _fast, "fast-agg": _fast_aggregates, "cli": _cli, "scalar": _scalar, "tshark": _tshark, "dpkt": _dpkt}


_PRELOAD = {
    "fast": ("ipsotrace.fast.engine", "ipsotrace.correlate", "ipsotrace.findings"),
    "fast-agg": ("ipsotrace.fast.engine", "ipsotrace.correlate"),
    "scalar": ("ipsotrace.decode", "ipsotrace.correlate", "ipsotrace.sources", "ipsotrace.findings"),
    "dpkt": ("dpkt",),
    "tshark": (),
    "cli": (),
}


def measure(tool: str, path: str, limit: int) -> None:
    # libraries are loaded before the clock starts (tshark's own start-up is timed: it is a program)
    import importlib

    for mod in _PRELOAD[tool]:
        importlib.import_module(mod)
    if tool == "fast":
        from ipsotrace.dissectors.registry import DissectConfig
        from ipsotrace.fast.tables import tables_for

        tables_for(DissectConfig())
    t0 = os.times()
    w0 = time.perf_counter()
    packets = TOOLS[tool](path, limit)
    wall = time.perf_counter() - w0
    t1 = os.times()
    cpu = (t1.user - t0.user) + (t1.system - t0.system) + (t1.children_user - t0.children_user)
    cpu += t1.children_system - t0.children_system
    rss = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    )
    print(json.dumps({"packets": packets, "cpu": cpu, "wall": wall, "rss_mb": rss / 1024}))


def run(tool: str, path: Path, limit: int, repeat: int = 1) -> dict[str, float]:
    """The fastest of ``repeat`` runs (the least disturbed by whatever else the machine is doing)."""
    best: dict[str, float] | None = None
    for _ in range(max(1, repeat)):
        out = subprocess.run(
            [sys.executable, __file__, "--measure", tool, str(path), "--limit", str(limit)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        r: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        if best is None or r["cpu"] < best["cpu"]:
            best = r
    assert best is not None
    return best


# --- the table ----------------------------------------------------------------------------------
def _available(tool: str) -> bool:
    if tool == "tshark":
        return shutil.which("tshark") is not None
    if tool == "dpkt":
        try:
            import dpkt  # noqa: F401
        except ImportError:
            return False
    return True


def rows(
    kind: str, path: Path, n: int, sample: int, repeat: int, slow_sample: int = 0, slow_repeat: int = 1
) -> Iterator[tuple[str, str, dict[str, float]]]:
    for tool in ("fast", "fast-agg", "cli", "scalar", "tshark", "dpkt"):
        if not _available(tool):
            print(f"  ({tool} not installed: skipped)", file=sys.stderr)
            continue
        slow = tool in ("tshark", "dpkt")
        limit = 0 if tool in ("fast", "fast-agg", "cli") else min(slow_sample or n, n) if slow else min(sample, n)
        limit = 0 if limit == n else limit
        print(f"  {kind}: {tool} on {limit or n} packets…", file=sys.stderr, flush=True)
        r = run(tool, path, limit, slow_repeat if slow else repeat)
        yield tool, ("sample" if limit and limit < n else "all"), r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=1_000_000, help="packets per capture (default 1 M)")
    ap.add_argument("--sample", type=int, default=100_000, help="packets for the scalar path (default 100 k)")
    ap.add_argument("--slow-sample", type=int, default=0, help="packets for tshark and dpkt (default 0: all)")
    ap.add_argument("--slow-repeat", type=int, default=1, help="runs of tshark and dpkt (default 1)")
    ap.add_argument("--quick", action="store_true", help="100 k packets, 20 k sample, no 4 M memory run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement, the fastest is kept (default 3)")
    ap.add_argument("--data", type=Path, default=HERE / "data", help="where generated captures are cached")
    ap.add_argument("--measure", nargs=2, metavar=("TOOL", "FILE"), help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.measure:
        measure(a.measure[0], a.measure[1], a.limit)
        return
    n, sample = (100_000, 20_000) if a.quick else (a.packets, a.sample)
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    cpu = _cpu_model()
    if cpu:
        print(f"cpu: {cpu}")
    results: dict[str, dict[str, dict[str, float]]] = {}
    for kind in ("vxlan", "mixed"):
        print(f"generating/reusing {kind} capture of {n} packets…", file=sys.stderr, flush=True)
        path = captures.capture(a.data, kind, n)
        results[kind] = {}
        for tool, scope, r in rows(kind, path, n, sample, 1 if a.quick else a.repeat, a.slow_sample, a.slow_repeat):
            r["scope"] = scope  # type: ignore[assignment]
            results[kind][tool] = r
    print()
    print(f"{'capture':8} {'tool':7} {'packets':>9} {'scope':6} {'pkt/s cpu':>11} {'pkt/s wall':>11} "
          f"{'fast / tool':>11} {'peak RSS':>9}")  # fmt: skip
    for kind, res in results.items():
        fast = res["fast"]["packets"] / res["fast"]["cpu"]
        for tool, r in res.items():
            rate = r["packets"] / r["cpu"] if r["cpu"] else float("nan")
            wall = r["packets"] / r["wall"] if r["wall"] else float("nan")
            ratio = "" if tool == "fast" else f"{fast / rate:9.1f}x"
            print(f"{kind:8} {tool:7} {int(r['packets']):>9} {r['scope']!s:6} {rate:>11,.0f} {wall:>11,.0f} "
                  f"{ratio:>11} {r['rss_mb']:>7.0f}MB")  # fmt: skip
    if not a.quick:
        print()
        print("fast path peak RSS (same 2,000 flows, more packets):")
        for count in (1_000_000, 4_000_000):
            print(f"generating/reusing vxlan capture of {count} packets…", file=sys.stderr, flush=True)
            path = captures.capture(a.data, "vxlan", count)
            r = run("fast", path, 0, a.repeat)
            print(f"  {count:>9,} packets: {r['rss_mb']:.0f} MB, {r['packets'] / r['cpu']:,.0f} pkt/s cpu")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


if __name__ == "__main__":
    main()
