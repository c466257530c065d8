"""Vectorized decoding of a batch: header *shapes*, fixed-offset gathers, and a conservative fallback.

The first :data:`WINDOW` bytes of every frame are copied into one ``(n, WINDOW)``
matrix (a header window).  Frames are then walked layer by layer **as groups**:
every group shares one shape prefix (the same protocols at the same offsets),
so a header field is one fixed column of the matrix: a strided view while the
group is the whole batch, a gather once it has split.  A group splits only
where its frames differ (a VLAN tag, IPv4 or IPv6, TCP or UDP...); each layer
writes its fields into batch-wide columns as it is decoded, so a split copies
index arrays, never header bytes.  A shape deeper than the window is read again
with a wider one.

The fallback decision is conservative: a frame stays on the fast path only if
the scalar dissectors would give it exactly this layer stack **with no anomaly**
and no field the columns do not carry (IPv4/IPv6 options and extension headers,
fragments, malformed TCP options, VXLAN GBP, Geneve
options, GRE with checksum/sequence/routing, ICMP, ARP, nested tunnels,
truncation inside a header, lengths that disagree, a payload a heuristic might
claim...).  Everything else goes to :func:`ipsotrace.dissectors.registry.dissect_frame`.

The columns are exactly the correlator's :class:`ipsotrace.correlate.extract.View`
of the scalar packet (tests/fast compare them frame by frame).

The same walk, one frame at a time, is compiled in ipsotrace/fast/_decode.c (:data:`DECODE`):
the same steps, checks, tables and header geometry (passed to it by name), without numpy's
per-group calls (a capture of many shapes splits into many small groups).  It leaves one thing
to this module: whether a heuristic claims a UDP payload (:func:`_claims`).  Without it (not
built, or ``IPSOTRACE_NO_EXT=1``) the numpy walk runs: the same columns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ipsotrace.dissectors import gre, ipv4, ipv6, vxlan
from ipsotrace.dissectors.registry import DissectConfig
from ipsotrace.fast import heuristics
from ipsotrace.fast import tables as T
from ipsotrace.fast.batch import PAD, Batch, compiled, windows

#: Header bytes copied per frame: VXLAN over IPv4 with an inner TCP timestamp option needs 116.
WINDOW = 128
#: The wider window of deeper shapes (VLAN, IPv6, VXLAN, VLAN, IPv6, TCP with timestamps: 168).
WIDE = 192
assert WIDE <= PAD

_I64 = np.int64

#: Tunnel names in the ``encap`` column (the names the correlator gives hops).
ENCAPS: tuple[str, ...] = ("vxlan", "geneve", "gre", "nvgre", "ipip", "6in4", "4in6", "6in6")
ENCAP_CODE = {n: i for i, n in enumerate(ENCAPS)}
_IPIP_CODE = {
    (4, 4): ENCAP_CODE["ipip"],
    (4, 41): ENCAP_CODE["6in4"],
    (6, 4): ENCAP_CODE["4in6"],
    (6, 41): ENCAP_CODE["6in6"],
}

#: Columns of a :class:`FastColumns`, all int64.  ``o_*``: the tunnel hop's outer IP header (and
#: UDP ports, or NVGRE's FlowID as ``o_sport``); ``i_*``: the inner (untunnelled: the only) IP
#: header and its transport.  Addresses are two 64-bit halves (IPv4: ``hi = 0``).
#: ``ipid``: IPv4 identification (0 for IPv6); ``csum``: the TCP/UDP checksum, -1 without a transport
#: header (both only for the findings' duplicate fingerprint)
IP_FIELDS = (
    "ver", "src_hi", "src_lo", "dst_hi", "dst_lo", "proto", "ttl", "dscp", "ecn", "size", "df", "flow_label", "ipid"
)  # fmt: skip
L4_FIELDS = ("sport", "dport", "csum")
COLUMNS: tuple[str, ...] = (
    "row",
    "shape",
    "encap",
    "tunnel_id",
    *(f"o_{f}" for f in IP_FIELDS + L4_FIELDS),
    *(f"i_{f}" for f in IP_FIELDS + L4_FIELDS),
    "tcp_flags",
    "tcp_seq",
    "tcp_ack",
    "tcp_len",
    "mss",
)
#: value of a column when the frame has no such header
ABSENT: dict[str, int] = {
    "encap": -1, "tunnel_id": -1, "o_ttl": -1, "i_ttl": -1, "tcp_flags": -1, "o_csum": -1, "i_csum": -1
}  # fmt: skip
_DEPTH_COLUMNS = tuple(f for f in IP_FIELDS + L4_FIELDS)

_VXLAN_PLAIN = vxlan.FLAG_I << 24  # flags I only, no GBP, reserved zero
_NOP_NOP_TS = 0x0101080A  # TCP options NOP, NOP, timestamps (kind 8, length 10)
_V4_IP_IN_IP = T.member(ipv4.IP_IN_IP, 256)
_V6_IP_IN_IP = T.member(ipv6.IP_IN_IP, 256)
_V6_EXT = T.member(ipv6.EXT_NAMES, 256)
_GRE_SUBHEADER = T.member(gre.TUNNEL_SUBHEADER, 65536)


@dataclass(slots=True)
class FastColumns:
    """Decoded frames of one batch, in batch order (``row`` is the frame's position in the batch)."""

    cols: dict[str, np.ndarray]
    fallback: np.ndarray  # positions in the batch of frames the scalar path must decode
    shapes: list[str]  # shape id → name
    shape_counts: Counter[str] = field(default_factory=Counter)
    #: with ``tunnelled_only``: positions of the fast frames without a tunnel (left out of ``cols``)
    plain: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.cols["row"].shape[0])


