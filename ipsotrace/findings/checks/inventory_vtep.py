"""A tunnel endpoint that the inventory does not list."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.inventory import is_ip
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="inventory.unexpected-vtep",
    severity="warning",
    title="Tunnel endpoint not in the inventory",
    explanation=(
        "The capture has tunnel packets from or to an address the inventory (--inventory, key `vteps`) does "
        "not list. Either the inventory is out of date (a new leaf, a moved VTEP, a secondary address used as "
        "source), or something that should not terminate tunnels does: a misconfigured host, a stale peer "
        "still in a flood list, or an injection attempt (VXLAN and Geneve have no authentication). Only "
        "checked when the inventory lists VTEPs."
    ),
    fires_when="an outer source or destination of a tunnel is outside every `vteps` entry of the inventory",
    remedy="add the VTEP to the inventory if legitimate; otherwise remove it from flood lists / block it",
)


def check(ctx: Context) -> list[Finding]:
    inv = ctx.inventory
    if not inv.lists_vteps:
        return []
    unknown: dict[str, list] = {}  # type: ignore[type-arg]
    for tk, ts in ctx.agg.tunnels.items():
        if not is_ip(tk[1]):
            continue  # MAC-addressed (no IP underlay): not a VTEP address
        for addr in (tk[1], tk[2]):
            if not inv.vtep_known(addr):
                unknown.setdefault(addr, []).append((tk, ts))
    out = []
    for addr, items in sorted(unknown.items()):
        items.sort(key=lambda x: x[1].first)
        ev = Evidence(tunnels=[tk for tk, _ in items[:8]])
        ev.add_frames([ts.first for _, ts in items])
        packets = sum(ts.packets for _, ts in items)
        ev.facts = {"address": addr, "tunnels": len(items), "packets": packets}
        detail = (
            f"{addr} terminates {len(items)} tunnel(s) ({tunnel_str(items[0][0])}…), {packets} packets, first at "
            f"{frames_str(ev.frames)}; it is not among the inventory's VTEPs."
        )
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"Unexpected VTEP {addr} ({packets} packets)",
                detail,
                f"if {addr} is a legitimate VTEP add it to the inventory; otherwise find the device, remove it "
                "from flood lists / EVPN peers and filter its tunnel traffic at the underlay edge",
                ev,
            )
        )
    return out
