"""Property tests of the decode loop: no input makes it raise, and built stacks decode to what was built.

Tunnel modules (GRE, Geneve, GTP-U, MPLS, ERSPAN…) land independently: a stack that needs a
protocol the registry does not know yet is filtered out at run time (see ``tests.stacks.NEEDS``),
so these tests cover each encapsulation as soon as its dissector is registered.
"""

from __future__ import annotations

import functools
import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import registry
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.sources import CaptureError, CaptureFile
from tests.corpus import CORPUS
from tests.stacks import NEEDS, TUNNELS, Builder, Built, check_invariants, projection

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CFG = DissectConfig()
NO_HEUR = DissectConfig(heuristics=False)
CONFIGURED = frozenset(CFG.udp_ports)
#: the UDP port each tunnel is reached by; the registry must bind it for the stack to be expected
TUNNEL_PORT = {"vxlan": 4789, "geneve": 6081, "gtpu": 2152, "mpls-udp": 6635}
LINKTYPES = [*registry.LINKTYPES, 147, 65000]  # every supported link type plus unsupported ones


def _available(step: str) -> bool:
    port = TUNNEL_PORT.get(step)
    if port is not None and CFG.udp_ports.get(port) != NEEDS[step][0]:
        return False
    if step in ("gre", "nvgre", "erspan") and registry.IPPROTOS.get(47) != "gre":
        return False
    return all(name in registry.DISSECTORS for name in NEEDS[step])


AVAILABLE_TUNNELS = [t for t in TUNNELS if _available(t)]
LINKS = ["eth", "dot1q", "qinq", "raw"] + (["mpls-eth"] if _available("mpls-eth") else [])

# --- random bytes under every link type and after every binding ------------------------------


@FAST
@given(linktype=st.sampled_from(LINKTYPES), data=st.binary(max_size=400), cut=st.booleans())
def test_random_bytes_never_raise(linktype: int, data: bytes, cut: bool) -> None:
    pkt = dissect_frame(data, linktype, CFG, wirelen=len(data) + 100 if cut else None)
    check_invariants(pkt)


def _binding_prefixes() -> list[bytes]:
    """Valid outer headers that lead to every bound protocol, to be followed by random bytes."""
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    ip4 = IP(src="192.0.2.1", dst="192.0.2.2")
    out = [bytes(eth)[:12] + etype.to_bytes(2, "big") for etype in registry.ETHERTYPES]
    for proto in registry.IPPROTOS:
        out.append(bytes(eth / IP(src="192.0.2.1", dst="192.0.2.2", proto=proto, len=20))[:34])
        out.append(bytes(eth / IPv6(src="2001:db8::1", dst="2001:db8::2", nh=proto, plen=0))[:54])
    for port in [*CFG.udp_ports, 40000]:  # 40000: no binding, the heuristics get the payload
        out.append(bytes(eth / ip4 / UDP(sport=50000, dport=port, len=0))[:42])
    gre_types = [*registry.ETHERTYPES, *getattr(registry, "GRE_PROTOS", {})]
    if "gre" in registry.DISSECTORS:
        out += [
            bytes(eth / IP(src="192.0.2.1", dst="192.0.2.2", proto=47, len=0))[:34] + b"\0\0" + t.to_bytes(2, "big")
            for t in gre_types
        ]
    return out


PREFIXES = _binding_prefixes()


@FAST
@given(prefix=st.sampled_from(PREFIXES), data=st.binary(max_size=300))
def test_random_payload_after_every_binding_never_raises(prefix: bytes, data: bytes) -> None:
    frame = prefix + data
    # IP/UDP lengths in the prefix are 0 or short on purpose: GSO rules and length checks run too
    check_invariants(dissect_frame(frame, 1, CFG))
    check_invariants(dissect_frame(frame, 1, CFG, wirelen=len(frame) + 64))


# --- random truncation of real and built packets ------------------------------------------------


@functools.cache
def corpus_frames() -> list[tuple[str, int, bytes]]:
    frames: list[tuple[str, int, bytes]] = []
    if not CORPUS.is_dir():
        return frames
    for path in sorted(CORPUS.glob("*.pcap*")):
        if path.name.endswith(".json"):
            continue
        try:
            with CaptureFile(path) as cap:
                for fr in cap:
                    if fr.number > 25:
                        break
                    frames.append((f"{path.name}#{fr.number}", fr.linktype, fr.data[:4096]))
        except CaptureError:
            continue
    return frames


