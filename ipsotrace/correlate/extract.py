"""From a decoded packet's layer stack to the flat values correlation needs.

This is the boundary between the dissectors' layer stacks and the aggregates:
everything :class:`~ipsotrace.correlate.correlator.Correlator` uses about a
packet is one :class:`View` of plain values (strings, ints, tuples), the same
columns a vectorised path produces from arrays.

Conventions (docs/analyze-schema.md):

- A **tunnel boundary** is a layer after which the depth grows (the dissector
  flagged an encapsulation), or the last layer when it is a tunnel header
  whose payload was not decoded.  Inside ICMP quotes depth does not grow, so
  there a boundary is a tunnel protocol or IP-in-IP followed by an IP header.
- A tunnel **hop** is described by the outer header that carries it: the
  nearest IP header before the boundary (Ethernet addresses when there is
  none, as for MPLS over Ethernet), the UDP ports between them, and the tunnel
  ID of the boundary (or of the nearest header before it that has one: a GRE
  key under ERSPAN).  IP-in-IP is named ``ipip``, ``6in4``, ``4in6``, ``6in6``;
  Ethernet straight in IP (protocol 143) ``srv6`` over IPv6 (SRv6 L2 services,
  RFC 8986) and ``eth-in-ipv4`` over IPv4.
- GRE with a key carrying Ethernet (0x6558) is read as **NVGRE** (RFC 7637):
  encapsulation ``nvgre``, tunnel ID the 24-bit VSID, and the 8-bit FlowID as
  the hop's entropy in ``sport``, where UDP tunnels have their source port.
  ``gre_key_as_id=True`` keeps it ``gre`` with the whole key as ID (gretap
  with an opaque key: the two look the same on the wire).
- A tunnel header straight after another (NSH after VXLAN-GPE) has no outer
  header of its own: it belongs to the tunnel before it, which names the hop.
- With nested tunnels the **innermost** hop is the flow's tunnel and its outer
  header the flow's path; the hops around it are the path's ``via`` chain.
"""

from __future__ import annotations

from typing import NamedTuple

from ipsotrace.records import Layer, Packet

#: Layer names that are tunnel headers even where depth cannot tell (quotes, undecoded payloads).
TUNNEL_PROTOS = frozenset(
    {"vxlan", "vxlan-gpe", "geneve", "gre", "nvgre", "erspan", "gtpu", "mpls", "teredo", "ayiya", "lwapp", "pbb"}
)
IP_PROTOS = ("ipv4", "ipv6")
ICMP_ERROR_KINDS = frozenset(
    {"dest-unreachable", "frag-needed", "packet-too-big", "time-exceeded", "parameter-problem", "source-quench"}
)
_IPIP_NAMES = {
    ("ipv4", 4): "ipip",
    ("ipv4", 41): "6in4",
    ("ipv6", 4): "4in6",
    ("ipv6", 41): "6in6",
    ("ipv4", 143): "eth-in-ipv4",
    ("ipv6", 143): "srv6",
}
_IPIP_INNER = {4: IP_PROTOS, 41: IP_PROTOS, 143: ("eth",)}  # what the inner header of IP-in-IP may be
_MAYBE_BOUNDARY = TUNNEL_PROTOS | set(IP_PROTOS)
_TRANSPORTS = frozenset({"tcp", "udp", "icmp", "icmpv6", "sctp"})


class Hop(NamedTuple):
    """One tunnel level: the tunnel and the outer header that carried it."""

    encap: str
    src: str
    dst: str
    tunnel_id: int | None  # NVGRE: the VSID
    ipproto: int  # outer IP protocol (17 UDP, 47 GRE, 4 IP-in-IP...), 0 without an IP header
    # the hop's ECMP entropy: the outer UDP source port, or NVGRE's FlowID (RFC 7637), 0 if none
    sport: int
    dport: int  # outer UDP destination port, 0 when the tunnel does not ride on UDP
    flow_label: int  # outer IPv6 flow label (ECMP entropy on IPv6 underlays), 0 for IPv4
    ttl: int  # -1 when there is no outer IP header
    dscp: int
    ecn: int
    size: int  # outer IP packet length (bytes on the underlay at layer 3)

    @property
    def tunnel_key(self) -> tuple[str, str, str, int | None]:
        return (self.encap, self.src, self.dst, self.tunnel_id)

    @property
    def path_key(self) -> tuple[str, str, int, int, int, int]:
        return (self.src, self.dst, self.ipproto, self.sport, self.dport, self.flow_label)


