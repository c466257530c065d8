"""VXLAN headers with the I flag unset or reserved bits set."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec, tunnel_str

SPEC = Spec(
    id="vxlan.invalid-flags",
    severity="warning",
    title="VXLAN header with the I flag unset or reserved bits set",
    explanation=(
        "RFC 7348 requires the I flag (VNI valid) to be 1 and the reserved fields to be 0 on transmit. "
        "Receivers may ignore the reserved bits, but Linux drops VXLAN packets without the I flag and, "
        "unless an extension (GBP, GPE) is enabled on the device, packets with unknown flags: traffic from "
        "such a sender silently vanishes at the far VTEP. Usually a VTEP using an extension (GBP group "
        "policy, GPE) the receiver does not have enabled, or a buggy hardware VTEP / packet generator."
    ),
    fires_when="any VXLAN packet of the tunnel has the I flag unset or reserved bits set",
    remedy="fix the sender's VXLAN header, or enable the matching extension (gbp, gpe) on the receiving VTEP",
)


def check(ctx: Context) -> list[Finding]:
    out = []
    for tk, t in sorted(ctx.facts.tunnels.items(), key=lambda kv: kv[1].first):
        if not t.bad_flags:
            continue
        n = t.bad_flag_packets
        kinds = ", ".join(f"{k.split('.', 1)[1]} ×{c}" for k, c in sorted(t.bad_flags.items()))
        ev = Evidence(tunnels=[tk], flows=ctx.flows_by_tunnel.get(tk, [])[:8])
        ev.add_frames(t.bad_flags_ev.items)
        ev.facts = {"counts": dict(sorted(t.bad_flags.items())), "tunnel_packets": t.packets}
        out.append(
            Finding(
                SPEC.id,
                "warning",
                f"{tunnel_str(tk)}: invalid VXLAN flags in {n} of {t.packets} packets ({kinds})",
                f"{kinds} in VXLAN headers from {tk[1]} ({frames_str(ev.frames)}); a Linux VTEP at {tk[2]} "
                "drops them unless the matching extension is enabled.",
                f"fix the VXLAN encapsulation on {tk[1]} (flags 0x08, reserved fields 0), or enable the extension "
                f"it uses on {tk[2]}",
                ev,
            )
        )
    return out
