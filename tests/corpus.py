"""Compare ipsotrace's decode of the public corpus with tshark's ground truth.

The corpus lives in ``../shared/corpus/public`` (next to the repository); each
capture has a ``.truth.json`` made with ``tshark -T fields``.  For every frame we
rebuild the same field lists from our layer stack and compare them.

Run as a script for the figures: ``python tests/corpus.py [-v]``.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ipsotrace.decode import decode
from ipsotrace.dissectors.registry import DissectConfig
from ipsotrace.records import Packet
from ipsotrace.sources import CaptureFile

CORPUS = Path(
    os.environ.get("IPSOTRACE_CORPUS", Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "public")
)

COMPARED = (
    "ip.src",
    "ip.dst",
    "ipv6.src",
    "ipv6.dst",
    "udp.srcport",
    "udp.dstport",
    "vxlan.vni",
    "geneve.vni",
    "gre.key",
    "erspan.spanid",
    "gtp.teid",
    "mpls.label",
)


def tshark_view(pkt: Packet) -> dict[str, list[str]]:
    """Our layer stack expressed as the tshark fields of the truth files."""
    out: dict[str, list[str]] = {k: [] for k in COMPARED}
    for ly in pkt.layers:
        f = ly.fields
        p = ly.proto
        if p == "ipv4":
            out["ip.src"].append(f["src"])
            out["ip.dst"].append(f["dst"])
        elif p == "ipv6":
            out["ipv6.src"].append(f["src"])
            out["ipv6.dst"].append(f["dst"])
        elif p == "udp":
            out["udp.srcport"].append(str(f["sport"]))
            out["udp.dstport"].append(str(f["dport"]))
        elif p in ("vxlan", "vxlan-gpe"):
            out["vxlan.vni"].append(str(f["vni"]))
        elif p == "geneve":
            out["geneve.vni"].append(f"0x{f['vni']:06x}")
        elif p == "gre" and f.get("key") is not None:
            out["gre.key"].append(f"0x{f['key']:08x}")
        elif p == "erspan" and f.get("span_id") is not None:
            out["erspan.spanid"].append(str(f["span_id"]))
        elif p == "gtpu":
            out["gtp.teid"].append(f"0x{f['teid']:08x}")
        elif p == "mpls":
            out["mpls.label"].append(str(f["label"]))
    return out


def truth_files() -> list[Path]:
    return sorted(CORPUS.glob("*.truth.json"))


def config_for(truth: dict[str, object]) -> DissectConfig:
    """tshark needed extra options for some files; give ours the equivalent (if any)."""
    cfg = DissectConfig()
    args = truth["tshark"]["extra_args"]  # type: ignore[index]
    for a, b in itertools.pairwise(args):
        if a == "-d" and b.startswith("udp.port=="):
            port, proto = b[len("udp.port==") :].split(",")
            cfg.udp_ports[int(port)] = proto
    return cfg


@dataclass
class FileResult:
    name: str
    frames: int = 0
    equal: int = 0
    diffs: dict[int, dict[str, tuple[list[str], list[str]]]] = field(default_factory=dict)
    error: str | None = None


def compare_file(truth_path: Path) -> FileResult:
    truth = json.loads(truth_path.read_text())
    cap_path = truth_path.with_name(truth_path.name[: -len(".truth.json")])
    res = FileResult(cap_path.name)
    expected = {p["frame"]: p for p in truth["packets"]}
    with CaptureFile(cap_path) as cap:
        for pkt in decode(cap, config_for(truth)):
            res.frames += 1
            want = expected.get(pkt.frame)
            if want is None:
                res.diffs[pkt.frame] = {"frame": (["absent in tshark"], [])}
                continue
            got = tshark_view(pkt)
            d = {k: (want[k], got[k]) for k in COMPARED if want.get(k, []) != got[k]}
            if d:
                res.diffs[pkt.frame] = d
            else:
                res.equal += 1
    return res


def compare_all() -> Iterator[FileResult]:
    for t in truth_files():
        yield compare_file(t)


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    frames = equal = 0
    for r in compare_all():
        frames += r.frames
        equal += r.equal
        print(f"{r.name:<90} {r.equal:>5}/{r.frames:<5}")
        if verbose:
            for fr, d in list(r.diffs.items())[:3]:
                for k, (want, got) in d.items():
                    print(f"    frame {fr}: {k}: tshark={want} ours={got}")
    print(f"frames compared {frames}, equal {equal}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