# --- groups --------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Group:
    """Frames that share a shape prefix.

    ``rows``: positions in the decoded rows (None: all of them); ``m``: the header windows the
    group reads, and ``mi`` its rows in ``m`` (None: all, in order).
    """

    rows: np.ndarray | None
    m: np.ndarray
    mi: np.ndarray | None
    layers: tuple[tuple[str, int, int], ...]  # (protocol, offset, depth) decoded so far
    o: int  # offset of the next header
    depth: int

    def take(self, sel: np.ndarray) -> _Group:
        idx = np.flatnonzero(sel)
        rows = idx if self.rows is None else self.rows[idx]
        mi = idx if self.mi is None else self.mi[idx]
        return _Group(rows, self.m, mi, self.layers, self.o, self.depth)

    def size(self, n: int) -> int:
        return n if self.rows is None else int(self.rows.shape[0])

    # reads: one fixed column of the header windows
    def u8(self, k: int) -> np.ndarray:
        col = self.m[:, self.o + k]
        return col if self.mi is None else col[self.mi]

    def _be(self, k: int, fmt: str) -> np.ndarray:
        m = self.m
        view = np.ndarray(shape=(m.shape[0],), dtype=fmt, buffer=m, offset=self.o + k, strides=(m.strides[0],))
        return view if self.mi is None else view[self.mi]

    def u16(self, k: int) -> np.ndarray:
        return self._be(k, ">u2")

    def u32(self, k: int) -> np.ndarray:
        return self._be(k, ">u4")

    def u64(self, k: int) -> np.ndarray:
        """A 64-bit big-endian half of an IPv6 address, its bits kept in an int64."""
        return self._be(k, ">u8").astype(np.uint64).view(_I64)


@dataclass(slots=True)
class _Step:
    """What one header says, per frame: usable on the fast path, its length, what follows."""

    ok: np.ndarray
    nxt: np.ndarray | int  # walk code(s) of the next header
    length: np.ndarray | int
    end: np.ndarray | None = None  # new payload limit
    encap: np.ndarray | bool = False  # what follows is an encapsulated packet


