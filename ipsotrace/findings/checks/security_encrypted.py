"""Tunnels protected by ESP, WireGuard or DTLS: reported as such."""

from __future__ import annotations

from ipsotrace.findings.context import Context, frames_str
from ipsotrace.findings.model import Evidence, Finding, Spec

SPEC = Spec(
    id="security.encrypted-transport",
    severity="info",
    title="Traffic protected by ESP / WireGuard / DTLS",
    explanation=(
        "Packets between these endpoints are encrypted (IPsec ESP, WireGuard, DTLS with keys established): "
        "an overlay carried inside is protected on the wire, and its inner headers cannot be analysed from "
        "this capture (the tunnels, flows and findings above do not include what is inside). Reported for "
        "information, and so that the security review can tell protected overlays from cleartext ones."
    ),
    fires_when="any packet with an encrypted ESP, WireGuard or DTLS layer",
    remedy="none; capture on the VTEPs after decryption to analyse the overlay inside",
)


def check(ctx: Context) -> list[Finding]:
    out = []
    for (src, dst, proto), c in sorted(ctx.facts.crypto.items()):
        ev = Evidence()
        ev.add_frames(c.ev.items)
        untrusted = ctx.crosses_untrusted(src, dst)
        ev.facts = {"protocol": proto, "packets": c.packets, "inside_tunnel": c.inside_tunnel, "untrusted": untrusted}
        where = " inside a tunnel" if c.inside_tunnel else ""
        note = " across an untrusted network" if untrusted else ""
        out.append(
            Finding(
                SPEC.id,
                "info",
                f"{proto.upper()} protects {src} → {dst}{note} ({c.packets} packets)",
                f"{c.packets} {proto} packets{where} from {src} to {dst} ({frames_str(ev.frames)}) are encrypted.",
                "none; capture after decryption to analyse what they carry",
                ev,
            )
        )
    return out
