"""The lab topology of DESIGN.md as a simulated network (no root needed)."""

from __future__ import annotations

from ipsotrace.probe.model import OverlayTarget
from ipsotrace.probe.sim import SimNetwork, SimPath, SimRouter, TokenBucket

TARGET = OverlayTarget(
    local="192.0.2.1",
    vtep="192.0.2.2",
    vni=100,
    inner_src="203.0.113.1",
    inner_dst="203.0.113.2",
    inner_src_mac="02:00:c0:00:02:01",
    inner_dst_mac="02:00:c0:00:02:02",
    ident=0x1234,
    local_mtu=9216,
)
PATH_A = ["198.51.100.2", "198.51.100.6", "198.51.100.14", "192.0.2.2"]
PATH_B = ["198.51.100.2", "198.51.100.10", "198.51.100.18", "192.0.2.2"]


def lab_network(
    *,
    mtu_b: int = 1400,
    mtu_a: int = 1500,
    ptb: bool = True,
    ratelimit: tuple[int, float] | None = None,
    **kw: object,
) -> SimNetwork:
    """Two ECMP paths; r1 and r3 are one router each (shared rate-limit buckets), as in the lab."""

    def bucket() -> TokenBucket | None:
        return None if ratelimit is None else TokenBucket(*ratelimit)

    # one router, one token bucket, whatever interface it answers from
    r1, ra, rb, r3 = bucket(), bucket(), bucket(), bucket()
    paths = [
        SimPath(
            [
                SimRouter("198.51.100.2", mtu_out=mtu_a, ratelimit=r1),
                SimRouter("198.51.100.6", mtu_out=mtu_a, ratelimit=ra),
                SimRouter("198.51.100.14", mtu_out=mtu_a, ratelimit=r3),
            ]
        ),
        SimPath(
            [
                SimRouter("198.51.100.2", mtu_out=mtu_b, send_ptb=ptb, ratelimit=r1),
                SimRouter("198.51.100.10", mtu_out=mtu_b, ratelimit=rb),
                SimRouter("198.51.100.18", mtu_out=mtu_a, ratelimit=r3),
            ]
        ),
    ]
    return SimNetwork(TARGET, paths, local_mtu=TARGET.local_mtu, **kw)  # type: ignore[arg-type]