class _Decoder:
    def __init__(
        self, batch: Batch, rows: np.ndarray, t: T.Tables, gre_key_as_id: bool, tunnelled_only: bool = False
    ) -> None:
        self.tunnelled_only = tunnelled_only
        self.batch = batch
        self.t = t
        self.gre_key_as_id = gre_key_as_id
        self.brow = rows  # decoded row → position in the batch
        n = self.n = int(rows.shape[0])
        self.offset = batch.offset[rows]
        self.caplen = batch.caplen[rows]
        self.end = self.caplen.copy()  # payload limit so far (IP and UDP lengths narrow it)
        self.cut = self.caplen < batch.wirelen[rows]  # the snaplen cut the frame
        self.fb = np.zeros(n, dtype=bool)
        self.done = np.zeros(n, dtype=bool)
        # per depth d (0 outer or untunnelled, 1 inner): IP and transport fields
        self.d = [
            {c: np.full(n, -1 if c in ("ttl", "csum") else 0, dtype=_I64) for c in _DEPTH_COLUMNS} for _ in range(2)
        ]
        self.out: dict[str, np.ndarray] = {
            "shape": np.zeros(n, dtype=_I64),
            "encap": np.full(n, -1, dtype=_I64),
            "tunnel_id": np.full(n, -1, dtype=_I64),
            "tcp_flags": np.full(n, -1, dtype=_I64),
            "tcp_seq": np.zeros(n, dtype=_I64),
            "tcp_ack": np.zeros(n, dtype=_I64),
            "tcp_len": np.zeros(n, dtype=_I64),
            "mss": np.zeros(n, dtype=_I64),
        }
        self.shapes: dict[tuple[tuple[str, int, int], ...], int] = {}
        self.counts: Counter[str] = Counter()

    # -- helpers -------------------------------------------------------------------------------------
    def widen(self, g: _Group) -> _Group:
        """The same group reading the wider header window."""
        if g.m.shape[1] >= WIDE:
            return g
        rows = np.arange(self.n) if g.rows is None else g.rows
        wide = windows(self.batch.data, self.offset[rows], WIDE)
        return _Group(g.rows, wide, None, g.layers, g.o, g.depth)

    def _set(self, col: np.ndarray, g: _Group, values: np.ndarray | int) -> None:
        if g.rows is None:
            col[:] = values
        else:
            col[g.rows] = values

    def _set_where(self, col: np.ndarray, g: _Group, sel: np.ndarray, values: np.ndarray) -> None:
        """Write ``values`` (one per row of ``g``) only where ``sel``."""
        idx = np.flatnonzero(sel)
        col[idx if g.rows is None else g.rows[idx]] = values[idx]

    def _get(self, col: np.ndarray, g: _Group) -> np.ndarray:
        return col if g.rows is None else col[g.rows]

    def _fallback(self, g: _Group, sel: np.ndarray | None = None) -> None:
        if sel is None:
            self._set(self.fb, g, True)
        elif g.rows is None:
            self.fb[sel] = True
        else:
            self.fb[g.rows[sel]] = True

    # -- driver --------------------------------------------------------------------------------------
    def run(self) -> None:
        b, t = self.batch, self.t
        m = windows(b.data, self.offset, WINDOW)
        g = _Group(None, m, None, (), 0, 0)
        lts = b.linktype[self.brow]
        first = np.full(self.n, T.FALLBACK, dtype=np.int8)
        for lt in np.unique(lts).tolist() if lts.shape[0] and (lts != lts[0]).any() else [int(lts[0])]:
            code = t.linktype.get(int(lt), T.FALLBACK)
            sel = lts == lt
            if code == -1:  # raw IP: the version nibble decides
                ver = m[:, 0] >> 4
                by_ver = np.where(ver == 4, T.CODE["ipv4"], np.where(ver == 6, T.CODE["ipv6"], T.TERMINAL))
                first[sel] = by_ver[sel]
            else:
                first[sel] = code
        stack: list[tuple[_Group, int]] = []
        self._split(g, first.astype(_I64), stack)
        while stack:
            grp, code = stack.pop()
            self._visit(grp, code, stack)

    def _split(self, g: _Group, key: np.ndarray, stack: list[tuple[_Group, int]]) -> None:
        if key.shape[0] == 0:
            return
        k0 = int(key[0])
        if (key == k0).all():
            stack.append((g, k0))
            return
        for k in np.flatnonzero(np.bincount(key)).tolist():
            stack.append((g.take(key == k), int(k)))

    def _visit(self, g: _Group, code: int, stack: list[tuple[_Group, int]]) -> None:
        if code == T.FALLBACK:
            self._fallback(g)
            return
        end = self._get(self.end, g)
        # the scalar loop stops before a header when no bytes are left (or, snaplen cut, reports it)
        at_end = end <= g.o
        some_at_end = code != T.TERMINAL and bool(at_end.any())  # (usually none: one check)
        if code == T.TERMINAL or (some_at_end and at_end.all()):
            if code != T.TERMINAL:
                bad = self._get(self.cut, g) & (end >= self._get(self.caplen, g))
                if bad.any():
                    self._fallback(g, bad)
            self._leaf(g)
            return
        if some_at_end:
            self._visit(g.take(at_end), code, stack)
            g = g.take(~at_end)
            end = self._get(self.end, g)
        name = T.NAMES[code]
        if g.o + _READS[name] > g.m.shape[1]:
            if g.m.shape[1] >= WIDE or g.o + _READS[name] > WIDE:
                self._fallback(g)
                return
            g = self.widen(g)
        step = _STEPS[name](self, g, end)
        if not step.ok.all():
            self._fallback(g, ~step.ok)
            keep = step.ok
            g = g.take(keep)
            step = _Step(
                keep[keep],
                step.nxt[keep] if isinstance(step.nxt, np.ndarray) else step.nxt,
                step.length[keep] if isinstance(step.length, np.ndarray) else step.length,
                None if step.end is None else step.end[keep],
                step.encap[keep] if isinstance(step.encap, np.ndarray) else step.encap,
            )
        n = g.size(self.n)
        if n == 0:
            return
        if step.end is not None:
            self._set(self.end, g, step.end)
        layers = (*g.layers, (name, g.o, g.depth))
        nxt = step.nxt
        if isinstance(nxt, int) and nxt == T.TERMINAL:
            # the walk ends here whatever the header's length: no split needed
            self._leaf(_Group(g.rows, g.m, g.mi, layers, g.o, g.depth))
            return
        u_nxt, u_length, u_encap = _uniform(nxt), _uniform(step.length), _uniform(step.encap)
        if u_nxt is not None and u_length is not None and u_encap is not None:
            # the whole group goes on alike (the usual case): no per-frame key needed
            parts = [(g, u_nxt | (0 if u_nxt == T.TERMINAL else u_length << 5) | (u_encap << 12))]
        else:
            nxt_a = np.broadcast_to(np.asarray(nxt, dtype=_I64), (n,))
            length_a = np.broadcast_to(np.asarray(step.length, dtype=_I64), (n,))
            encap_a = np.broadcast_to(np.asarray(step.encap, dtype=bool), (n,))
            # the length matters only where another header follows
            k = nxt_a | np.where(nxt_a == T.TERMINAL, 0, length_a << 5) | (encap_a.astype(_I64) << 12)
            k0 = int(k[0])
            # a handful of small codes: the present ones are found by counting, not sorting
            uniform = bool((k == k0).all())
            parts = [(g, k0)] if uniform else [(g.take(k == v), v) for v in np.flatnonzero(np.bincount(k)).tolist()]
        for sub, v in parts:
            c, ln, enc = v & 0x1F, (v >> 5) & 0x7F, bool(v >> 12)
            depth = sub.depth + enc
            if depth > min(1, self.t.max_depth):  # nested tunnels, or a depth limit of 0: scalar only
                self._fallback(sub)
                continue
            child = _Group(sub.rows, sub.m, sub.mi, layers, sub.o + ln, depth)
            if c == T.TERMINAL:
                self._leaf(child)
            else:
                stack.append((child, c))

    # -- leaves: a complete shape ---------------------------------------------------------------------
    def _leaf(self, g: _Group) -> None:
        if g.size(self.n) == 0:
            return
        layers = g.layers
        if not any(ly[0] in ("ipv4", "ipv6") and ly[2] == g.depth for ly in layers):
            self._fallback(g)  # no IP header where the flow is read: scalar only
            return
        sid = self.shapes.setdefault(layers, len(self.shapes))
        self._set(self.out["shape"], g, sid)
        self._set(self.done, g, True)

    def result(self) -> FastColumns:
        names = [""] * len(self.shapes)
        for shape, sid in self.shapes.items():
            names[sid] = _shape_name(shape)
        keep = self.done & ~self.fb
        counts: Counter[str] = Counter()
        for sid, cnt in enumerate(np.bincount(self.out["shape"][keep], minlength=len(names)).tolist()):
            if cnt:
                counts[names[sid]] = cnt
        tunnelled = self.out["encap"] >= 0
        fb = self.brow[~keep]
        plain = None
        if self.tunnelled_only:
            plain = self.brow[keep & ~tunnelled]
            keep = keep & tunnelled
        # the kept rows are picked first (one index for every column), then laid out
        idx = None if keep.all() else np.flatnonzero(keep)

        def pick(a: np.ndarray) -> np.ndarray:
            return a if idx is None else a.take(idx)

        tun = pick(tunnelled)
        k = tun.shape[0]
        out: dict[str, np.ndarray] = {"row": pick(self.brow), **{c: pick(v) for c, v in self.out.items()}}
        d0, d1 = self.d
        if tun.all():
            for c in _DEPTH_COLUMNS:
                out["o_" + c], out["i_" + c] = pick(d0[c]), pick(d1[c])
        elif not tun.any():
            for c in _DEPTH_COLUMNS:
                out["i_" + c] = pick(d0[c])
                out["o_" + c] = np.full(k, ABSENT.get("o_" + c, 0), dtype=_I64)
        else:
            for c in _DEPTH_COLUMNS:
                a0 = pick(d0[c])
                out["o_" + c] = np.where(tun, a0, ABSENT.get("o_" + c, 0))
                out["i_" + c] = np.where(tun, pick(d1[c]), a0)
        return FastColumns(out, fb, names, counts, plain)