class Inner(NamedTuple):
    """The innermost header stack: the 5-tuple and the per-packet facts flows keep."""

    l3: str  # "ipv4", "ipv6", "eth" (no IP: addresses are MACs, proto the Ethertype) or "" (nothing decoded)
    src: str
    dst: str
    proto: int  # IP protocol, or Ethertype for l3 == "eth"
    sport: int  # TCP/UDP/SCTP ports; ICMP: type and code
    dport: int
    size: int  # inner IP packet length
    df: bool  # IPv4 DF bit; always true for IPv6 (routers never fragment it)
    fragment: bool
    ttl: int
    dscp: int
    ecn: int
    tcp_flags: int  # -1 when not TCP
    tcp_seq: int
    tcp_len: int  # sequence space used: payload + SYN + FIN
    mss: int  # MSS option, 0 when absent


class IcmpError(NamedTuple):
    """An ICMP/ICMPv6 error and what its quote says about the packet that caused it."""

    reporter: str  # source address of the error (the router that sent it)
    proto: str  # "icmp" or "icmpv6"
    kind: str
    type: int
    code: int
    mtu: int  # frag-needed / packet-too-big next-hop MTU, 0 otherwise
    quoted_hops: tuple[Hop, ...]  # tunnels in the quote, outer first
    quoted_path: tuple[str, str, int, int, int, int] | None  # the quoted outermost header's path key
    quoted_inner: Inner | None  # the quoted packet's innermost 5-tuple, when the quote reaches it


class View(NamedTuple):
    hops: tuple[Hop, ...]  # outer first; empty for untunnelled packets
    inner: Inner
    icmp: IcmpError | None


def _ip_size(ly: Layer, wire_rest: int) -> int:
    f = ly.fields
    if ly.proto == "ipv4":
        total = f.get("total_length") or 0
        return int(total) if total else wire_rest
    if f.get("jumbo"):
        return int(f.get("jumbo_length") or wire_rest)
    return 40 + int(f.get("payload_length") or 0)


def _is_boundary(layers: list[Layer], i: int, stop: int, quoted: bool) -> bool:
    ly = layers[i]
    nxt = layers[i + 1] if i + 1 < stop else None
    if not quoted and nxt is not None and nxt.depth > ly.depth:
        return True
    p = ly.proto
    if p in IP_PROTOS:
        # IP-in-IP whose inner header did not decode (cut short) is still a tunnel
        inner = _IPIP_INNER.get(_ip_proto(ly))
        return inner is not None and (nxt is None or nxt.proto in inner) and not ly.fields.get("frag_offset")
    if p == "mpls":
        return bool(ly.fields.get("s")) or nxt is None or nxt.proto != "mpls"
    # a chain of tunnel headers (GRE then ERSPAN, VXLAN-GPE then NSH) is one tunnel: the last
    # one is the boundary; a tunnel header whose dissector did not flag the payload still is one
    return p in TUNNEL_PROTOS and (nxt is None or nxt.proto not in TUNNEL_PROTOS)


def _ip_proto(ly: Layer) -> int:
    return int(ly.fields.get("protocol" if ly.proto == "ipv4" else "next_header", 0))


