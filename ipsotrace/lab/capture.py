"""Record real traffic on a lab interface into a pcap file (AF_PACKET, nanosecond timestamps)."""

from __future__ import annotations

import select
import signal
import socket
import struct
import time
from pathlib import Path
from types import FrameType

from ipsotrace.lab import nsutil

ETH_P_ALL = 0x0003
LINKTYPE_ETHERNET = 1
PCAP_NS_MAGIC = 0xA1B23C4D
SNAPLEN = 65535


def capture(
    namespace: str,
    iface: str,
    out: Path,
    *,
    count: int = 0,
    duration: float = 0.0,
) -> int:
    """Write frames seen on ``iface`` (both directions) to ``out`` until count/duration/SIGINT/SIGTERM.

    Returns the number of frames written.  The file is flushed after every frame so
    that it can be read while the capture runs.
    """
    with nsutil.entered(namespace):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    stop = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    written = 0
    try:
        try:
            sock.bind((iface, 0))
        except OSError as exc:
            raise nsutil.NamespaceError(f"no interface {iface!r} in {namespace}: {exc.strerror}") from None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        deadline = time.monotonic() + duration if duration else None
        with out.open("wb") as fh:
            fh.write(struct.pack("<IHHiIII", PCAP_NS_MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
            fh.flush()
            while not stop and (not count or written < count):
                wait = 0.2 if deadline is None else min(0.2, deadline - time.monotonic())
                if wait <= 0:
                    break
                try:
                    ready, _, _ = select.select([sock], [], [], wait)
                except InterruptedError:
                    continue
                if not ready:
                    continue
                data = sock.recv(SNAPLEN)
                ts = time.time_ns()
                fh.write(struct.pack("<IIII", ts // 1_000_000_000, ts % 1_000_000_000, len(data), len(data)))
                fh.write(data)
                fh.flush()
                written += 1
    finally:
        sock.close()
        for s, h in old.items():
            signal.signal(s, h)
    return written