def _ip_pair(v6: bool, n: int) -> tuple[str, str]:
    return (f"2001:db8:{n}::1", f"2001:db8:{n}::2") if v6 else (f"192.0.2.{n}", f"198.51.100.{n}")


@functools.cache
def built_packets() -> list[tuple[str, int, bytes]]:
    """One packet per encapsulation scapy can build (and per underlay version), plus ICMP quotes."""
    out: list[tuple[str, int, bytes]] = []
    for tunnel in AVAILABLE_TUNNELS:
        for v6_outer, v6_inner in ((False, False), (True, False), (False, True)):
            b = Builder().ether().ip(*_ip_pair(v6_outer, 1))
            _tunnel(b, tunnel, v6_inner, entropy=50001, tid=4242)
            b.ip(*_ip_pair(v6_inner, 2)).tcp(40000, 80)
            out.append((f"{tunnel}-{v6_outer}-{v6_inner}", 1, b.payload(b"data" * 10).raw()))
    for link in LINKS:
        b = Builder()
        _link(b, link, 11, 12, [16, 17])
        b.ip(*_ip_pair(False, 3)).udp(1000, 2000)
        out.append((f"link-{link}", 101 if link == "raw" else 1, b.payload(b"x").raw()))
    vx = Builder().ether().ip("192.0.2.1", "192.0.2.2").udp(50000, 4789).vxlan(100).ether()
    quoted = vx.ip("203.0.113.10", "203.0.113.20").tcp(40000, 80).payload(b"q" * 1400).raw()[14:]
    router = Ether(src="02:00:00:00:00:09", dst="02:00:00:00:00:01") / IP(src="198.51.100.1", dst="192.0.2.1")
    out.append(("icmp-frag-needed", 1, bytes(router / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(quoted[:548]))))
    vx6 = Builder().ether().ip("2001:db8::1", "2001:db8::2").udp(50000, 4789).vxlan(200).ether()
    quoted6 = vx6.ip("203.0.113.10", "203.0.113.20").tcp(40000, 80).payload(b"q" * 1400).raw()[14:]
    r6 = Ether(src="02:00:00:00:00:09", dst="02:00:00:00:00:01") / IPv6(src="2001:db8::9", dst="2001:db8::1")
    out.append(("icmpv6-ptb", 1, bytes(r6 / ICMPv6PacketTooBig(mtu=1280) / Raw(quoted6[:1232]))))
    return out


def _check_truncation(linktype: int, data: bytes, cut: int) -> None:
    full = dissect_frame(data, linktype, NO_HEUR)
    part = dissect_frame(data[:cut], linktype, NO_HEUR, wirelen=len(data))
    check_invariants(part)
    check_invariants(dissect_frame(data[:cut], linktype, CFG))  # same bytes, not marked as snaplen-cut
    # A snaplen cut only removes layers from the end: every layer before the last is as in full.
    assert len(part.layers) <= len(full.layers)
    for got, want in zip(part.layers[:-1], full.layers, strict=False):
        assert (got.proto, got.offset, got.length) == (want.proto, want.offset, want.length)
    if part.layers:
        assert (part.layers[-1].proto, part.layers[-1].offset) == (
            full.layers[len(part.layers) - 1].proto,
            full.layers[len(part.layers) - 1].offset,
        )


@FAST
@given(idx=st.integers(min_value=0), frac=st.floats(min_value=0, max_value=1))
def test_truncated_built_packets(idx: int, frac: float) -> None:
    built = built_packets()
    _name, linktype, data = built[idx % len(built)]
    _check_truncation(linktype, data, int(len(data) * frac))


@FAST
@given(idx=st.integers(min_value=0), frac=st.floats(min_value=0, max_value=1))
def test_truncated_corpus_packets(idx: int, frac: float) -> None:
    frames = corpus_frames()
    if not frames:  # the corpus sits outside the repository; test_corpus_present reports its absence
        return
    _name, linktype, data = frames[idx % len(frames)]
    _check_truncation(linktype, data, int(len(data) * frac))


def test_every_built_packet_decodes_cleanly() -> None:
    for name, linktype, data in built_packets():
        pkt = dissect_frame(data, linktype, CFG)
        check_invariants(pkt)
        assert pkt.anomalies == [], (name, pkt.anomalies)


