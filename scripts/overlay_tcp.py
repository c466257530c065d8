#!/usr/bin/env python3
"""Tiny TCP load for the lab demo: `server ADDR PORT` sinks data; `client ADDR PORT N BYTES` times N transfers.

Run the server in v2 and the client in v1 (ipsotrace lab exec …).  Only lab addresses.
"""

from __future__ import annotations

import socket
import sys
import threading
import time


def server(addr: str, port: int) -> None:
    srv = socket.create_server((addr, port), reuse_port=True)

    def sink(conn: socket.socket) -> None:
        with conn:
            while conn.recv(1 << 16):
                pass
            conn.sendall(b"ok")

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=sink, args=(conn,), daemon=True).start()


def client(addr: str, port: int, n: int, size: int, limit: float) -> int:
    stalled = 0
    block = b"x" * 65536
    for i in range(n):
        t0 = time.monotonic()
        s = socket.create_connection((addr, port), timeout=limit)
        local = s.getsockname()[1]
        try:
            left = size
            while left > 0:
                left -= s.send(block[: min(left, len(block))])
            s.shutdown(socket.SHUT_WR)
            s.recv(2)
            took = time.monotonic() - t0
            verdict = "ok" if took < 1.0 else "SLOW"
        except TimeoutError:
            took, verdict = time.monotonic() - t0, "HUNG"
        finally:
            s.close()
        stalled += verdict != "ok"
        print(f"transfer {i + 1}: inner sport {local}: {size} bytes in {took:.2f} s  {verdict}", flush=True)
    return stalled


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]))
    else:
        bad = client(
            sys.argv[2],
            int(sys.argv[3]),
            int(sys.argv[4]),
            int(sys.argv[5]),
            float(sys.argv[6]) if len(sys.argv) > 6 else 10.0,
        )
        print(f"{bad} of {sys.argv[4]} transfers slow or hung")
