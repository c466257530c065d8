"""A tunnel ID (VNI, key, TEID) that the inventory does not list."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="inventory.unexpected-vni",
    severity="warning",
    title="Tunnel ID (VNI) not in the inventory",
    explanation=(
        "Tunnel packets carry a VNI (or GRE key, TEID...) that the inventory (key `vnis`) does not list: a "
        "tenant segment configured on one VTEP only, a VLAN-to-VNI mapping typo, a leftover from a removed "
        "tenant, or foreign traffic. The receiving VTEP drops packets of VNIs it does not serve, so this is "
        "often the cause of one-way or missing tenant traffic. Only checked when the inventory lists VNIs."
    ),
    fires_when="a tunnel's ID is outside every `vnis` entry of the inventory",
    remedy="fix the VNI mapping on the sending VTEP, or add the VNI to the inventory if it is legitimate",
)


def check(ctx: Context) -> list[Finding]:
    inv = ctx.inventory
    if not inv.lists_vnis:
        return []
    by_id: dict[tuple[str, int], list] = {}  # type: ignore[type-arg]
    for tk, ts in ctx.agg.tunnels.items():
        if tk[3] is not None and not inv.vni_known(tk[3]):
            by_id.setdefault((tk[0], tk[3]), []).append((tk, ts))
    out = []
    for (encap, tid), items in sorted(by_id.items()):
        items.sort(key=lambda x: x[1].first)
        ev = Evidence(tunnels=[tk for tk, _ in items[:8]], flows=[])
        ev.add_frames([ts.first for _, ts in items])
        packets = sum(ts.packets for _, ts in items)
        senders = sorted({tk[1] for tk, _ in items})
        ev.facts = {"tunnel_id": tid, "packets": packets, "senders": senders}
        detail = (
            f"{encap} tunnel ID {tid} is used by {tunnel_str(items[0][0])} ({packets} packets, "
            f"{frames_str(ev.frames)}) but the inventory does not list it."
        )
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"Unexpected {encap} tunnel ID {tid} from {', '.join(senders[:3])}",
                detail,
                f"check the tenant-to-VNI mapping on {', '.join(senders[:3])}; add {tid} to the inventory if it "
                "is a legitimate segment",
                ev,
            )
        )
    return out
