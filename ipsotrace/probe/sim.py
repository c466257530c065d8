"""A simulated underlay for the probe engine: ECMP paths, MTUs, loss, black holes, ICMP rate limits.

Shipped with the engine (like httpx's test transport) so the state machines are
tested without root.  It reads the probes it is given with the real dissectors
and answers with real bytes (ICMP errors quoting the probe, encapsulated echo
replies), so the engine's matching is exercised as on the wire.  Time is
virtual: ``recv`` jumps the clock to the next answer, a run takes milliseconds.
"""

from __future__ import annotations

import errno
import hashlib
import heapq
import random
import socket
import struct
from dataclasses import dataclass, field

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.probe.model import OverlayTarget
from ipsotrace.probe.network import LINKTYPE_ETHERNET, Received

LINKTYPE_IPV4 = 228
QUOTE_LIMIT = 576  # Linux: an ICMP error is at most 576 bytes


@dataclass(slots=True)
class TokenBucket:
    """Linux's ICMP rate limit per destination: ``burst`` messages, then ``per_s`` per second."""

    burst: int = 6
    per_s: float = 1.0
    _tokens: float = field(default=-1.0, init=False)
    _last: float = field(default=0.0, init=False)

    def allow(self, now: float) -> bool:
        if self._tokens < 0:
            self._tokens = self.burst
        else:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.per_s)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False


@dataclass(slots=True)
class SimRouter:
    address: str
    #: MTU of the link this router forwards onto (toward the VTEP)
    mtu_out: int = 1500
    send_ptb: bool = True  # False: drops too-big DF packets silently (black hole)
    answers: bool = True  # False: never sends time exceeded
    #: ICMP rate limit; share one bucket between the interfaces of one router. None: unlimited
    ratelimit: TokenBucket | None = None

    def allow(self, now: float) -> bool:
        return self.ratelimit is None or self.ratelimit.allow(now)


@dataclass(slots=True)
class SimPath:
    routers: list[SimRouter]


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64, ident: int = 0) -> bytes:
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        ident,
        0,
        ttl,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    return hdr + payload


def _icmp(itype: int, code: int, rest: int, body: bytes) -> bytes:
    msg = struct.pack("!BBHI", itype, code, 0, rest) + body
    return msg[:2] + struct.pack("!H", _csum(msg)) + msg[4:]