# --- random layer stacks decode back to what was built --------------------------------------

ports = st.integers(1, 65535).filter(lambda p: p not in CONFIGURED)
entropy_ports = st.integers(49152, 65535).filter(lambda p: p not in CONFIGURED)
labels = st.lists(st.integers(16, 2**20 - 1), min_size=1, max_size=3)


def _link(b: Builder, link: str, vid1: int, vid2: int, mpls: list[int]) -> None:
    if link == "eth":
        b.ether()
    elif link == "dot1q":
        b.ether().vlan(vid1)
    elif link == "qinq":
        b.ether().vlan(vid1, outer=True).vlan(vid2)
    elif link == "mpls-eth":
        b.ether(0x8847).mpls(mpls)


def _tunnel(b: Builder, tunnel: str, next_v6: bool, entropy: int, tid: int, mpls: list[int] | None = None) -> None:
    if tunnel == "vxlan":
        b.udp(entropy, 4789).vxlan(tid & 0xFFFFFF).ether()
    elif tunnel == "geneve":
        b.udp(entropy, 6081).geneve(tid & 0xFFFFFF).ether()
    elif tunnel == "gre":
        b.gre(tid, 0x86DD if next_v6 else 0x0800)
    elif tunnel == "nvgre":
        b.gre(tid, 0x6558).ether()
    elif tunnel == "erspan":
        b.erspan(tid & 0x3FF).ether()
    elif tunnel == "gtpu":
        b.udp(2152, 2152).gtpu(tid)
    elif tunnel == "mpls-udp":
        b.udp(entropy, 6635).mpls(mpls or [(tid & 0xFFFFF) | 16])
    # ipip: the inner IP header follows directly


@st.composite
def random_stacks(draw: st.DrawFn) -> tuple[Built, int]:
    link = draw(st.sampled_from(LINKS))
    tunnels = draw(st.lists(st.sampled_from(AVAILABLE_TUNNELS), max_size=4)) if AVAILABLE_TUNNELS else []
    v6 = draw(st.lists(st.booleans(), min_size=len(tunnels) + 1, max_size=len(tunnels) + 1))
    b = Builder()
    _link(b, link, draw(st.integers(1, 4094)), draw(st.integers(1, 4094)), draw(labels))
    for i, tunnel in enumerate(tunnels):
        b.ip(*_random_pair(draw, v6[i]))
        _tunnel(b, tunnel, v6[i + 1], draw(entropy_ports), draw(st.integers(0, 2**32 - 1)), draw(labels))
    b.ip(*_random_pair(draw, v6[-1]))
    if draw(st.booleans()):
        b.udp(draw(ports), draw(ports))
    else:
        b.tcp(draw(st.integers(1, 65535)), draw(st.integers(1, 65535)))
    return b.payload(), 101 if link == "raw" else 1


def _random_pair(draw: st.DrawFn, v6: bool) -> tuple[str, str]:
    if v6:
        lo = st.integers(0, 2**96 - 1)
        return tuple(str(_v6(0x20010DB8 << 96 | draw(lo))) for _ in range(2))  # type: ignore[return-value]
    nets = st.sampled_from(["192.0.2.", "198.51.100.", "203.0.113."])
    return tuple(draw(nets) + str(draw(st.integers(0, 255))) for _ in range(2))  # type: ignore[return-value]


def _v6(n: int) -> str:
    return str(ipaddress.IPv6Address(n))


@FAST
@given(stack=random_stacks())
def test_random_stacks_decode_to_what_was_built(stack: tuple[Built, int]) -> None:
    built, linktype = stack
    pkt = dissect_frame(built.raw(), linktype, CFG)
    check_invariants(pkt)
    assert projection(pkt) == built.expect
    assert pkt.anomalies == []
    tunnels = [ly for ly in pkt.layers if "tunnel_id" in ly.fields]
    # each tunnel header sits at the depth of its outer headers; what it carries is one deeper
    for ly in tunnels:
        inner = pkt.layers[pkt.layers.index(ly) + 1 :]
        assert all(x.depth > ly.depth for x in inner if x.proto in ("ipv4", "ipv6"))


def test_available_tunnels_are_reported() -> None:
    # Not a tautology: vxlan and IP-in-IP are base protocols and must always be covered.
    assert {"vxlan", "ipip"} <= set(AVAILABLE_TUNNELS)