def _uniform(x: np.ndarray | int | bool) -> int | None:
    """The one value of a step's per-frame answer (a scalar, or an array of equal values), else None."""
    if not isinstance(x, np.ndarray):
        return int(x)
    x0 = x[0]
    return int(x0) if bool((x == x0).all()) else None


# --- the steps: what the scalar dissector would do, checked for every frame ----------------------
# (tables are read with ``take``: fancy indexing with a strided or narrow index is about twice as slow)
def _fits(end: np.ndarray, o: int, need: int) -> np.ndarray:
    return (end - o) >= need


def _eth(d: _Decoder, g: _Group, end: np.ndarray) -> _Step:
    etype = g.u16(T.ETH_TYPE)
    ok = _fits(end, g.o, T.ETH_LEN) & (etype > T.MAX_8023)  # 802.3 length + LLC: scalar only
    return _Step(ok, d.t.ethertype.take(etype), T.ETH_LEN)


def _vlan(d: _Decoder, g: _Group, end: np.ndarray) -> _Step:
    etype = g.u16(T.VLAN_TYPE)
    ok = _fits(end, g.o, T.VLAN_LEN) & (etype > T.MAX_8023)
    return _Step(ok, d.t.ethertype.take(etype), T.VLAN_LEN)


def _ipv4(d: _Decoder, g: _Group, end: np.ndarray) -> _Step:
    o = g.o
    total = g.u16(T.V4_TOTAL).astype(_I64)
    ff = g.u16(T.V4_FF)
    proto = g.u8(T.V4_PROTO)
    payload_end = o + total
    ok = (
        _fits(end, o, T.V4_LEN)
        & (g.u8(T.V4_VIHL) == 0x45)  # version 4 without options
        & (total >= T.V4_LEN)  # 0 is a GSO super-frame, below 20 malformed
        & ((ff & 0xBFFF) == 0)  # no evil bit, not a fragment (DF alone is fine)
        & ((payload_end <= end) | d._get(d.cut, g))
    )
    encap = _V4_IP_IN_IP.take(proto)
    # Ethernet in IP (143) is named "eth-in-ipv4" by the correlator: scalar only
    ok &= ~encap | (proto == 4) | (proto == 41)
    cols = d.d[g.depth]
    tos = g.u8(T.V4_TOS)
    d._set(cols["ver"], g, 4)
    d._set(cols["src_lo"], g, g.u32(T.V4_SRC))
    d._set(cols["dst_lo"], g, g.u32(T.V4_DST))
    d._set(cols["proto"], g, proto)
    d._set(cols["ttl"], g, g.u8(T.V4_TTL))
    d._set(cols["dscp"], g, tos >> 2)
    d._set(cols["ecn"], g, tos & 3)
    d._set(cols["size"], g, total)
    d._set(cols["df"], g, (ff >> 14) & 1)
    d._set(cols["ipid"], g, g.u16(T.V4_ID))
    if encap.any():
        d._set_where(d.out["encap"], g, encap, np.where(proto == 4, _IPIP_CODE[4, 4], _IPIP_CODE[4, 41]))
    return _Step(ok, d.t.ipproto.take(proto), T.V4_LEN, np.minimum(end, payload_end), encap)


