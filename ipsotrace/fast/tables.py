"""The registry's binding tables and header declarations, as numpy lookup arrays.

Nothing here is a second copy of a protocol number: every table is built from
:mod:`ipsotrace.dissectors.registry` (and the run's :class:`DissectConfig`), and
every header size and field offset from the dissectors' ``Header`` declarations
(house rule 11).  The fast path walks only the protocols listed in
:data:`WALKERS`, and only while the registry binds their names to the very
dissector functions the fast code mirrors; anything else a table leads to
sends the packet to the scalar path.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ipsotrace.dissectors import eth, geneve, gre, ipv4, ipv6, tcp, udp, vlan, vxlan
from ipsotrace.dissectors import registry as reg
from ipsotrace.dissectors.base import Header
from ipsotrace.dissectors.registry import DissectConfig

#: Walk codes: 0 the scalar loop stops here (no next layer), 1 a protocol only the scalar path
#: decodes, 2… the protocols the fast path walks.
TERMINAL = 0
FALLBACK = 1
WALKERS: dict[str, Callable[..., object]] = {
    "eth": eth.dissect,
    "vlan": vlan.dissect,
    "ipv4": ipv4.dissect,
    "ipv6": ipv6.dissect,
    "udp": udp.dissect,
    "tcp": tcp.dissect,
    "vxlan": vxlan.dissect,
    "geneve": geneve.dissect,
    "gre": gre.dissect,
}
NAMES: tuple[str, ...] = ("<end>", "<scalar>", *WALKERS)
CODE: dict[str, int] = {n: i for i, n in enumerate(NAMES)}

_FIELD = re.compile(r"(\d*)([xcbB?hHiIlLqQnNefdspP])")


def offset(header: Header, name: str) -> int:
    """Byte offset of field ``name`` in a header declared as data."""
    pos = 0
    names = iter(header.names)
    for count, code in _FIELD.findall(header.fmt):
        size = struct.calcsize("!" + count + code)
        if code == "x":
            pos += size
            continue
        if next(names) == name:
            return pos
        pos += size
    raise KeyError(f"{header.proto} header has no field {name!r}")


def _code(name: str | None) -> int:
    """What the scalar loop does with a resolved protocol name, as a walk code."""
    if name is None:
        return TERMINAL
    if name in reg.VARIANTS:
        return FALLBACK
    fn = reg.DISSECTORS.get(name)
    if fn is None:
        return TERMINAL
    # Walk a protocol only while the registry still binds it to the dissector we mirror.
    return CODE[name] if WALKERS.get(name) is fn else FALLBACK


def member(values: object, size: int) -> np.ndarray:
    """A lookup table: ``table[x]`` is True when ``x`` is one of ``values`` (faster than np.isin)."""
    out = np.zeros(size, dtype=bool)
    for v in values:  # type: ignore[attr-defined]
        if 0 <= v < size:
            out[v] = True
    return out


def _table(size: int, *mappings: dict[int, str]) -> np.ndarray:
    """Key → walk code; the first mapping that has a key wins (the registry's ``a.get(k) or b.get(k)``)."""
    out = np.full(size, TERMINAL, dtype=np.int8)
    for mapping in reversed(mappings):
        for k, name in mapping.items():
            if 0 <= k < size and name:
                out[k] = _code(name)
    return out


@dataclass(frozen=True, slots=True)
class Tables:
    """Lookup arrays for one run's configuration."""

    ethertype: np.ndarray  # 65536 → walk code
    gre: np.ndarray  # 65536 → walk code (GRE types first, then Ethertypes, as the registry)
    ipproto: np.ndarray  # 256 → walk code
    udp_port: np.ndarray  # 65536 → walk code, TERMINAL where nobody bound the port
    udp_bound: np.ndarray  # 65536 → bool: the port is configured (bound ports win over heuristics)
    heuristics: bool  # the scalar path would try heuristics on unbound ports
    linktype: dict[int, int]  # linktype → walk code of the first layer (-1: by IP version nibble)
    max_depth: int

    @classmethod
    def build(cls, cfg: DissectConfig) -> Tables:
        ports = np.full(65536, TERMINAL, dtype=np.int8)
        bound = np.zeros(65536, dtype=bool)
        for port, name in cfg.udp_ports.items():
            if 0 <= port < 65536:
                ports[port] = _code(name)
                bound[port] = True
        links: dict[int, int] = {}
        for lt, name in reg.LINKTYPES.items():
            links[lt] = -1 if name == "ipv4-or-ipv6" else _code(name)
        return cls(
            ethertype=_table(65536, reg.ETHERTYPES),
            gre=_table(65536, reg.GRE_PROTOS, reg.ETHERTYPES),
            ipproto=_table(256, reg.IPPROTOS),
            udp_port=ports,
            udp_bound=bound,
            heuristics=bool(cfg.heuristics and reg.HEURISTICS),
            linktype=links,
            max_depth=cfg.max_depth,
        )


_CACHE: dict[tuple[tuple[tuple[int, str], ...], bool, int], Tables] = {}


def tables_for(cfg: DissectConfig) -> Tables:
    key = (tuple(sorted(cfg.udp_ports.items())), cfg.heuristics, cfg.max_depth)
    t = _CACHE.get(key)
    if t is None:
        _CACHE.clear()  # one configuration per run in practice
        t = _CACHE[key] = Tables.build(cfg)
    return t


# --- header geometry, from the declarations -----------------------------------------------------
ETH_LEN = eth.HEADER.size
ETH_TYPE = offset(eth.HEADER, "type")
ETH_SRC = offset(eth.HEADER, "src")
ETH_DST = offset(eth.HEADER, "dst")
MAX_8023 = eth.MAX_8023_LENGTH
VLAN_LEN = vlan.HEADER.size
VLAN_TYPE = offset(vlan.HEADER, "type")
V4_LEN = ipv4.HEADER.size
V4_VIHL = offset(ipv4.HEADER, "vihl")
V4_TOS = offset(ipv4.HEADER, "tos")
V4_TOTAL = offset(ipv4.HEADER, "total_length")
V4_ID = offset(ipv4.HEADER, "id")
V4_FF = offset(ipv4.HEADER, "flags_frag")
V4_TTL = offset(ipv4.HEADER, "ttl")
V4_PROTO = offset(ipv4.HEADER, "proto")
V4_SRC = offset(ipv4.HEADER, "_src")
V4_DST = offset(ipv4.HEADER, "_dst")
V6_LEN = ipv6.HEADER.size
V6_VTF = offset(ipv6.HEADER, "vtf")
V6_PLEN = offset(ipv6.HEADER, "payload_length")
V6_NH = offset(ipv6.HEADER, "next_header")
V6_HLIM = offset(ipv6.HEADER, "hlim")
V6_SRC = offset(ipv6.HEADER, "_src")
V6_DST = offset(ipv6.HEADER, "_dst")
UDP_LEN = udp.HEADER.size
UDP_SPORT = offset(udp.HEADER, "sport")
UDP_DPORT = offset(udp.HEADER, "dport")
UDP_LENGTH = offset(udp.HEADER, "length")
UDP_CSUM = offset(udp.HEADER, "checksum")
TCP_LEN = tcp.HEADER.size
TCP_SPORT = offset(tcp.HEADER, "sport")
TCP_DPORT = offset(tcp.HEADER, "dport")
TCP_SEQ = offset(tcp.HEADER, "seq")
TCP_ACK = offset(tcp.HEADER, "ack")
TCP_CSUM = offset(tcp.HEADER, "checksum")
TCP_OFFRES = offset(tcp.HEADER, "offset_res")
TCP_FLAGS = offset(tcp.HEADER, "flags")
VXLAN_LEN = vxlan.HEADER.size
VXLAN_FLAGS = offset(vxlan.HEADER, "flags")
VXLAN_VNI = offset(vxlan.HEADER, "vni_reserved")
GENEVE_LEN = geneve.HEADER.size
GENEVE_VER = offset(geneve.HEADER, "ver_optlen")
GENEVE_FLAGS = offset(geneve.HEADER, "flags")
GENEVE_PTYPE = offset(geneve.HEADER, "protocol_type")
GENEVE_VNI = offset(geneve.HEADER, "vni_reserved")
GRE_LEN = gre.HEADER.size
GRE_FLAGS = offset(gre.HEADER, "flags_version")
GRE_PTYPE = offset(gre.HEADER, "protocol")
