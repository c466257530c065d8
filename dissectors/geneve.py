"""Geneve (RFC 8926) with its TLV options, and decoders for the cloud options seen in practice.

Option decoders (class, type) → fields, as documented by their owners:

* AWS Gateway Load Balancer, class 0x0108: type 1 the GWLB endpoint (``vpce-`` + 17 hex
  digits), type 2 the attachment ID (64 bit), type 3 the flow cookie (32 bit).  GWLB sends
  all three (40 header bytes, the "+68" of its 8500-byte MTU with outer IPv4 and UDP).
* Google Cloud, class 0x0132: type 1 the virtual network ID (28 bit) and traffic direction
  bit, type 2 the endpoint ID (16 bytes), type 3 the profile ID.
* OVN, class 0x0102 type 0x80: logical ingress port (15 bit) and egress port (16 bit); the
  logical datapath is the VNI.

Unknown options stay raw (``data`` in hex).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ipsotrace.dissectors import plausible
from ipsotrace.dissectors.base import Context, Decoded, Header, Next, malformed, truncated
from ipsotrace.records import Anomaly, FieldValue

HEADER = Header("geneve", "BBHI", ("ver_optlen", "flags", "protocol_type", "vni_reserved"))

FLAG_OAM = 0x80
FLAG_CRITICAL = 0x40
OPT_CRITICAL = 0x80

CLASS_LINUX = 0x0100
CLASS_OVS = 0x0101
CLASS_OVN = 0x0102
CLASS_AWS_GWLB = 0x0108
CLASS_GCP = 0x0132

#: Protocol types a Geneve payload carries in practice (the heuristic insists on one of them).
KNOWN_PROTOCOLS = frozenset({0x6558, 0x0800, 0x86DD, 0x8847, 0x894F})


def _u(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _aws_endpoint(data: bytes) -> dict[str, FieldValue]:
    return {"name": "aws-gwlb-endpoint", "vpce_id": f"vpce-{_u(data):017x}"}


def _aws_attachment(data: bytes) -> dict[str, FieldValue]:
    return {"name": "aws-gwlb-attachment", "attachment_id": _u(data)}


def _aws_cookie(data: bytes) -> dict[str, FieldValue]:
    return {"name": "aws-gwlb-flow-cookie", "flow_cookie": _u(data)}


def _gcp_vnid(data: bytes) -> dict[str, FieldValue]:
    v = _u(data[:4])
    return {
        "name": "gcp-vnid",
        "gcp_vnid": v >> 4,
        "direction": "egress" if v & 1 else "ingress",
        "reserved": (v >> 1) & 0x7,
    }


def _gcp_endpoint(data: bytes) -> dict[str, FieldValue]:
    return {"name": "gcp-endpoint", "endpoint_id": data.hex()}


def _gcp_profile(data: bytes) -> dict[str, FieldValue]:
    return {"name": "gcp-profile", "profile_id": _u(data)}


def _ovn_ports(data: bytes) -> dict[str, FieldValue]:
    v = _u(data[:4])
    return {"name": "ovn-ports", "logical_ingress_port": (v >> 16) & 0x7FFF, "logical_egress_port": v & 0xFFFF}


#: (class, type) → (exact data length in bytes or None for any, decoder)
OPTION_DECODERS: dict[tuple[int, int], tuple[int | None, Callable[[bytes], dict[str, FieldValue]]]] = {
    (CLASS_AWS_GWLB, 1): (8, _aws_endpoint),
    (CLASS_AWS_GWLB, 2): (8, _aws_attachment),
    (CLASS_AWS_GWLB, 3): (4, _aws_cookie),
    (CLASS_GCP, 1): (4, _gcp_vnid),
    (CLASS_GCP, 2): (16, _gcp_endpoint),
    (CLASS_GCP, 3): (None, _gcp_profile),
    (CLASS_OVN, 0x80): (4, _ovn_ports),
}


def _options(buf: bytes, off: int, end: int, anomalies: list[Anomaly]) -> list[dict[str, FieldValue]]:
    opts: list[dict[str, FieldValue]] = []
    pos = off
    # The options area is a multiple of 4 bytes, like every option: a 4-byte option header always fits.
    while pos < end:
        ocls, otype, olen_raw = struct.unpack_from("!HBB", buf, pos)
        olen = 4 + (olen_raw & 0x1F) * 4
        if pos + olen > end:
            anomalies.append(
                Anomaly("geneve.option-length", "geneve", pos, f"option of {olen} bytes runs past the options area")
            )
            break
        data = buf[pos + 4 : pos + olen]
        opt: dict[str, FieldValue] = {
            "class": ocls,
            "type": otype,
            "critical": bool(otype & OPT_CRITICAL),
            "length": olen,
            "data": data.hex(),
        }
        if olen_raw & 0xE0:
            opt["reserved_flags"] = olen_raw >> 5
        dec = OPTION_DECODERS.get((ocls, otype))
        if dec is not None and (dec[0] is None or dec[0] == len(data)) and data:
            opt.update(dec[1](data))
        opts.append(opt)
        pos += olen
    return opts


def dissect(buf: bytes, off: int, end: int, ctx: Context) -> Decoded | Anomaly:
    v = HEADER.unpack(buf, off, end)
    if isinstance(v, Anomaly):
        return v
    ver_optlen, flags, ptype, vni_res = v
    version, opt_len = ver_optlen >> 6, (ver_optlen & 0x3F) * 4
    if version != 0:
        return malformed("geneve", off, f"version {version}, expected 0")
    hlen = 8 + opt_len
    if end - off < hlen:
        if ctx.snaplen_cut or ctx.partial:
            return truncated("geneve", off, hlen, end - off)
        return malformed("geneve", off, f"options length {opt_len} exceeds the {end - off - 8} payload bytes")
    vni = vni_res >> 8
    anomalies: list[Anomaly] = []
    fields: dict[str, FieldValue] = {
        "tunnel_id": vni,
        "vni": vni,
        "version": version,
        "opt_len": opt_len,
        "oam": bool(flags & FLAG_OAM),
        "critical": bool(flags & FLAG_CRITICAL),
        "protocol_type": ptype,
        "options": _options(buf, off + 8, off + hlen, anomalies),
    }
    if flags & 0x3F or vni_res & 0xFF:
        fields["reserved_nonzero"] = True
        anomalies.append(Anomaly("geneve.reserved-set", "geneve", off, "reserved bits are not zero"))
    critical_opts = any(o["critical"] for o in fields["options"])  # type: ignore[union-attr]
    if critical_opts and not flags & FLAG_CRITICAL:
        anomalies.append(Anomaly("geneve.c-flag-unset", "geneve", off, "critical option present but C flag is 0"))
    return Decoded(fields, hlen, Next("ethertype", ptype), anomalies=anomalies, encap=True)


def heuristic(buf: bytes, off: int, end: int) -> float:
    """Confidence that a Geneve header starts at ``off`` (0 when a required check fails)."""
    if end - off < 8 + 20:
        return 0.0
    ver_optlen, flags, ptype = buf[off], buf[off + 1], struct.unpack_from("!H", buf, off + 2)[0]
    if ver_optlen >> 6 != 0:
        return 0.0
    hlen = 8 + (ver_optlen & 0x3F) * 4
    if hlen > end - off or ptype not in KNOWN_PROTOCOLS:
        return 0.0
    checks = [
        flags & 0x3F == 0,
        buf[off + 7] == 0,
        _options_consistent(buf, off + 8, off + hlen),
    ]
    inner = off + hlen
    if ptype == 0x6558:
        known_type, ip_valid = plausible.eth_ok(buf, inner, end)
        checks += [known_type, ip_valid]
    elif ptype in (0x0800, 0x86DD):
        want = 4 if ptype == 0x0800 else 6
        checks += [inner < end and buf[inner] >> 4 == want, plausible.ip_ok(buf, inner, end)]
    else:
        checks += [False, False]
    return sum(checks) / len(checks)


def _options_consistent(buf: bytes, pos: int, end: int) -> bool:
    while pos < end:
        if end - pos < 4:
            return False
        pos += 4 + (buf[pos + 3] & 0x1F) * 4
    return pos == end