def _hop(pkt: Packet, layers: list[Layer], start: int, b: int, gre_key_as_id: bool) -> Hop:
    """The hop whose boundary is ``layers[b]``, its outer headers in ``layers[start:b+1]``.

    Header fields are ints as the dissectors unpacked them (no per-packet ``int()`` here or in
    :func:`_ip_inner`: this is the scalar hot path).
    """
    bl = layers[b]
    bf = bl.fields
    tid = bf.get("tunnel_id")
    encap = bl.proto
    entropy = 0
    if encap == "gre" and not gre_key_as_id and "vsid" in bf:
        encap = "nvgre"
        tid = bf["vsid"]
        entropy = bf["flow_id"]
    elif encap in IP_PROTOS:
        encap = _IPIP_NAMES.get((encap, _ip_proto(bl)), encap)
    ip_i = -1
    udp: Layer | None = None
    eth: Layer | None = None
    for j in range(b, start - 1, -1):
        ly = layers[j]
        p = ly.proto
        if p in IP_PROTOS:
            ip_i = j
            break
        if p == "udp" and udp is None:
            udp = ly
        elif p == "eth" and eth is None:
            eth = ly
        elif tid is None and j < b:
            tid = ly.fields.get("tunnel_id")
    if ip_i < 0:
        src = str(eth.fields.get("src", "")) if eth else ""
        dst = str(eth.fields.get("dst", "")) if eth else ""
        return Hop(encap, src, dst, tid, 0, 0, 0, 0, -1, 0, 0, pkt.wirelen - bl.offset)
    ip = layers[ip_i]
    f = ip.fields
    is4 = ip.proto == "ipv4"
    if udp is not None:
        uf = udp.fields
        entropy, dport = uf["sport"], uf["dport"]
    else:
        dport = 0
    return Hop(
        encap,
        f["src"],
        f["dst"],
        tid,
        f.get("protocol" if is4 else "next_header", 0),
        entropy,
        dport,
        0 if is4 else f.get("flow_label", 0),
        f.get("ttl", -1),
        f.get("dscp", 0),
        f.get("ecn", 0),
        _ip_size(ip, pkt.wirelen - ip.offset),
    )


def _inner(pkt: Packet, layers: list[Layer], start: int, stop: int) -> Inner | None:
    """The first IP header in ``layers[start:stop]`` and its transport (or Ethernet when no IP)."""
    eth: Layer | None = None
    for j in range(start, stop):
        ly = layers[j]
        if ly.proto in IP_PROTOS:
            return _ip_inner(pkt, layers, j, stop)
        if ly.proto == "eth" and eth is None:
            eth = ly
    if eth is None:
        return None
    etype = int(eth.fields.get("type", 0))
    # a VLAN tag's Ethertype names what the frame carries
    for j in range(start, stop):
        if layers[j].proto == "vlan":
            etype = int(layers[j].fields.get("type", etype))
    return Inner("eth", str(eth.fields["src"]), str(eth.fields["dst"]), etype, 0, 0,
                 pkt.wirelen - eth.offset, False, False, -1, 0, 0, -1, 0, 0, 0)  # fmt: skip


def _ip_inner(pkt: Packet, layers: list[Layer], j: int, stop: int) -> Inner:
    ip = layers[j]
    f = ip.fields
    is4 = ip.proto == "ipv4"
    proto = f.get("protocol" if is4 else "next_header", 0)
    frag = bool(f.get("mf")) or bool(f.get("frag_offset"))
    sport = dport = 0
    flags, seq, seqlen, mss = -1, 0, 0, 0
    if j + 1 < stop and layers[j + 1].proto in _TRANSPORTS:
        t = layers[j + 1].fields
        if "sport" in t:
            sport, dport = t["sport"], t["dport"]
        elif "type" in t:
            sport, dport = t["type"], t.get("code", 0)
        if layers[j + 1].proto == "tcp":
            flags = t["flags"]
            seq = t["seq"]
            seqlen = t.get("payload_length", 0) + (flags & 1) + (flags >> 1 & 1)
            mss = t.get("mss", 0)
    return Inner(
        ip.proto,
        f["src"],
        f["dst"],
        proto,
        sport,
        dport,
        _ip_size(ip, pkt.wirelen - ip.offset),
        bool(f.get("df")) if is4 else True,
        frag,
        f.get("ttl", -1),
        f.get("dscp", 0),
        f.get("ecn", 0),
        flags,
        seq,
        seqlen,
        mss,
    )


