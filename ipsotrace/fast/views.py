"""Rebuild the correlator's per-packet :class:`View` from fast-path columns.

The fast path never needs this on its hot path (it aggregates columns
directly); it is the bridge that proves the columns right (tests compare it
with :func:`ipsotrace.correlate.extract.view` of the scalar packet) and the
exact, slow route for rare cases the vectorized aggregation hands back.
"""

from __future__ import annotations

import numpy as np

from ipsotrace.correlate.extract import EMPTY_INNER, Inner, View
from ipsotrace.fast.aggregate import address, outer_hop
from ipsotrace.fast.decode import ENCAPS, FastColumns

_M64 = (1 << 64) - 1


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
    hops = (outer_hop(c, ENCAPS[c["encap"]], c["tunnel_id"]),) if c["encap"] >= 0 else ()
    return View(hops, inner, None)