def _ipv6(d: _Decoder, g: _Group, end: np.ndarray) -> _Step:
    o = g.o
    vtf = g.u32(T.V6_VTF).astype(_I64)
    plen = g.u16(T.V6_PLEN).astype(_I64)
    nh = g.u8(T.V6_NH)
    payload_end = o + T.V6_LEN + plen
    ok = (
        _fits(end, o, T.V6_LEN)
        & ((vtf >> 28) == 6)
        & (plen > 0)  # jumbogram / GSO: scalar only
        & ~_V6_EXT.take(nh)
        & ((payload_end <= end) | d._get(d.cut, g))
    )
    encap = _V6_IP_IN_IP.take(nh)
    ok &= ~encap | (nh == 4) | (nh == 41)
    cols = d.d[g.depth]
    tclass = (vtf >> 20) & 0xFF
    d._set(cols["ver"], g, 6)
    d._set(cols["src_hi"], g, g.u64(T.V6_SRC))
    d._set(cols["src_lo"], g, g.u64(T.V6_SRC + 8))
    d._set(cols["dst_hi"], g, g.u64(T.V6_DST))
    d._set(cols["dst_lo"], g, g.u64(T.V6_DST + 8))
    d._set(cols["proto"], g, nh)
    d._set(cols["ttl"], g, g.u8(T.V6_HLIM))
    d._set(cols["dscp"], g, tclass >> 2)
    d._set(cols["ecn"], g, tclass & 3)
    d._set(cols["size"], g, plen + T.V6_LEN)
    d._set(cols["df"], g, 1)  # IPv6 is never fragmented by routers
    d._set(cols["flow_label"], g, vtf & 0xFFFFF)
    if encap.any():
        d._set_where(d.out["encap"], g, encap, np.where(nh == 4, _IPIP_CODE[6, 4], _IPIP_CODE[6, 41]))
    nxt = np.where(nh == ipv6.NO_NEXT, T.TERMINAL, d.t.ipproto.take(nh))
    return _Step(ok, nxt, T.V6_LEN, np.minimum(end, payload_end), encap)


def _udp(d: _Decoder, g: _Group, end: np.ndarray) -> _Step:
    t, o = d.t, g.o
    sport = g.u16(T.UDP_SPORT)
    dport = g.u16(T.UDP_DPORT)
    length = g.u16(T.UDP_LENGTH).astype(_I64)
    payload_end = o + length
    ok = _fits(end, o, T.UDP_LEN) & (length >= T.UDP_LEN) & ((payload_end <= end) | d._get(d.cut, g))
    new_end = np.minimum(end, payload_end)
    lo = np.minimum(sport, dport)
    hi = np.maximum(sport, dport)
    # the lower port first, like the registry
    bound_lo = t.udp_bound.take(lo)
    nxt = np.where(bound_lo, t.udp_port.take(lo), t.udp_port.take(hi))
    if t.heuristics:
        start = o + T.UDP_LEN
        unbound = ~bound_lo & ~t.udp_bound.take(hi) & (new_end > start)
        if unbound.any():
            ok &= ~_heuristic_claims(d, g, unbound, start, new_end)
    cols = d.d[g.depth]
    d._set(cols["sport"], g, sport)
    d._set(cols["dport"], g, dport)
    d._set(cols["csum"], g, g.u16(T.UDP_CSUM))
    return _Step(ok, nxt, T.UDP_LEN, new_end)


