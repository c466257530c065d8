"""The probe network: send an outer IPv4 packet, receive frames.  A real one and the interface.

The engine only needs :class:`Network`; :class:`RawNetwork` is the real one
(raw IPv4 socket to send, AF_PACKET to receive), :mod:`ipsotrace.probe.sim` a
simulated one for tests without root.

Why AF_PACKET for receiving: the far VTEP's kernel sends the inner host's reply
back *encapsulated* (outer UDP to our VTEP address, port 4789).  An unbound
AF_PACKET socket sees it twice: encapsulated on the underlay interface (with the
outer header of the return path) and, when this host has a VXLAN device for the
VNI, decapsulated on that device after the kernel reassembled any outer
fragments (big replies on a small-MTU return path arrive fragmented).  ICMP
errors from routers arrive on the underlay interface.  The matcher accepts every
copy, the engine keeps the first.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from dataclasses import dataclass
from typing import Protocol

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 0xFFFE
IP_MTU_DISCOVER = 10
IP_PMTUDISC_PROBE = 3
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101


class ProbeError(Exception):
    """Probing cannot start or continue (the message is for the user)."""


class PermissionProblem(ProbeError):
    """No CAP_NET_RAW."""


@dataclass(frozen=True, slots=True)
class Received:
    ts: float  # time.monotonic() seconds, same clock as send()
    linktype: int
    data: bytes
    ifname: str = ""


class Network(Protocol):
    """What the engine needs from a network (Trippy's ``Network`` trait)."""

    def send(self, packet: bytes, dst: str) -> float:
        """Send one outer IPv4 packet; return the send time (monotonic seconds).

        Raises ``OSError`` when the kernel refuses it (``EMSGSIZE`` above the interface MTU).
        """
        ...

    def recv(self, until: float) -> list[Received]:
        """Frames received before monotonic time ``until`` (returns early once something arrived)."""
        ...

    def close(self) -> None: ...


class RawNetwork:
    """Raw IPv4 socket (IP_HDRINCL) to send, an AF_PACKET socket on every interface to receive."""

    def __init__(self) -> None:
        try:
            self._tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            self._rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError:
            raise PermissionProblem(
                "sending probes needs raw sockets (CAP_NET_RAW): run as root, "
                "or grant it with `setcap cap_net_raw+ep` on the Python interpreter"
            ) from None
        # Ignore the kernel's cached path MTU: our probes measure it, DF is in our own header.
        self._tx.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)
        self._rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._rx.setblocking(False)
        self._names: dict[str, int] = {}

    def send(self, packet: bytes, dst: str) -> float:
        ts = time.monotonic()
        self._tx.sendto(packet, (dst, 0))
        return ts

    def recv(self, until: float) -> list[Received]:
        out: list[Received] = []
        while True:
            wait = until - time.monotonic()
            if out or wait <= 0:
                wait = 0.0
            try:
                ready, _, _ = select.select([self._rx], [], [], wait)
            except InterruptedError:
                continue
            if not ready:
                return out
            while True:
                try:
                    data, addr = self._rx.recvfrom(65535)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.ENETDOWN):
                        break
                    raise
                ts = time.monotonic()
                ifname, _proto, pkttype, hatype = addr[0], addr[1], addr[2], addr[3]
                if pkttype == PACKET_OUTGOING:
                    continue
                if hatype in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
                    out.append(Received(ts, LINKTYPE_ETHERNET, data, ifname))
                elif hatype == ARPHRD_NONE:
                    out.append(Received(ts, LINKTYPE_RAW, data, ifname))
            if out:
                return out

    def close(self) -> None:
        self._tx.close()
        self._rx.close()

    def __enter__(self) -> RawNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
