"""Shared by the asymmetry checks: the return direction of an inner flow, in any tunnel."""

from __future__ import annotations

import ipaddress

from ipsotrace.findings.context import OVERLAY_ENCAPS, Context
from ipsotrace.findings.model import FlowKey

_ECHO = {(1, 8): 0, (1, 0): 8, (58, 128): 129, (58, 129): 128}

Tuple5 = tuple[str, str, str, str, int, int, int]  # encap, l3, src, dst, proto, sport, dport


def reverse_tuple(fk: FlowKey) -> Tuple5 | None:
    encap, _tid, l3, src, dst, proto, sport, dport = fk
    if proto in (6, 17, 132) and sport and dport:
        return (encap, l3, dst, src, proto, dport, sport)
    if (proto, sport) in _ECHO:
        return (encap, l3, dst, src, proto, _ECHO[(proto, sport)], dport)
    return None


def overlay_flow(ctx: Context, fk: FlowKey) -> bool:
    """A flow of a forwarding overlay (not a relay such as Teredo, not a monitoring session)."""
    if fk[0] not in OVERLAY_ENCAPS:
        return False
    return not all((fk[0], pk[0], pk[1]) in ctx.mirror_pairs for pk in ctx.facts.flows[fk].paths)


def by_tuple(ctx: Context) -> dict[Tuple5, list[FlowKey]]:
    out: dict[Tuple5, list[FlowKey]] = {}
    for fk in ctx.facts.flows:
        if not overlay_flow(ctx, fk):
            continue
        out.setdefault((fk[0], fk[2], fk[3], fk[4], fk[5], fk[6], fk[7]), []).append(fk)
    return out


def same_subnet(fk: FlowKey) -> bool:
    """Inner src and dst in one /24 (IPv4) or /64 (IPv6): bridged in one segment, not routed."""
    try:
        a, b = ipaddress.ip_address(fk[3]), ipaddress.ip_address(fk[4])
    except ValueError:
        return fk[2] == "eth"
    bits = 24 if a.version == 4 else 64
    return a.version == b.version and int(a) >> (a.max_prefixlen - bits) == int(b) >> (b.max_prefixlen - bits)


def vtep_pairs(ctx: Context, fk: FlowKey) -> set[tuple[str, str]]:
    return {(pk[0], pk[1]) for pk in ctx.facts.flows[fk].paths}
