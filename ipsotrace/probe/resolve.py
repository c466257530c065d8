"""Fill in an :class:`OverlayTarget` from this host's routing table and VXLAN devices (pyroute2).

Only reads local state; never sends anything.
"""

from __future__ import annotations

import ipaddress
import random

from pyroute2 import IPRoute

from ipsotrace.probe.model import OverlayTarget
from ipsotrace.probe.network import ProbeError


def _ipv4(value: str, what: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ProbeError(f"{what} {value!r} is not an IPv4 address (IPv6 underlays are not probed yet)") from None


def local_target(
    vtep: str,
    vni: int,
    inner_dst: str,
    *,
    source: str | None = None,
    inner_src: str | None = None,
    inner_src_mac: str | None = None,
    inner_dst_mac: str | None = None,
    dport: int = 4789,
) -> OverlayTarget:
    vtep = _ipv4(vtep, "VTEP")
    inner_dst = _ipv4(inner_dst, "--inner-dst")
    if not 0 <= vni < 1 << 24:
        raise ProbeError(f"--vni {vni}: a VNI is 24 bits (0-16777215)")
    with IPRoute() as ipr:
        try:
            route = ipr.route("get", dst=vtep)[0]
        except Exception as exc:  # pyroute2 raises NetlinkError with the errno
            raise ProbeError(f"no route to VTEP {vtep}: {exc}") from None
        oif = route.get_attr("RTA_OIF")
        local = source or route.get_attr("RTA_PREFSRC")
        link = ipr.get_links(oif)[0]
        local_mtu = int(link.get_attr("IFLA_MTU") or 1500)
        vx_mac, vx_addr = None, None
        for ln in ipr.get_links():
            info = ln.get_attr("IFLA_LINKINFO")
            if info is None or info.get_attr("IFLA_INFO_KIND") != "vxlan":
                continue
            data = info.get_attr("IFLA_INFO_DATA")
            if data is None or data.get_attr("IFLA_VXLAN_ID") != vni:
                continue
            vx_mac = ln.get_attr("IFLA_ADDRESS")
            addrs = ipr.get_addr(index=ln["index"], family=2)
            if addrs:
                vx_addr = addrs[0].get_attr("IFA_ADDRESS")
            if source is None and data.get_attr("IFLA_VXLAN_LOCAL"):
                local = data.get_attr("IFLA_VXLAN_LOCAL")
            break
    if local is None:
        raise ProbeError(f"cannot tell our address toward {vtep}: pass --source")
    src = inner_src or vx_addr
    if src is None:
        raise ProbeError(
            f"no local VXLAN device with VNI {vni} to take the inner source from: pass --inner-src "
            "(an address the far side routes back into the overlay)"
        )
    mac = inner_src_mac or vx_mac or "02:00:" + ":".join(f"{random.randrange(256):02x}" for _ in range(4))
    return OverlayTarget(
        local=_ipv4(local, "--source"),
        vtep=vtep,
        vni=vni,
        inner_src=_ipv4(src, "--inner-src"),
        inner_dst=inner_dst,
        inner_src_mac=mac,
        inner_dst_mac=inner_dst_mac or "ff:ff:ff:ff:ff:ff",
        dport=dport,
        ident=random.randrange(1, 0xFFFF),
        local_mtu=local_mtu,
    )