def _hops(
    pkt: Packet, layers: list[Layer], start: int, stop: int, quoted: bool, gre_key_as_id: bool
) -> tuple[list[Hop], int]:
    """The hops in ``layers[start:stop]`` and the index where the innermost payload starts."""
    hops: list[Hop] = []
    seg = start
    for i in range(start, stop):
        ly = layers[i]
        # only these can be a boundary (_is_boundary's cases): most layers skip the call
        grows = not quoted and i + 1 < stop and layers[i + 1].depth > ly.depth
        if (grows or ly.proto in _MAYBE_BOUNDARY) and _is_boundary(layers, i, stop, quoted):
            hop = _hop(pkt, layers, seg, i, gre_key_as_id)
            seg = i + 1
            if hop.ttl < 0 and not hop.src and hops:
                # a header straight after a tunnel header (NSH after VXLAN-GPE) has no outer
                # header of its own: it is part of that tunnel, which keeps its name and ID
                continue
            hops.append(hop)
    return hops, seg


EMPTY_INNER = Inner("", "", "", 0, 0, 0, 0, False, False, -1, 0, 0, -1, 0, 0, 0)


def view(pkt: Packet, *, gre_key_as_id: bool = False) -> View:
    """Flatten one packet for correlation.  Never raises on any layer stack the dissectors build.

    ``gre_key_as_id``: read GRE-with-key over Ethernet as gretap (``gre``, the whole key as
    tunnel ID) instead of NVGRE (the VSID as ID, the FlowID as entropy).
    """
    layers = pkt.layers
    n = len(layers)
    qstart = n
    for i, ly in enumerate(layers):
        if ly.quoted:
            qstart = i
            break
    hops, seg = _hops(pkt, layers, 0, qstart, False, gre_key_as_id)
    inner = _inner(pkt, layers, seg if hops else 0, qstart) or EMPTY_INNER
    return View(tuple(hops), inner, _icmp_error(pkt, layers, qstart, gre_key_as_id))


def _icmp_error(pkt: Packet, layers: list[Layer], qstart: int, gre_key_as_id: bool) -> IcmpError | None:
    last = qstart - 1
    if last < 0:
        return None
    ic = layers[last]
    if ic.proto not in ("icmp", "icmpv6") or ic.fields.get("kind") not in ICMP_ERROR_KINDS:
        return None
    reporter = ""
    for j in range(last - 1, -1, -1):
        if layers[j].proto in IP_PROTOS:
            reporter = str(layers[j].fields["src"])
            break
    n = len(layers)
    qhops, qseg = _hops(pkt, layers, qstart, n, True, gre_key_as_id)
    qinner = _inner(pkt, layers, qseg, n)
    qpath = None
    if qstart < n and layers[qstart].proto in IP_PROTOS:
        q = layers[qstart]
        qf = q.fields
        is4 = q.proto == "ipv4"
        udp = layers[qstart + 1] if qstart + 1 < n and layers[qstart + 1].proto == "udp" else None
        qpath = (
            str(qf["src"]),
            str(qf["dst"]),
            int(qf.get("protocol" if is4 else "next_header", 0)),
            int(udp.fields["sport"]) if udp else 0,
            int(udp.fields["dport"]) if udp else 0,
            0 if is4 else int(qf.get("flow_label", 0)),
        )
        if qhops and qhops[0].path_key[:3] == qpath[:3]:
            # the quote reaches the outermost tunnel header: its path key has the entropy
            # even where it is not in a UDP header (NVGRE's FlowID)
            qpath = qhops[0].path_key
    f = ic.fields
    return IcmpError(
        reporter,
        ic.proto,
        str(f["kind"]),
        int(f["type"]),
        int(f["code"]),
        int(f.get("mtu", 0)),
        tuple(qhops),
        qpath,
        qinner,
    )