def _heuristic_claims(d: _Decoder, g: _Group, cand: np.ndarray, start: int, end: np.ndarray) -> np.ndarray:
    """Rows whose payload a heuristic would claim (the scalar path then decodes a tunnel there)."""
    claims = np.zeros(cand.shape[0], dtype=bool)
    idx = np.flatnonzero(cand)
    if idx.shape[0]:
        frames = d.brow[idx if g.rows is None else g.rows[idx]]
        claims[idx] = _claims(d.batch, frames, np.full(idx.shape[0], start, dtype=_I64), end[idx])
    return claims


def _claims(batch: Batch, frames: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Which of these UDP payloads (batch positions, payload start and end in the frame) a heuristic claims."""
    win = windows(batch.data, batch.offset[frames] + start, heuristics.SCREEN_BYTES)
    screened = heuristics.may_fire(lambda k: win[:, k], end - start)
    claims = np.zeros(frames.shape[0], dtype=bool)
    for i in np.flatnonzero(screened).tolist():
        claims[i] = heuristics.fires(batch.frame_bytes(int(frames[i])), int(start[i]), int(end[i]))
    return claims


def _tcp(d: _Decoder, g: _Group, end: np.ndarray) -> _Step:
    o = g.o
    offres = g.u8(T.TCP_OFFRES)
    hlen = (offres >> 4).astype(_I64) * 4
    ok = _fits(end, o, T.TCP_LEN) & (hlen >= T.TCP_LEN) & ((end - o) >= hlen)
    mss = np.zeros(hlen.shape[0], dtype=_I64)
    opts = ok & (hlen > T.TCP_LEN)
    if opts.any():
        if o + int(hlen[opts].max()) > g.m.shape[1]:
            if o + 60 > WIDE:
                ok &= ~opts  # options beyond even the wide window: scalar only
                opts[:] = False
            else:
                g = d.widen(g)
        if opts.any():
            # most segments carry exactly NOP, NOP, timestamps: nothing to walk, no MSS
            opts &= (hlen != T.TCP_LEN + 12) | (g.u32(T.TCP_LEN) != _NOP_NOP_TS)
        if opts.any():
            bad, mss = _tcp_options(g, o, hlen, opts)
            ok &= ~bad
    cols = d.d[g.depth]
    flags = g.u8(T.TCP_FLAGS).astype(_I64) | ((offres & 1).astype(_I64) << 8)
    payload = np.maximum(0, end - o - hlen)
    d._set(cols["sport"], g, g.u16(T.TCP_SPORT))
    d._set(cols["dport"], g, g.u16(T.TCP_DPORT))
    d._set(d.out["tcp_flags"], g, flags)
    d._set(d.out["tcp_seq"], g, g.u32(T.TCP_SEQ))
    d._set(d.out["tcp_ack"], g, g.u32(T.TCP_ACK))
    d._set(cols["csum"], g, g.u16(T.TCP_CSUM))
    d._set(d.out["tcp_len"], g, payload + (flags & 1) + ((flags >> 1) & 1))
    d._set(d.out["mss"], g, mss)
    return _Step(ok, T.TERMINAL, hlen)


def _tcp_options(g: _Group, o: int, hlen: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scalar ``tcp._options`` walk, one option of every frame per round.

    Returns (bad, mss): ``bad`` where the scalar dissector reports ``tcp.bad-option``; ``mss`` the
    last MSS option (kind 2, length 4), 0 without one.
    """
    n = hlen.shape[0]
    bad = np.zeros(n, dtype=bool)
    mss = np.zeros(n, dtype=_I64)
    m = g.m
    mi = np.arange(n) if g.mi is None else g.mi
    pos = np.full(n, o + T.TCP_LEN, dtype=_I64)
    stop = o + hlen
    idx = np.flatnonzero(rows)
    last = m.shape[1] - 1
    while idx.shape[0]:
        p, r, e = pos[idx], mi[idx], stop[idx]
        kind = m[r, p].astype(_I64)
        nop = kind == 1
        opt = kind > 1  # kind 0 ends the list
        olen = m[r, np.minimum(p + 1, last)].astype(_I64)
        broken = opt & ((p + 2 > e) | (olen < 2) | (p + olen > e))
        bad[idx[broken]] = True
        good = opt & ~broken
        is_mss = good & (kind == 2) & (olen == 4)
        if is_mss.any():
            q, rr = p[is_mss], r[is_mss]
            mss[idx[is_mss]] = (m[rr, q + 2].astype(_I64) << 8) | m[rr, q + 3]
        step = np.where(nop, 1, np.where(good, olen, 0))
        pos[idx] = p + step
        go_on = (nop | good) & (p + step < e)
        idx = idx[go_on]
    return bad, mss


def _vxlan(d: _Decoder, g: _Group, end: np.ndarray) -> _Step:
    vni_res = g.u32(T.VXLAN_VNI)
    ok = _fits(end, g.o, T.VXLAN_LEN) & (g.u32(T.VXLAN_FLAGS) == _VXLAN_PLAIN) & ((vni_res & 0xFF) == 0)
    d._set(d.out["encap"], g, ENCAP_CODE["vxlan"])
    d._set(d.out["tunnel_id"], g, vni_res >> 8)
    return _Step(ok, T.CODE["eth"], T.VXLAN_LEN, None, True)


def _geneve(d: _Decoder, g: _Group, end: np.ndarray) -> _Step:
    vni_res = g.u32(T.GENEVE_VNI)
    ok = (
        _fits(end, g.o, T.GENEVE_LEN)
        & (g.u8(T.GENEVE_VER) == 0)  # version 0 and no options
        & ((g.u8(T.GENEVE_FLAGS) & 0x3F) == 0)
        & ((vni_res & 0xFF) == 0)
    )
    d._set(d.out["encap"], g, ENCAP_CODE["geneve"])
    d._set(d.out["tunnel_id"], g, vni_res >> 8)
    return _Step(ok, d.t.ethertype[g.u16(T.GENEVE_PTYPE)], T.GENEVE_LEN, None, True)


def _gre(d: _Decoder, g: _Group, end: np.ndarray) -> _Step:
    flags = g.u16(T.GRE_FLAGS)
    ptype = g.u16(T.GRE_PTYPE)
    keyed = flags == gre.F_KEY
    length = np.where(keyed, T.GRE_LEN + 4, T.GRE_LEN)
    # only plain GRE with or without key; ERSPAN, WCCP and the like start with their own header
    ok = _fits(end, g.o, T.GRE_LEN) & ((flags == 0) | keyed) & ((end - g.o) >= length)
    ok &= ~_GRE_SUBHEADER.take(ptype)
    key = np.where(keyed, g.u32(T.GRE_LEN).astype(_I64), -1)
    nvgre = keyed & (ptype == gre.TEB) & (not d.gre_key_as_id)
    # GRE with key over Ethernet reads as NVGRE: the VSID names the tunnel, the FlowID is entropy
    d._set(d.out["encap"], g, np.where(nvgre, ENCAP_CODE["nvgre"], ENCAP_CODE["gre"]))
    d._set(d.out["tunnel_id"], g, np.where(nvgre, key >> 8, key))
    if not any(ly[0] == "udp" for ly in g.layers):  # over UDP (GRE-in-UDP) the UDP ports win
        d._set(d.d[g.depth]["sport"], g, np.where(nvgre, key & 0xFF, 0))
    return _Step(ok, d.t.gre.take(ptype), length, None, True)


_STEPS = {
    "eth": _eth,
    "vlan": _vlan,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "udp": _udp,
    "tcp": _tcp,
    "vxlan": _vxlan,
    "geneve": _geneve,
    "gre": _gre,
}
#: bytes a step reads from its header's start (must stay inside the window)
_READS = {
    "eth": T.ETH_LEN,
    "vlan": T.VLAN_LEN,
    "ipv4": T.V4_LEN,
    "ipv6": T.V6_LEN,
    "udp": T.UDP_LEN,
    "tcp": T.TCP_LEN,
    "vxlan": T.VXLAN_LEN,
    "geneve": T.GENEVE_LEN,
    "gre": T.GRE_LEN + 4,
}


def _shape_name(shape: tuple[tuple[str, int, int], ...]) -> str:
    return "/".join(f"{name}@{off}" for name, off, _ in shape)


# --- the compiled walk ----------------------------------------------------------------------------
def _compiled_decoder() -> Any:
    """ipsotrace/fast/_decode.c, or None: not built, IPSOTRACE_NO_EXT=1, or built for other columns."""
    mod = compiled("_decode")
    if mod is None or tuple(mod.COLUMNS) != COLUMNS:
        return None
    return mod


#: Tests set it to None to run the numpy walk; both give the same columns.
DECODE: Any = _compiled_decoder()


def _geometry(names: tuple[str, ...]) -> np.ndarray:
    """The values of the constants the compiled walk reads, in its order (from the declarations)."""
    values = {
        "TERMINAL": T.TERMINAL,
        "FALLBACK": T.FALLBACK,
        **{f"CODE_{name.upper()}": T.CODE[name] for name in T.WALKERS},
        "WIDE": WIDE,
        "V6_NO_NEXT": ipv6.NO_NEXT,
        "NOP_NOP_TS": _NOP_NOP_TS,
        "VXLAN_PLAIN": _VXLAN_PLAIN,
        "GRE_F_KEY": gre.F_KEY,
        "GRE_TEB": gre.TEB,
        **{f"ENC_{name.upper()}": code for name, code in ENCAP_CODE.items()},
    }
    return np.array([values[n] if n in values else getattr(T, n) for n in names], dtype=_I64)


_GEOMETRY: np.ndarray | None = None


def _first_codes(linktype: np.ndarray, t: T.Tables) -> np.ndarray:
    """Walk code of each frame's first layer (-1: raw IP, the version nibble decides)."""
    n = linktype.shape[0]
    lt0 = int(linktype[0])
    if (linktype == lt0).all():
        return np.full(n, t.linktype.get(lt0, T.FALLBACK), dtype=np.int8)
    first = np.full(n, T.FALLBACK, dtype=np.int8)
    for lt in np.unique(linktype).tolist():
        first[linktype == lt] = t.linktype.get(int(lt), T.FALLBACK)
    return first


def _decode_compiled(
    batch: Batch, rows: np.ndarray, t: T.Tables, gre_key_as_id: bool, tunnelled_only: bool
) -> FastColumns:
    global _GEOMETRY
    if _GEOMETRY is None:
        _GEOMETRY = _geometry(tuple(DECODE.GEOMETRY))
    n = int(rows.shape[0])
    tables = (t.ethertype, t.gre, t.ipproto, t.udp_port, t.udp_bound, _V4_IP_IN_IP, _V6_IP_IN_IP, _V6_EXT,
              _GRE_SUBHEADER)  # fmt: skip
    # one array per column: a column nobody keeps goes back to the allocator on its own
    out = [np.empty(n, dtype=_I64) for _ in COLUMNS]
    status = np.empty(n, dtype=np.int8)
    sid = np.empty(n, dtype=_I64)
    cand = np.empty((3, n), dtype=_I64)
    options = (int(t.heuristics), t.max_depth, int(gre_key_as_id), int(tunnelled_only))
    first = _first_codes(batch.linktype.take(rows), t)
    kept, n_plain, n_cand, shapes = DECODE.decode(
        batch.data, batch.offset.take(rows), batch.caplen.take(rows), batch.wirelen.take(rows), first, tables,
        _GEOMETRY, options, tuple(out), status, sid, cand,
    )  # fmt: skip
    names = [_shape_name(tuple((T.NAMES[v & 0xFF], (v >> 8) & 0xFF, v >> 16) for v in layers)) for layers, _ in shapes]
    frames = [count for _, count in shapes]
    keep: slice | np.ndarray = np.s_[:kept]
    plain_at = out[0][n - n_plain :][::-1]  # with tunnelled_only: the plain frames, from the end backwards
    if n_cand:
        claimed = cand[0, :n_cand][_claims(batch, rows.take(cand[0, :n_cand]), cand[1, :n_cand], cand[2, :n_cand])]
        if claimed.shape[0]:
            # the scalar path decodes a tunnel in these payloads
            for s in sid[claimed].tolist():
                frames[s] -= 1
            status[claimed] = 1
            keep = ~np.isin(out[0][:kept], claimed)
            plain_at = plain_at[~np.isin(plain_at, claimed)]
    cols = {name: out[j][:kept][keep] for j, name in enumerate(COLUMNS)}
    cols["row"] = rows.take(cols["row"])
    counts = Counter({name: c for name, c in zip(names, frames, strict=True) if c})
    plain = rows.take(plain_at) if tunnelled_only else None
    return FastColumns(cols, rows[status == 1], names, counts, plain)


def decode_batch(
    batch: Batch,
    cfg: DissectConfig,
    rows: np.ndarray | None = None,
    *,
    gre_key_as_id: bool = False,
    tunnelled_only: bool = False,
) -> FastColumns:
    """Decode the frames ``rows`` of ``batch`` (all by default) into columns plus a fallback list.

    ``gre_key_as_id`` as in :func:`ipsotrace.correlate.extract.view`.  ``tunnelled_only``: columns
    for frames with a tunnel only, the others listed in ``plain`` (correlation only counts them).
    """
    if rows is None:
        rows = np.arange(len(batch), dtype=_I64)
    t = T.tables_for(cfg)
    if DECODE is not None and rows.shape[0]:
        return _decode_compiled(batch, rows, t, gre_key_as_id, tunnelled_only)
    d = _Decoder(batch, rows, t, gre_key_as_id, tunnelled_only)
    if rows.shape[0]:
        d.run()
    return d.result()
