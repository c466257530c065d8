"""Which probe does a received packet answer?  Pure functions over dissected packets.

* An ICMP error (time exceeded, fragmentation needed, unreachable) quotes our outer
  IPv4/UDP header: its source/destination must be ours, its UDP destination port the
  VXLAN port; the quoted IP ID is the probe ID and the quoted UDP source port must be
  the flow the probe was sent on.  Linux routers quote up to 576 bytes, so the quoted
  VNI and inner echo sequence are usually there too and are checked when present.
* An inner ICMP echo reply from the inner host, with our ident: its sequence number is
  the probe ID.  It may be seen encapsulated on the underlay interface or decapsulated
  on the local VXLAN device (after outer reassembly): both copies match, the engine
  keeps the first.
* An inner ARP reply from the inner host gives its MAC address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ipsotrace.probe.model import FRAG_NEEDED, REPLY, TIME_EXCEEDED, UNREACHABLE, OverlayTarget
from ipsotrace.records import Layer, Packet


@dataclass(frozen=True, slots=True)
class Match:
    kind: str
    probe_id: int | None  # None for ARP replies (matched by address)
    address: str
    sport: int | None = None  # the flow the quote says the probe was sent on
    mtu: int | None = None
    code: int | None = None
    mac: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


def _first(layers: list[Layer], proto: str, *, quoted: bool, start: int = 0) -> tuple[int, Layer] | None:
    for i in range(start, len(layers)):
        ly = layers[i]
        if ly.proto == proto and ly.quoted == quoted:
            return i, ly
    return None


def match(pkt: Packet, target: OverlayTarget) -> Match | None:
    layers = pkt.layers
    first_ip = _first(layers, "ipv4", quoted=False)
    if first_ip is None:
        return None
    ip_i, ip = first_ip
    icmp = _first(layers, "icmp", quoted=False, start=ip_i)
    if (
        icmp is not None
        and icmp[1].depth == ip.depth
        and icmp[1].get("kind") in ("time-exceeded", "frag-needed", "dest-unreachable")
    ):
        return _match_error(layers, ip, icmp[0], icmp[1], target)
    return _match_inner(layers, target)


def _match_error(layers: list[Layer], ip: Layer, icmp_i: int, icmp: Layer, target: OverlayTarget) -> Match | None:
    if ip.get("dst") != target.local:
        return None
    q_ip = _first(layers, "ipv4", quoted=True, start=icmp_i)
    q_udp = _first(layers, "udp", quoted=True, start=icmp_i)
    if q_ip is None or q_udp is None:
        return None
    qi, qu = q_ip[1], q_udp[1]
    if qi.get("src") != target.local or qi.get("dst") != target.vtep or qu.get("dport") != target.dport:
        return None
    evidence: dict[str, Any] = {
        "quoted_ip_id": qi.get("id"),
        "quoted_sport": qu.get("sport"),
        "quoted_ttl": qi.get("ttl"),
    }
    q_vx = _first(layers, "vxlan", quoted=True, start=icmp_i)
    if q_vx is not None:
        if q_vx[1].get("vni") != target.vni:
            return None
        evidence["quoted_vni"] = q_vx[1].get("vni")
    q_echo = _first(layers, "icmp", quoted=True, start=icmp_i)
    if q_echo is not None and q_echo[1].get("kind") == "echo-request":
        if q_echo[1].get("id") != target.ident or q_echo[1].get("seq") != qi.get("id"):
            return None
        evidence["quoted_inner_seq"] = q_echo[1].get("seq")
    kind = {"time-exceeded": TIME_EXCEEDED, "frag-needed": FRAG_NEEDED}.get(icmp.get("kind"), UNREACHABLE)
    return Match(
        kind=kind,
        probe_id=qi.get("id"),
        address=ip.get("src"),
        sport=qu.get("sport"),
        mtu=icmp.get("mtu") if kind == FRAG_NEEDED else None,
        code=icmp.get("code"),
        evidence=evidence,
    )


def _match_inner(layers: list[Layer], target: OverlayTarget) -> Match | None:
    for i, ly in enumerate(layers):
        if ly.quoted:
            return None
        if ly.proto == "icmp" and ly.get("kind") == "echo-reply" and ly.get("id") == target.ident:
            ip = _last_before(layers, i, "ipv4")
            if ip is None or ip.get("src") != target.inner_dst or ip.get("dst") != target.inner_src:
                return None
            evidence: dict[str, Any] = {"inner_seq": ly.get("seq"), "inner_src": ip.get("src")}
            vx = _last_before(layers, i, "vxlan")
            if vx is not None:
                if vx.get("vni") != target.vni:
                    return None
                outer_udp = _last_before(layers, layers.index(vx), "udp")
                evidence["vni"] = vx.get("vni")
                if outer_udp is not None:
                    evidence["return_sport"] = outer_udp.get("sport")
            return Match(kind=REPLY, probe_id=ly.get("seq"), address=ip.get("src"), evidence=evidence)
        if ly.proto == "arp" and ly.get("op") == 2 and ly.get("sender_ip") == target.inner_dst:
            vx = _last_before(layers, i, "vxlan")
            if vx is not None and vx.get("vni") != target.vni:
                return None
            return Match(kind="arp", probe_id=None, address=target.inner_dst, mac=ly.get("sender_mac"))
    return None


def _last_before(layers: list[Layer], i: int, proto: str) -> Layer | None:
    for j in range(i - 1, -1, -1):
        if layers[j].proto == proto:
            return layers[j]
    return None
