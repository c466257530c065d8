"""Which UDP payloads a tunnel heuristic could possibly claim, decided on a few bytes, vectorized.

The scalar path tries every heuristic of the registry on each UDP payload whose
ports nobody configured.  Most payloads fail a heuristic's first, required
check (VXLAN's flags byte, Geneve's version and protocol type...), so the fast
path screens them with those same checks, written with numpy over the first
payload bytes, and calls the real heuristic only for the few payloads that
pass.  A heuristic without a screen here is called for every such payload.

Each screen must be *necessary*: if it says no, the heuristic returns less than
the threshold.  ``tests/fast/test_heuristics.py`` checks that on random and
crafted payloads for every heuristic the registry lists.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ipsotrace.dissectors import dtls, geneve, gtpu, plausible, teredo, vxlan, wireguard
from ipsotrace.dissectors import registry as reg
from ipsotrace.fast.tables import member

#: Payload bytes a screen may read (from the start of the UDP payload).
SCREEN_BYTES = 26

Col = Callable[[int], np.ndarray]
Screen = Callable[[Col, np.ndarray], np.ndarray]


_INNER_ETHERTYPES = member(plausible.INNER_ETHERTYPES, 65536)
_GENEVE_PROTOCOLS = member(geneve.KNOWN_PROTOCOLS, 65536)
_IPV6_NEXT = member(plausible.IPV6_NEXT, 256)
_WG_TYPES = member(wireguard.NAMES, 256)
_DTLS_TYPES = member(dtls.CONTENT_TYPES, 256)
_DTLS_VERSIONS = member(dtls.VERSIONS, 65536)


def _u16(col: Col, k: int) -> np.ndarray:
    return (col(k).astype(np.int64) << 8) | col(k + 1)


def _vxlan(col: Col, size: np.ndarray) -> np.ndarray:
    # (1 + checks) / 4 >= 0.6 needs two of three checks, and a valid inner IP implies a known
    # inner Ethertype: so the flags and the Ethertype are both required.
    b0 = col(0)
    flags = (b0 == vxlan.FLAG_I) | (b0 == (vxlan.FLAG_I | vxlan.FLAG_G))
    etype = _u16(col, vxlan.HEADER.size + 12)
    return (size >= vxlan.HEADER.size + 14) & flags & _INNER_ETHERTYPES.take(etype)


def _geneve(col: Col, size: np.ndarray) -> np.ndarray:
    return (size >= 28) & ((col(0) >> 6) == 0) & _GENEVE_PROTOCOLS.take(_u16(col, 2))


def _gtpu(col: Col, size: np.ndarray) -> np.ndarray:
    b0 = col(0)
    return (size >= 8) & ((b0 >> 5) == 1) & ((b0 & 0x10) != 0) & (col(1) == gtpu.G_PDU)


def _teredo(col: Col, size: np.ndarray) -> np.ndarray:
    # Either an indicator comes first (then the real heuristic decides), or an IPv6 header is
    # right there and two of: payload length fills the datagram, known next header, Teredo or
    # link-local address; so one of the first two must hold.
    w = _u16(col, 0)
    indicator = (size >= 2) & ((w == teredo.AUTH) | (w == teredo.ORIGIN))
    fills = (_u16(col, 4) + 40) == size
    known_next = _IPV6_NEXT.take(col(6))
    direct = (size >= 40) & ((col(0) >> 4) == 6) & (fills | known_next)
    return indicator | direct


def _wireguard(col: Col, size: np.ndarray) -> np.ndarray:
    zeros = (col(1) == 0) & (col(2) == 0) & (col(3) == 0)
    return (size >= wireguard.TRANSPORT_MIN) & _WG_TYPES.take(col(0)) & zeros


def _dtls(col: Col, size: np.ndarray) -> np.ndarray:
    known = _DTLS_TYPES.take(col(0)) & _DTLS_VERSIONS.take(_u16(col, 1))
    return (size >= dtls.RECORD.size) & known


#: heuristic function → its screen; keyed by the function so a rebinding disables the screen
SCREENS: dict[Callable[[bytes, int, int], float], Screen] = {
    vxlan.heuristic: _vxlan,
    geneve.heuristic: _geneve,
    gtpu.heuristic: _gtpu,
    teredo.heuristic: _teredo,
    wireguard.heuristic: _wireguard,
    dtls.heuristic: _dtls,
}


def may_fire(col: Col, size: np.ndarray) -> np.ndarray:
    """Rows where some registered heuristic might reach the threshold.

    ``col(k)`` is byte ``k`` of each payload (k < :data:`SCREEN_BYTES`; bytes past ``size``
    may be anything, every screen checks the size the heuristic itself requires first).
    """
    out = np.zeros(size.shape[0], dtype=bool)
    for probe in reg.HEURISTICS.values():
        screen = SCREENS.get(probe)
        if screen is None:
            return np.ones(size.shape[0], dtype=bool)
        out |= screen(col, size)
    return out


def fires(buf: bytes, off: int, end: int) -> bool:
    """The scalar path's own decision: would a heuristic claim this payload?"""
    best_conf = 0.0
    for probe in reg.HEURISTICS.values():
        best_conf = max(best_conf, probe(buf, off, end))
    return best_conf >= reg.HEURISTIC_THRESHOLD
