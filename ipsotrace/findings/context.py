"""What every finding check reads: aggregates, collected facts, thresholds, inventory.

Derived views shared by several checks (ICMP packet-too-big per VTEP pair,
inner flows per tunnel, the underlay MTU a path is known to have, the
encapsulation overhead of a tunnel) are computed once here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from ipsotrace.correlate import Aggregates
from ipsotrace.findings.collect import Facts, FlowFacts, TunnelFacts
from ipsotrace.findings.inventory import Inventory, Network, is_in
from ipsotrace.findings.model import Ev, FlowKey, PathKey, TunnelKey
from ipsotrace.findings.thresholds import DEFAULT_THRESHOLDS, Thresholds

PTB_KINDS = frozenset({"frag-needed", "packet-too-big"})

#: Encapsulation bytes (outer IP packet minus inner IP packet) when a tunnel's own packets do not show
#: them (every inner packet truncated or not IP).  IPv4 underlay; an IPv6 underlay adds 20.
TYPICAL_OVERHEAD = {
    "vxlan": 50,  # IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
    "geneve": 50,  # + options, when present
    "vxlan-gpe": 36,  # no inner Ethernet when it carries IP
    "gre": 24,  # + 4 with a key, + 14 for Ethernet over GRE (TEB)
    "nvgre": 46,
    "gtpu": 36,  # IPv4 20 + UDP 8 + GTP-U 8
    "ipip": 20,
    "6in4": 20,
    "4in6": 40,
    "6in6": 40,
    "mpls": 4,
    "teredo": 28,
    "erspan": 50,
}


#: Tunnels that connect sites/hosts of one network (their directions should mirror each other);
#: tunnel brokers and relays (Teredo, AYIYA) and monitoring encapsulations are not among them.
OVERLAY_ENCAPS = frozenset(
    {"vxlan", "vxlan-gpe", "geneve", "nvgre", "gre", "gtpu", "ipip", "6in4", "4in6", "6in6", "nsh"}
)
#: Encapsulations whose tunnel ID names the tenant segment on both directions (GTP TEIDs, MPLS labels
#: and GRE keys are chosen per direction by design).
SEGMENT_ID_ENCAPS = frozenset({"vxlan", "vxlan-gpe", "geneve", "nvgre"})
MIRROR_ENCAPS = frozenset({"erspan", "erspan-type-i"})
#: Underlay MTUs that tenant MTUs are derived from: an MSS that fills one of them exactly was set for it.
WELL_KNOWN_MTUS = frozenset({1500, 1600, 4470, 8500, 8950, 9000, 9001, 9050, 9100, 9192, 9198, 9212, 9216})


@dataclass(frozen=True, slots=True)
class Ptb:
    """ICMP fragmentation-needed / packet-too-big about outer (tunnel) packets."""

    reporter: str
    mtu: int
    count: int
    first: Ev
    pair: tuple[str, str]  # quoted outer src, dst: the tunnel the dropped packet belonged to
    tunnel: TunnelKey | None
    path: PathKey | None
    flow: FlowKey | None


@dataclass
class Context:
    agg: Aggregates
    facts: Facts
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    inventory: Inventory = field(default_factory=Inventory)
    untrusted: tuple[Network, ...] = ()

    @cached_property
    def tunnel_pairs(self) -> set[tuple[str, str]]:
        return {(k[1], k[2]) for k in self.agg.tunnels}

    @cached_property
    def ptbs(self) -> list[Ptb]:
        out = []
        for (reporter, _proto, kind, _t, _c, mtu, qtunnel, qpath, qflow), st in self.agg.icmp.items():
            if kind not in PTB_KINDS:
                continue
            if qtunnel is not None:
                pair = (qtunnel[1], qtunnel[2])
            elif qpath is not None and (qpath[0], qpath[1]) in self.tunnel_pairs:
                pair = (qpath[0], qpath[1])
            else:
                continue  # about untunnelled traffic, or an error inside the overlay
            out.append(Ptb(reporter, mtu, st.count, st.first, pair, qtunnel, qpath, qflow))
        return sorted(out, key=lambda p: (p.first, p.reporter))

    @cached_property
    def mirror_pairs(self) -> set[tuple[str, str, str]]:
        """(encap, outer src, outer dst) that carry both directions of an inner conversation one way.

        That is a monitoring session (ERSPAN, AWS VPC Traffic Mirroring over VXLAN, Geneve to a
        GWLB appliance), not a forwarding overlay: MTU, ECMP, QoS and symmetry checks skip it.
        """
        seen: dict[tuple[str, str, str], set[tuple[object, ...]]] = {}
        for fk, ff in self.facts.flows.items():
            for pk in ff.paths:
                seen.setdefault((fk[0], pk[0], pk[1]), set()).add((fk[2], fk[3], fk[4], fk[5], fk[6], fk[7]))
        out = {k for k in seen if k[0] in MIRROR_ENCAPS}
        for k, tuples in seen.items():
            if any((l3, dst, src, p, dp, sp) in tuples for l3, src, dst, p, sp, dp in tuples if (src, sp) != (dst, dp)):
                out.add(k)
        return out | {(tk[0], tk[1], tk[2]) for tk in self.agg.tunnels if tk[0] in MIRROR_ENCAPS}

    def is_mirror(self, tk: TunnelKey) -> bool:
        return (tk[0], tk[1], tk[2]) in self.mirror_pairs

    @cached_property
    def largest_outer(self) -> dict[tuple[str, str], int]:
        """Largest real (not offloaded) outer packet seen per VTEP pair: the underlay carried it this far."""
        out: dict[tuple[str, str], int] = {}
        for tk, t in self.facts.tunnels.items():
            if t.outer_top.items:
                k = (tk[1], tk[2])
                out[k] = max(out.get(k, 0), -t.outer_top.items[0][0])
        return out

    def ptbs_for(self, src: str, dst: str) -> list[Ptb]:
        return [p for p in self.ptbs if p.pair == (src, dst)]

    @cached_property
    def flows_by_tunnel(self) -> dict[TunnelKey, list[FlowKey]]:
        out: dict[TunnelKey, list[FlowKey]] = {}
        for fk, ff in sorted(self.facts.flows.items(), key=lambda kv: kv[1].first):
            for pk in ff.paths:
                tk = (fk[0], pk[0], pk[1], fk[1])
                lst = out.setdefault(tk, [])
                if not lst or lst[-1] != fk:
                    lst.append(fk)
        return out

    @cached_property
    def flows_by_path(self) -> dict[PathKey, list[FlowKey]]:
        """The flows each outer path carried (an ICMP quote may name only the path)."""
        out: dict[PathKey, list[FlowKey]] = {}
        for fk, ff in self.facts.flows.items():
            for pk in ff.paths:
                out.setdefault(pk, []).append(fk)
        return out

    @cached_property
    def flows_by_link(self) -> dict[TunnelKey, tuple[list[TunnelKey], list[FlowKey]]]:
        """Both directions of a tunnel together, keyed by the direction seen first: its tunnels
        (one or two) and the inner flows of both."""
        out: dict[TunnelKey, tuple[list[TunnelKey], list[FlowKey]]] = {}
        firsts = {tk: ts.first for tk, ts in self.agg.tunnels.items()}
        for tk, flows in sorted(
            self.flows_by_tunnel.items(), key=lambda kv: (firsts.get(kv[0], (0, "", 0)), repr(kv[0]))
        ):
            rk = (tk[0], tk[2], tk[1], tk[3])
            key = rk if rk in out else tk
            tunnels, fl = out.setdefault(key, ([], []))
            tunnels.append(tk)
            fl.extend(flows)
        return out

    def tunnel(self, tk: TunnelKey) -> TunnelFacts | None:
        return self.facts.tunnels.get(tk)

    def flow(self, fk: FlowKey) -> FlowFacts | None:
        return self.facts.flows.get(fk)

    def overhead(self, tk: TunnelKey) -> int:
        """Encapsulation bytes of the tunnel as seen on the wire (typical value if never seen)."""
        t = self.facts.tunnels.get(tk)
        if t is not None and t.overhead:
            return t.overhead
        base = TYPICAL_OVERHEAD.get(tk[0], 50)
        return base + (20 if ":" in tk[1] else 0)

    def underlay_mtu(self, src: str, dst: str) -> tuple[int, str] | None:
        """The underlay MTU between two VTEPs and where it is known from, or None when unknown."""
        inv = self.inventory.mtu_for(src, dst)
        if inv is not None:
            return inv, "the inventory"
        ptbs = [p for p in self.ptbs_for(src, dst) if p.mtu]
        if ptbs:
            p = min(ptbs, key=lambda p: (p.mtu, p.first))
            return p.mtu, f"ICMP {'packet-too-big' if ':' in p.reporter else 'frag-needed'} from {p.reporter}"
        return None

    def assumed_mtu(self, src: str, dst: str) -> tuple[int, str, bool]:
        """Known underlay MTU, else a lower bound: the assumed standard MTU or the largest outer packet
        seen between the VTEPs, whichever is larger.  The flag says whether the MTU is known."""
        # MSS and DF limits bind the reverse direction too, and underlay links are symmetric: take the
        # smaller MTU known either way (an ICMP error may have been seen for one direction only)
        either = [m for m in (self.underlay_mtu(src, dst), self.underlay_mtu(dst, src)) if m is not None]
        if either:
            known = min(either, key=lambda m: m[0])
            return known[0], known[1], True
        assumed = int(self.thresholds.get("mtu", "assumed_underlay_mtu"))
        # links are symmetric: a jumbo outer packet either way shows the pair's underlay is jumbo
        seen = max(self.largest_outer.get((src, dst), 0), self.largest_outer.get((dst, src), 0))
        if seen > assumed:
            return seen, f"at least: {seen}-byte outer packets left the capture point", False
        return assumed, "assumed: standard Ethernet", False

    def crosses_untrusted(self, src: str, dst: str) -> bool:
        nets = tuple(self.untrusted) + tuple(self.inventory.untrusted)
        return bool(nets) and (is_in(src, nets) or is_in(dst, nets))

    @property
    def untrusted_given(self) -> bool:
        return bool(self.untrusted or self.inventory.untrusted)


def evs(items: list[tuple[int, Ev]] | list[Ev]) -> list[Ev]:
    """Evidence tuples from a Top's items, which may be keyed ``(sort key, ev)``."""
    out: list[Ev] = []
    for it in items:
        out.append(it[1] if len(it) == 2 else it)  # type: ignore[arg-type]
    return out


def frames_str(ev: list[Ev], limit: int = 6) -> str:
    nums = ", ".join(str(e[2]) for e in sorted(ev)[:limit])
    return f"frame{'s' if len(ev) > 1 else ''} {nums}" + (" …" if len(ev) > limit else "")
