"""Building probe packets with scapy (crafting only: replies are decoded by our own dissectors).

A probe is a whole outer IPv4 packet: IPv4 (DF, chosen TTL, ID = probe ID) / UDP
(chosen source port, VXLAN port) / VXLAN (VNI) / Ethernet / IPv4 / ICMP echo
(ID = run ident, seq = probe ID) padded to the requested outer size.
"""

from __future__ import annotations

from functools import lru_cache

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.probe.model import OverlayTarget, ProbeRequest

LINKTYPE_IPV4 = 228
PAYLOAD_MARK = b"ipsotrace-probe:"
MIN_PAYLOAD = len(PAYLOAD_MARK) + 2
MAX_SIZE = 65535


def _outer(target: OverlayTarget, req: ProbeRequest, probe_id: int) -> ScapyPacket:
    return (
        IP(src=target.local, dst=target.vtep, ttl=req.ttl, id=probe_id, flags="DF" if req.df else 0)
        / UDP(sport=req.sport, dport=target.dport)
        / VXLAN(vni=target.vni, flags=0x08)
    )


def build_probe(target: OverlayTarget, req: ProbeRequest, probe_id: int) -> bytes:
    """The outer IPv4 packet for ``req``; its length is ``req.size`` when that is at least the minimum."""
    outer = _outer(target, req, probe_id)
    eth = Ether(src=target.inner_src_mac, dst=target.inner_dst_mac)
    if req.kind == "arp":
        inner = eth / ARP(op=1, hwsrc=target.inner_src_mac, psrc=target.inner_src, pdst=target.inner_dst)
        return bytes(outer / inner)
    head = IP(src=target.inner_src, dst=target.inner_dst, ttl=64, id=probe_id) / ICMP(
        type=8, id=target.ident, seq=probe_id
    )
    pad = max(MIN_PAYLOAD, req.size - overhead(target) - 28) if req.size else MIN_PAYLOAD
    body = (PAYLOAD_MARK + probe_id.to_bytes(2, "big") + bytes(range(256)) * (pad // 256 + 1))[:pad]
    return bytes(outer / eth / head / Raw(body))


def min_size(target: OverlayTarget) -> int:
    return overhead(target) + 28 + MIN_PAYLOAD


@lru_cache(maxsize=16)
def overhead(target: OverlayTarget) -> int:
    """Bytes the overlay adds to an inner IP packet, measured on a probe we build, not assumed.

    Dissects a probe and takes the offset of the inner IPv4 header: outer IP
    (with options, or IPv6) + UDP + VXLAN + inner Ethernet (+ inner VLAN tags).
    """
    outer = _outer(target, ProbeRequest(sport=49152), 1)
    raw = bytes(
        outer
        / Ether(src=target.inner_src_mac, dst=target.inner_dst_mac)
        / IP(src=target.inner_src, dst=target.inner_dst)
        / ICMP()
    )
    pkt = dissect_frame(raw, LINKTYPE_IPV4, DissectConfig.from_overrides({target.dport: "vxlan"}))
    inner = [ly for ly in pkt.layers if ly.proto in ("ipv4", "ipv6") and ly.depth >= 1]
    if not inner:
        raise ValueError("could not find the inner IP header in our own probe")
    return inner[0].offset
