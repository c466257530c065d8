"""The one place where bindings live, and the decode loop that follows them.

How a layer is recognised (Ethertype, IP protocol, UDP port, link type, PPP
protocol, or a heuristic) maps to a dissector *here only*; dissector modules
never register themselves.  UDP port bindings are configuration
(:class:`DissectConfig`): ``--port vxlan=8472`` changes them per run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ipsotrace.dissectors import (
    arp,
    ayiya,
    dtls,
    erspan,
    esp,
    eth,
    geneve,
    gre,
    gtpu,
    icmp,
    icmpv6,
    ike,
    ipv4,
    ipv6,
    linklayers,
    llc,
    lwapp,
    mpls,
    nsh,
    pbb,
    ppp,
    tcp,
    teredo,
    udp,
    vlan,
    vxlan,
    vxlan_gpe,
    wccp,
    wireguard,
    wlan,
)
from ipsotrace.dissectors.base import Decoded, Dissector, Next
from ipsotrace.records import Anomaly, Layer, Packet

# --- dissectors by protocol name (the names used in JSON "proto") ----------------------
DISSECTORS: dict[str, Dissector] = {
    "eth": eth.dissect,
    "vlan": vlan.dissect,
    "sll": linklayers.dissect_sll,
    "sll2": linklayers.dissect_sll2,
    "null": linklayers.dissect_null,
    "ipv4": ipv4.dissect,
    "ipv6": ipv6.dissect,
    "udp": udp.dissect,
    "tcp": tcp.dissect,
    "arp": arp.dissect,
    "icmp": icmp.dissect,
    "icmpv6": icmpv6.dissect,
    "vxlan": vxlan.dissect,
    "vxlan-gpe": vxlan_gpe.dissect,
    "geneve": geneve.dissect,
    "nsh": nsh.dissect,
    "gtpu": gtpu.dissect,
    "teredo": teredo.dissect,
    "ayiya": ayiya.dissect,
    "esp": esp.dissect,
    "nat-t": esp.dissect_nat_t,  # UDP 4500: ESP, IKE behind the non-ESP marker, or keepalive
    "ike": ike.dissect,
    "wireguard": wireguard.dissect,
    "dtls": dtls.dissect,
    "lwapp": lwapp.dissect,
    "gre": gre.dissect,
    "erspan": erspan.dissect,
    "wccp": wccp.dissect,
    "mpls": mpls.dissect,
    "pwcw": mpls.dissect_control_word,
    "ppp": ppp.dissect,
    "pbb": pbb.dissect,
    "wlan": wlan.dissect,
    "amsdu": wlan.dissect_amsdu,
    "llc": llc.dissect,
}

# --- variants: names reached only through a binding; the layer keeps the protocol's name ---
VARIANTS: dict[str, tuple[str, Dissector]] = {
    # ERSPAN type I has no header to tell it from type II: GRE knows (no sequence number).
    "erspan-type-i": ("erspan", erspan.dissect_type_i),
}

# --- link types (pcap LINKTYPE_* / DLT_*) -------------------------------------------------
LINKTYPES: dict[int, str] = {
    0: "null",  # BSD loopback, host byte order
    1: "eth",
    12: "ipv4-or-ipv6",  # DLT_RAW on OpenBSD
    14: "ipv4-or-ipv6",  # DLT_RAW on BSD/OS
    101: "ipv4-or-ipv6",  # LINKTYPE_RAW
    108: "null",  # OpenBSD loopback, network byte order
    113: "sll",
    228: "ipv4",
    229: "ipv6",
    276: "sll2",
}

# --- Ethertypes (also GRE protocol types, which share the number space) -------------------
ETHERTYPES: dict[int, str] = {
    0x0800: "ipv4",
    0x0806: "arp",
    0x86DD: "ipv6",
    0x8100: "vlan",
    0x88A8: "vlan",
    0x9100: "vlan",
    0x6558: "eth",  # Transparent Ethernet Bridging (gretap, NVGRE)
    0x880B: "ppp",
    0x8847: "mpls",
    0x8848: "mpls",  # multicast
    0x88E7: "pbb",  # 802.1ah I-tag
    0x894F: "nsh",
}

# --- GRE protocol types that are not Ethertypes (GRE falls back to ETHERTYPES) ---------------
GRE_PROTOS: dict[int, str] = {
    0x88BE: "erspan",  # type II (type I, without GRE sequence number, is chosen by GRE)
    0x22EB: "erspan",  # type III
    0x883E: "wccp",
    # Aruba access points tunnel 802.11 frames with these types (Wireshark's list)
    **{ptype: "wlan" for ptype in range(0x8200, 0x8380, 0x10)},
}

# --- IP protocol numbers -------------------------------------------------------------------
IPPROTOS: dict[int, str] = {
    1: "icmp",
    4: "ipv4",
    6: "tcp",
    17: "udp",
    41: "ipv6",
    58: "icmpv6",
    47: "gre",
    50: "esp",
    137: "mpls",  # MPLS-in-IP (RFC 4023)
    143: "eth",  # Ethernet (RFC 8986, SRv6 End.DX2)
}

# --- PPP protocol numbers --------------------------------------------------------------------
PPP_PROTOS: dict[int, str] = {
    0x0021: "ipv4",
    0x0057: "ipv6",
    0x0281: "mpls",
    0x0283: "mpls",  # multicast
}

# --- NSH next protocols (IANA "NSH Next Protocol"; VXLAN-GPE's Next Protocol shares them) ---
NSH_PROTOS: dict[int, str] = {
    1: "ipv4",
    2: "ipv6",
    3: "eth",
    4: "nsh",
    5: "mpls",
}

# --- UDP ports: defaults; the user's configuration replaces or extends them ----------------
DEFAULT_UDP_PORTS: dict[int, str] = {
    4789: "vxlan",
    8472: "vxlan",  # Linux kernel default before IANA assigned 4789
    4754: "gre",  # GRE-in-UDP (RFC 8086)
    6635: "mpls",  # MPLS-in-UDP (RFC 7510)
    6081: "geneve",
    4790: "vxlan-gpe",
    2152: "gtpu",
    3544: "teredo",
    5072: "ayiya",
    500: "ike",
    4500: "nat-t",
    51820: "wireguard",
    12222: "lwapp",  # data: 802.11 frames
    12223: "lwapp",  # control
}

# --- heuristics: payload → confidence in [0, 1]; tried only on ports nobody configured -----
HEURISTICS: dict[str, Callable[[bytes, int, int], float]] = {
    # Ties go to the first entry: the tunnels whose inner packet is checked come first.
    "vxlan": vxlan.heuristic,
    "geneve": geneve.heuristic,
    "gtpu": gtpu.heuristic,
    "teredo": teredo.heuristic,
    "wireguard": wireguard.heuristic,
    "dtls": dtls.heuristic,
}
HEURISTIC_THRESHOLD = 0.6

MAX_DEPTH = 8
MAX_LAYERS = 64


@dataclass(slots=True)
class DissectConfig:
    """Per-run configuration of the bindings that users may change."""

    udp_ports: dict[int, str] = field(default_factory=lambda: dict(DEFAULT_UDP_PORTS))
    heuristics: bool = True
    max_depth: int = MAX_DEPTH

    @classmethod
    def from_overrides(cls, ports: Mapping[int, str] | None = None, *, heuristics: bool = True) -> DissectConfig:
        cfg = cls(heuristics=heuristics)
        for port, proto in (ports or {}).items():
            if proto == "none":
                cfg.udp_ports.pop(port, None)
            else:
                cfg.udp_ports[port] = proto
        return cfg


def parse_port_spec(spec: str) -> tuple[int, str]:
    """Parse ``vxlan=8472`` (or ``none=4789`` to unbind a port)."""
    proto, sep, port_s = spec.partition("=")
    proto = proto.strip().lower()
    if not sep or not port_s.strip().isdigit():
        raise ValueError(f"port binding {spec!r} is not PROTO=PORT (e.g. vxlan=8472)")
    port = int(port_s)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range 1-65535")
    if proto != "none" and proto not in DISSECTORS:
        raise ValueError(f"unknown protocol {proto!r}; known: {', '.join(sorted(DISSECTORS))}")
    return port, proto


@dataclass(slots=True)
class _Ctx:
    snaplen_cut: bool
    quoted: bool = False
    fragment: bool = False

    @property
    def partial(self) -> bool:
        return self.quoted or self.fragment


@dataclass(frozen=True, slots=True)
class Resume:
    """Where decoding goes on after a fragmented IP layer whose datagram is now whole.

    ``data`` is this frame's bytes up to the end of the fragmented IP header followed by the
    reassembled payload; the layers decoded from it are flagged ``reassembled``.
    """

    data: bytes
    off: int
    end: int
    next: Next | None
    encap: bool


#: called on a fragmented IP layer: False stops after it, True goes on per frame, a Resume goes
#: on in the reassembled datagram.  Arguments: the packet, the IP layer, the buffer it was read
#: from, the end of the bytes available to it, and the dissector's result.
FragmentHook = Callable[[Packet, Layer, bytes, int, Decoded], "Resume | bool"]

_IP_LAYERS = frozenset({"ipv4", "ipv6"})


def _is_fragment(f: Mapping[str, object]) -> bool:
    # an IPv6 atomic fragment (offset 0, no MF: RFC 6946) is a whole datagram
    return bool(f.get("mf") or f.get("frag_offset"))


def _resolve(nxt: Next, buf: bytes, off: int, end: int, cfg: DissectConfig, udp: Layer | None) -> str | None:
    table, key = nxt.table, nxt.key
    if table == "proto":
        return key if isinstance(key, str) else None
    if table == "ethertype" and isinstance(key, int):
        return ETHERTYPES.get(key)
    if table == "ipproto" and isinstance(key, int):
        return IPPROTOS.get(key)
    if table == "gre" and isinstance(key, int):
        return GRE_PROTOS.get(key) or ETHERTYPES.get(key)
    if table == "ppp" and isinstance(key, int):
        return PPP_PROTOS.get(key)
    if table == "nsh" and isinstance(key, int):
        return NSH_PROTOS.get(key)
    if table == "linktype" and isinstance(key, int):
        name = LINKTYPES.get(key)
        if name == "ipv4-or-ipv6":
            version = buf[off] >> 4 if off < end else 0
            return {4: "ipv4", 6: "ipv6"}.get(version)
        return name
    if table == "udp" and isinstance(key, tuple):
        return _resolve_udp(key, buf, off, end, cfg, udp)
    return None


def _resolve_udp(
    ports: tuple[int, int], buf: bytes, off: int, end: int, cfg: DissectConfig, udp: Layer | None
) -> str | None:
    sport, dport = ports
    # Like Wireshark: the lower port is tried first (servers sit on the low, well-known one).
    for port in sorted((sport, dport)):
        name = cfg.udp_ports.get(port)
        if name is not None:
            return name
    if not cfg.heuristics or off >= end:
        return None
    best, best_conf = None, 0.0
    for name, probe in HEURISTICS.items():
        conf = probe(buf, off, end)
        if conf > best_conf:
            best, best_conf = name, conf
    if best is not None and best_conf >= HEURISTIC_THRESHOLD:
        if udp is not None:
            udp.fields["heuristic"] = {"proto": best, "confidence": round(best_conf, 2)}
        return best
    return None


def dissect_frame(
    data: bytes,
    linktype: int,
    cfg: DissectConfig,
    *,
    frame: int = 0,
    ts_ns: int = 0,
    wirelen: int | None = None,
    interface: int = 0,
    fragments: FragmentHook | None = None,
) -> Packet:
    """Decode one frame into its layer stack.  Never raises on any input bytes.

    ``fragments`` is the reassembly stage (:mod:`ipsotrace.reassembly`): it is called on the
    first non-quoted IP layer that is a fragment (and again on such layers inside a reassembled
    payload) and says whether to stop there, go on per frame, or go on in reassembled bytes.
    """
    pkt = Packet(
        frame=frame,
        ts_ns=ts_ns,
        caplen=len(data),
        wirelen=len(data) if wirelen is None else wirelen,
        linktype=linktype,
        interface=interface,
    )
    ctx = _Ctx(snaplen_cut=pkt.caplen < pkt.wirelen)
    layers, anomalies = pkt.layers, pkt.anomalies
    nxt: Next | None = Next("linktype", linktype)
    off, end, depth = 0, len(data), 0
    last_udp: Layer | None = None
    reassembled = False
    if LINKTYPES.get(linktype) is None:
        anomalies.append(Anomaly("frame.unsupported-linktype", "frame", 0, f"link type {linktype}"))
        return pkt
    while nxt is not None and len(layers) < MAX_LAYERS:
        if off >= end and (reassembled or not (ctx.snaplen_cut and end >= pkt.caplen)):
            break
        # When the snaplen cut the frame right before a header, the dissector still runs on zero
        # bytes so that the packet says which header is missing ("udp.truncated … capture snaplen").
        name = _resolve(nxt, data, off, end, cfg, last_udp)
        if name is None:
            break
        name, dissector = VARIANTS.get(name) or (name, DISSECTORS.get(name))
        if dissector is None:
            break
        res = dissector(data, off, end, ctx)
        if isinstance(res, Anomaly):
            _record(pkt, res, ctx)
            break
        parent = len(layers) - 1 if layers else None
        layer = Layer(name, off, res.length, res.fields, parent, depth, ctx.quoted, reassembled)
        layers.append(layer)
        for a in res.anomalies:
            _record(pkt, a, ctx)
        if name == "udp":
            last_udp = layer
        encap, partial, payload_end, nxt, next_off = res.encap, res.partial, res.end, res.next, off + res.length
        if fragments is not None and not ctx.quoted and name in _IP_LAYERS and _is_fragment(res.fields):
            go = fragments(pkt, layer, data, end, res)
            if go is False:
                break
            if isinstance(go, Resume):
                # the rest of the stack comes from the reassembled datagram, not from this frame
                data, next_off, end, nxt, encap = go.data, go.off, go.end, go.next, go.encap
                partial, payload_end, reassembled = False, None, True
        if partial:
            ctx.fragment = True
        if res.quote:
            ctx.quoted = True
        elif encap and not ctx.quoted:
            depth += 1
            if depth > cfg.max_depth:
                anomalies.append(Anomaly("stack.too-deep", name, off, f"more than {cfg.max_depth} nested tunnels"))
                break
        if payload_end is not None:
            end = min(end, payload_end)
        off = next_off
    else:
        if nxt is not None and off < end:  # the loop ran out of layers, not of headers
            anomalies.append(Anomaly("stack.too-many-layers", "frame", off, f"more than {MAX_LAYERS} layers"))
    return pkt


def _record(pkt: Packet, a: Anomaly, ctx: _Ctx) -> None:
    if ctx.partial and a.kind.endswith((".truncated", ".length-exceeds-ip")):
        # RFC 792 quotes only 8 bytes past the IP header, and a first fragment carries only
        # the start of its payload: headers cut short there are normal, not anomalies.
        return
    if ctx.snaplen_cut and a.kind.endswith(".truncated"):
        a = Anomaly(a.kind, a.layer, a.offset, (a.detail + " (capture snaplen)").strip())
    pkt.anomalies.append(a)


def known_protocols() -> list[str]:
    return sorted(DISSECTORS)


__all__ = [
    "DEFAULT_UDP_PORTS",
    "DISSECTORS",
    "ETHERTYPES",
    "IPPROTOS",
    "Decoded",
    "DissectConfig",
    "FragmentHook",
    "Resume",
    "dissect_frame",
    "parse_port_spec",
]