class SimNetwork:
    """Paths are chosen by a hash of the outer 5-tuple (per flow) or at random (``per_packet``)."""

    def __init__(
        self,
        target: OverlayTarget,
        paths: list[SimPath],
        *,
        local_mtu: int = 1500,
        loss: float = 0.0,
        lossy_paths: set[int] | None = None,
        hop_delay_ms: float = 0.5,
        per_packet: bool = False,
        vtep_answers: bool = True,
        seed: int = 1,
    ) -> None:
        self.target = target
        self.paths = paths
        self.local_mtu = local_mtu
        self.loss = loss
        self.lossy_paths = lossy_paths
        self.hop_delay = hop_delay_ms / 1000.0
        self.per_packet = per_packet
        self.vtep_answers = vtep_answers
        self.rng = random.Random(seed)
        self.now = 1000.0
        self.sent = 0
        self.sent_by_sport: dict[int, int] = {}
        #: (time, sport, ttl, size) of every probe sent
        self.log: list[tuple[float, int, int, int]] = []
        self._queue: list[tuple[float, int, Received]] = []
        self._n = 0
        self._cfg = DissectConfig.from_overrides({target.dport: "vxlan"})

    # --- the Network protocol ----------------------------------------------------------------

    def clock(self) -> float:
        return self.now

    def send(self, packet: bytes, dst: str) -> float:
        if len(packet) > self.local_mtu:
            raise OSError(errno.EMSGSIZE, "Message too long")
        self.sent += 1
        self._simulate(packet)
        return self.now

    def recv(self, until: float) -> list[Received]:
        if self._queue and self._queue[0][0] <= until:
            ts = self._queue[0][0]
            self.now = max(self.now, ts)
            out = []
            while self._queue and self._queue[0][0] <= ts:
                out.append(heapq.heappop(self._queue)[2])
            return out
        self.now = max(self.now, until)
        return []

    def close(self) -> None:
        pass

    # --- the simulated underlay ----------------------------------------------------------------

    def path_of(self, sport: int) -> int:
        if self.per_packet:
            return self.rng.randrange(len(self.paths))
        key = f"{self.target.local}|{self.target.vtep}|17|{sport}|{self.target.dport}".encode()
        return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "big") % len(self.paths)

    def _lost(self, path: int) -> bool:
        if not self.loss or (self.lossy_paths is not None and path not in self.lossy_paths):
            return False
        return self.rng.random() < self.loss

    def _simulate(self, packet: bytes) -> None:
        pkt = dissect_frame(packet, LINKTYPE_IPV4, self._cfg)
        outer = pkt.layers[0]
        udp = next(ly for ly in pkt.layers if ly.proto == "udp")
        sport = udp.get("sport")
        self.sent_by_sport[sport] = self.sent_by_sport.get(sport, 0) + 1
        ttl, df, size = outer.get("ttl"), outer.get("df"), len(packet)
        self.log.append((self.now, sport, ttl, size))
        pi = self.path_of(sport)
        path = self.paths[pi]
        if self._lost(pi):
            return
        t = self.now
        for i, r in enumerate(path.routers):
            t += self.hop_delay
            if ttl <= i + 1:
                if r.answers and r.allow(t):
                    self._answer_error(r.address, 11, 0, 0, packet, t + self.hop_delay * (i + 1))
                return
            if size > r.mtu_out and df:  # without DF it would be fragmented and go on
                if r.send_ptb and r.allow(t):
                    self._answer_error(r.address, 3, 4, r.mtu_out, packet, t + self.hop_delay * (i + 1))
                return
        if not self.vtep_answers:
            return
        t += self.hop_delay
        self._answer_echo(pkt, packet, t + self.hop_delay * (len(path.routers) + 1), pi)

    def _answer_error(self, router: str, itype: int, code: int, mtu: int, packet: bytes, at: float) -> None:
        quote = packet[: QUOTE_LIMIT - 28]
        icmp = _icmp(itype, code, mtu & 0xFFFF, quote)
        self._schedule(at, _ipv4(router, self.target.local, 1, icmp), LINKTYPE_IPV4)

    def _answer_echo(self, pkt: object, packet: bytes, at: float, path: int) -> None:
        from ipsotrace.records import Packet

        assert isinstance(pkt, Packet)
        inner_ip = next(ly for ly in pkt.layers if ly.proto == "ipv4" and ly.depth == 1)
        inner_icmp = next(ly for ly in pkt.layers if ly.proto == "icmp" and ly.depth == 1)
        payload = packet[inner_icmp.offset + 8 : inner_ip.offset + inner_ip.get("total_length")]
        if inner_ip.get("dst") != self.target.inner_dst:
            return
        reply = _ipv4(
            self.target.inner_dst,
            self.target.inner_src,
            1,
            _icmp(0, 0, inner_icmp.get("id") << 16 | inner_icmp.get("seq"), payload),
        )
        t = self.target
        eth = bytes.fromhex(t.inner_src_mac.replace(":", "")) + bytes.fromhex(t.inner_dst_mac.replace(":", ""))
        frame = eth + b"\x08\x00" + reply
        vx = struct.pack("!BBHI", 0x08, 0, 0, t.vni << 8)
        udp_payload = vx + frame
        udp = struct.pack("!HHHH", 50000 + path, t.dport, 8 + len(udp_payload), 0) + udp_payload
        outer = _ipv4(t.vtep, t.local, 17, udp)
        l2 = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"
        self._schedule(at, l2 + outer, LINKTYPE_ETHERNET)

    def _schedule(self, at: float, data: bytes, linktype: int) -> None:
        if self.loss and self.lossy_paths is None and self.rng.random() < self.loss:
            return  # answers are lost too when the whole network is lossy
        self._n += 1
        heapq.heappush(self._queue, (at, self._n, Received(at, linktype, data, "sim")))
