"""Rebuild the correlator's per-packet :class:`View` from fast-path columns.

The fast path never needs this on its hot path (it aggregates columns
directly); it is the bridge that proves the columns right (tests compare it
with :func:`ipsotrace.correlate.extract.view` of the scalar packet) and the
exact, slow route for rare cases the vectorized aggregation hands back.
"""

from __future__ import annotations

import socket

import numpy as np

from ipsotrace.correlate.extract import EMPTY_INNER, Hop, Inner, View
from ipsotrace.fast.decode import ENCAPS, FastColumns

_M64 = (1 << 64) - 1


def address(ver: int, hi: int, lo: int) -> str:
    if ver == 4:
        return socket.inet_ntop(socket.AF_INET, (lo & 0xFFFFFFFF).to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, (hi & _M64).to_bytes(8, "big") + (lo & _M64).to_bytes(8, "big"))


def addresses(ver: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> list[str]:
    return [address(v, h, lo_) for v, h, lo_ in zip(ver.tolist(), hi.tolist(), lo.tolist(), strict=True)]


def row_view(fc: FastColumns, i: int) -> View:
    """The View of fast row ``i`` (the same object ``view(dissect_frame(...))`` gives)."""
    c = {k: int(v[i]) for k, v in fc.cols.items()}
    inner = EMPTY_INNER
    if c["i_ver"]:
        inner = Inner(
            "ipv4" if c["i_ver"] == 4 else "ipv6",
            address(c["i_ver"], c["i_src_hi"], c["i_src_lo"]),
            address(c["i_ver"], c["i_dst_hi"], c["i_dst_lo"]),
            c["i_proto"],
            c["i_sport"],
            c["i_dport"],
            c["i_size"],
            bool(c["i_df"]),
            False,
            c["i_ttl"],
            c["i_dscp"],
            c["i_ecn"],
            c["tcp_flags"],
            c["tcp_seq"] if c["tcp_flags"] >= 0 else 0,
            c["tcp_len"] if c["tcp_flags"] >= 0 else 0,
            c["mss"],
        )
    hops: tuple[Hop, ...] = ()
    if c["encap"] >= 0:
        hops = (
            Hop(
                ENCAPS[c["encap"]],
                address(c["o_ver"], c["o_src_hi"], c["o_src_lo"]),
                address(c["o_ver"], c["o_dst_hi"], c["o_dst_lo"]),
                None if c["tunnel_id"] < 0 else c["tunnel_id"],
                c["o_proto"],
                c["o_sport"],
                c["o_dport"],
                c["o_flow_label"],
                c["o_ttl"],
                c["o_dscp"],
                c["o_ecn"],
                c["o_size"],
            ),
        )
    return View(hops, inner, None)
