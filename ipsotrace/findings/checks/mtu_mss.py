"""TCP MSS in SYNs larger than the overlay can carry: MSS clamping missing."""

from __future__ import annotations

from ipsotrace.findings.context import WELL_KNOWN_MTUS, Context, evs, frames_str
from ipsotrace.findings.inventory import is_ip
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="mtu.mss-exceeds-overlay",
    severity="warning",
    title="TCP MSS in SYNs is larger than the overlay can carry (MSS clamping missing)",
    explanation=(
        "The MSS option in a SYN tells the peer the largest segment it may send. Inside a tunnel the largest "
        "inner packet that crosses the underlay unfragmented is the underlay MTU minus the encapsulation "
        "overhead (1450 for VXLAN over a 1500 underlay); a SYN announcing MSS 1460 (inner interface MTU 1500) "
        "invites 1500-byte segments that need a 1550-byte underlay. Such flows work only if every underlay "
        "link is jumbo or PMTU discovery works end to end; otherwise they black-hole or fragment.\n"
        "Clamping the MSS on the VTEP or the tenant gateway (iptables TCPMSS, `ip route ... advmss`) or giving "
        "the tenant interfaces the overlay MTU fixes it for TCP. Severity is error when the underlay MTU is "
        "known (inventory or ICMP), warning when it is not: then the larger of the standard 1500 and the "
        "largest outer packet seen between the VTEPs is used, and an MSS that fills a well-known jumbo MTU "
        "exactly (9001 = AWS, 9000, 9216...) is taken as set for that underlay. Monitoring sessions "
        "(ERSPAN, VXLAN traffic mirroring) are skipped."
    ),
    fires_when="max SYN MSS + 40 (IPv4) / 60 (IPv6) > underlay MTU - measured overhead",
    remedy="clamp TCP MSS to underlay MTU - overhead - 40, or set the tenant MTU to underlay MTU - overhead",
    thresholds=("mtu.assumed_underlay_mtu",),
)


def check(ctx: Context) -> list[Finding]:
    out = []
    for tk, (tunnels, flows) in ctx.flows_by_link.items():
        if ctx.is_mirror(tk) or not is_ip(tk[1]):
            continue  # monitoring sessions deliver nothing; Ethernet-level encapsulations have no IP underlay
        overhead = max(ctx.overhead(t) for t in tunnels)
        mtu, how, known = ctx.assumed_mtu(tk[1], tk[2])
        capacity = mtu - overhead
        over, frames, mss_max = [], [], 0
        for fk in flows:
            ff = ctx.facts.flows[fk]
            hdr = 60 if fk[2] == "ipv6" else 40
            hits = [
                (neg, e)
                for neg, e in ff.syn_mss.items
                if -neg + hdr > capacity and (known or -neg + hdr + overhead not in WELL_KNOWN_MTUS)
            ]
            if hits:
                over.append(fk)
                frames += hits
                mss_max = max(mss_max, -hits[0][0])
        if not over:
            continue
        hdr = 60 if over[0][2] == "ipv6" else 40
        ev = Evidence(tunnels=tunnels, flows=over[:8])
        ev.add_frames(evs(frames))
        clamp = capacity - hdr
        ev.facts = {
            "mss": mss_max,
            "overlay_capacity": capacity,
            "overhead": overhead,
            "underlay_mtu": mtu,
            "underlay_mtu_from": how,
            "clamp_to": clamp,
            "flows": len(over),
        }
        detail = (
            f"{len(over)} TCP flow(s) in {tunnel_str(tk)} announce MSS up to {mss_max} ({frames_str(ev.frames)}): "
            f"segments of {mss_max + hdr} bytes, {mss_max + hdr + overhead} on the underlay, whose MTU is {mtu} "
            f"({how}); the overlay carries {capacity}."
        )
        out.append(
            Finding(
                SPEC.id,
                "error" if known else "warning",
                f"SYN MSS {mss_max} exceeds the {clamp} the overlay {tunnel_str(tk)} can carry",
                detail,
                f"clamp TCP MSS to {clamp} on the VTEP/tenant gateway (iptables -t mangle -A FORWARD -p tcp "
                f"--tcp-flags SYN,RST SYN -j TCPMSS --set-mss {clamp}) or set the tenant MTU to {capacity}",
                ev,
                "high" if known else "medium",
            )
        )
    return out
