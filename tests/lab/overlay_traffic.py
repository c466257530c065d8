"""Real tenant traffic over the lab's kernel VXLAN, its capture, and an independent reading of it.

Sockets are created inside a lab namespace (``setns`` on this thread only, then back): a socket keeps
the namespace it was created in, so one test process drives a TCP server in v2 and clients in v1
without helper processes, and knows each inner flow by its socket.  Captures run ``ipsotrace lab
capture`` as a user would; the ground truth (which outer source ports crossed rb, which frames carry
what) is read back with scapy, not with the decoder under test.  Only the lab's documentation
addresses, only inside its namespaces.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import IPv6
from scapy.layers.vxlan import VXLAN
from scapy.utils import PcapReader

from ipsotrace.lab import nsutil

CLI = [sys.executable, "-m", "ipsotrace"]
VTEP1, VTEP2 = "192.0.2.1", "192.0.2.2"
HOST1, HOST2 = "203.0.113.1", "203.0.113.2"
R1_TOWARD_V1 = "198.51.100.2"  # r1 answers frag-needed from its inbound interface (the lab sets it)
VXLAN_PORT = 4789
PCAP_HEADER = 24


class Lab:
    """One lab prefix, driven through the CLI (``ipsotrace lab up|down|capture``, ``analyze``)."""

    def __init__(self, prefix: str, state_dir: Path) -> None:
        self.prefix = prefix
        self.env = {**os.environ, "IPSOTRACE_LAB_STATE_DIR": str(state_dir)}

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*CLI, *args], capture_output=True, text=True, env=self.env, timeout=timeout)
        if res.returncode not in (0, 1):
            raise AssertionError(f"ipsotrace {' '.join(args)} exited {res.returncode}: {res.stderr}")
        return res

    def up(self, *options: str) -> None:
        """A fresh lab (``up`` removes the previous one): no PMTU or socket state carried over."""
        self.cli("lab", "up", "--prefix", self.prefix, *options)
        for node in ("v1", "v2"):
            # The kernel VXLAN device hands GSO super-frames (up to 64 KB) to the veth, and a packet
            # socket records them unsegmented.  A hardware VTEP and a tap see wire-sized packets:
            # one segment per skb gives the same, with TCP's own MSS and PMTU logic untouched.
            subprocess.run(
                ["ip", "-n", self.ns(node), "link", "set", "vxlan100", "gso_max_segs", "1"], check=True, timeout=10
            )

    def down(self) -> None:
        subprocess.run([*CLI, "lab", "down", "--prefix", self.prefix], capture_output=True, env=self.env, timeout=60)

    def ns(self, node: str) -> str:
        return f"{self.prefix}{node}"

    def sysctl(self, node: str, key: str, value: int) -> None:
        with nsutil.entered(self.ns(node)):
            nsutil.write_sysctl(key, value)

    def namespaces(self) -> list[str]:
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(self.prefix)]

    @contextlib.contextmanager
    def capture(self, *points: tuple[str, str, Path], limit_s: float = 60) -> Iterator[None]:
        """``ipsotrace lab capture`` on each (node, interface, file) for the block; stopped with SIGINT
        (as Ctrl-C) at its end."""
        procs = []
        try:
            for node, iface, out in points:
                out.unlink(missing_ok=True)  # its header is how we know the capture has started
                cmd = [*CLI, "lab", "capture", "--prefix", self.prefix, node, iface, "-o", str(out), "-d", str(limit_s)]
                procs.append(
                    subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                )
            deadline = time.monotonic() + 15
            for proc, (_, _, out) in zip(procs, points, strict=True):
                while not (out.exists() and out.stat().st_size >= PCAP_HEADER):  # bound before the header
                    assert proc.poll() is None, f"capture exited: {proc.stderr.read() if proc.stderr else ''}"
                    assert time.monotonic() < deadline, "capture did not start"
                    time.sleep(0.02)
            yield
        finally:
            time.sleep(0.3)  # the last replies and ICMP errors are still on their way
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                _, err = proc.communicate(timeout=15)
                assert proc.returncode == 0, err

    def analyze(self, pcap: Path, *args: str) -> dict[str, Any]:
        res = self.cli("analyze", "--json", str(pcap), *args)
        assert "Traceback" not in res.stderr, res.stderr
        doc: dict[str, Any] = json.loads(res.stdout)
        return doc


# --- tenant traffic ------------------------------------------------------------------------------


class TcpSink:
    """A TCP server in a lab namespace: answers one request line with ``ok``, then swallows data."""

    def __init__(self, namespace: str, addr: str, port: int) -> None:
        with nsutil.entered(namespace):
            self.srv = socket.create_server((addr, port), backlog=64)
        self.srv.settimeout(0.1)
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TcpSink:
        self.acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.acceptor.join(timeout=5)
        for t in self.threads:
            t.join(timeout=5)
        self.srv.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            request = b""
            while not self.stop.is_set():
                try:
                    data = conn.recv(1 << 16)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                if b"\n" not in request:
                    request += data
                    if b"\n" in request:
                        conn.sendall(b"ok\n")


def open_flows(namespace: str, addr: str, port: int, n: int, request: bytes = b"hello\n") -> list[socket.socket]:
    """n TCP connections from ``namespace``, each having sent a small request and read the reply."""
    socks = []
    for _ in range(n):
        with nsutil.entered(namespace):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.bind((HOST1, 0))
        s.connect((addr, port))
        s.sendall(request)
        assert s.recv(16) == b"ok\n"
        socks.append(s)
    return socks


def push(socks: list[socket.socket], nbytes: int, seconds: float) -> dict[int, int]:
    """Send ``nbytes`` on every socket at once, for at most ``seconds``; bytes accepted per local port.

    Flows whose segments vanish stop once their send buffer is full; the others finish.
    """
    block = b"x" * 65536
    left = {s: nbytes for s in socks}
    for s in socks:
        s.setblocking(False)
    deadline = time.monotonic() + seconds
    while left and (wait := deadline - time.monotonic()) > 0:
        _, ready, _ = select.select([], list(left), [], min(wait, 0.1))
        for s in ready:
            try:
                left[s] -= s.send(block[: min(left[s], len(block))])
            except BlockingIOError:
                continue
            if left[s] <= 0:
                del left[s]
    return {s.getsockname()[1]: nbytes - left.get(s, 0) for s in socks}


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST, no FIN wait
        s.close()


def udp_flows(namespace: str, n: int, size: int, rounds: int = 2) -> list[int]:
    """n UDP sockets in ``namespace``, each its own inner flow, sending ``rounds`` datagrams of ``size``."""
    with nsutil.entered(namespace):
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind((HOST1, 0))
        for _ in range(rounds):
            for s in socks:
                s.sendto(b"u" * size, (HOST2, 9))
            time.sleep(0.05)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --- reading the capture back (scapy, independent of the decoder under test) ---------------------


@dataclass(frozen=True, slots=True)
class Frame:
    number: int
    outer_src: str
    outer_dst: str
    outer_sport: int  # VXLAN packets: the entropy port; 0 otherwise
    outer_size: int  # outer IP total length
    inner: tuple[str, str, int, int, int] | None  # src, dst, proto, sport, dport of the inner IP packet
    # (IPv6 inner packets, e.g. neighbour discovery on the VXLAN device, have proto = next header, ports 0)
    inner_size: int
    inner_df: bool
    tcp_seq: int | None
    tcp_payload: int
    ptb_mtu: int | None  # ICMP frag-needed: the next-hop MTU
    ptb_quote: tuple[str, str, int, int] | None  # quoted outer src, dst, UDP sport, dport


def read_frames(pcap: Path) -> list[Frame]:
    out = []
    with PcapReader(str(pcap)) as rd:
        for number, pkt in enumerate(rd, 1):
            if IP not in pkt:
                continue
            ip = pkt[IP]
            sport, inner, inner_size, inner_df, seq, payload = 0, None, 0, False, None, 0
            mtu, quote = None, None
            if ICMP in ip and ip[ICMP].type == 3 and ip[ICMP].code == 4:
                mtu = int(ip[ICMP].nexthopmtu)
                if IPerror in ip and UDPerror in ip:
                    q, qu = ip[IPerror], ip[UDPerror]
                    quote = (q.src, q.dst, int(qu.sport), int(qu.dport))
            elif UDP in ip and VXLAN in ip and IPv6 in ip[VXLAN]:
                sport = int(ip[UDP].sport)
                ip6 = ip[VXLAN][IPv6]
                inner, inner_size, inner_df = (ip6.src, ip6.dst, int(ip6.nh), 0, 0), 40 + int(ip6.plen), True
            elif UDP in ip and VXLAN in ip and IP in ip[VXLAN]:
                sport = int(ip[UDP].sport)
                iip = ip[VXLAN][IP]
                inner_size, inner_df = int(iip.len), bool(iip.flags.DF)
                l4sport = l4dport = 0
                if TCP in iip:
                    t = iip[TCP]
                    l4sport, l4dport, seq = int(t.sport), int(t.dport), int(t.seq)
                    payload = int(iip.len) - iip.ihl * 4 - t.dataofs * 4
                elif UDP in iip:
                    l4sport, l4dport = int(iip[UDP].sport), int(iip[UDP].dport)
                inner = (iip.src, iip.dst, int(iip.proto), l4sport, l4dport)
            out.append(
                Frame(number, ip.src, ip.dst, sport, int(ip.len), inner, inner_size, inner_df, seq, payload, mtu, quote)
            )
    return out


def outer_ports(frames: list[Frame], src: str = VTEP1) -> dict[tuple[str, str, int, int, int], set[int]]:
    """Inner flow → outer source ports it left ``src`` with."""
    out: dict[tuple[str, str, int, int, int], set[int]] = {}
    for f in frames:
        if f.inner is not None and f.outer_src == src:
            out.setdefault(f.inner, set()).add(f.outer_sport)
    return out


def retransmissions(frames: list[Frame]) -> set[int]:
    """Frame numbers of inner TCP segments whose data was sent before (same flow, same sequence)."""
    seen: set[tuple[tuple[str, str, int, int, int], int]] = set()
    out = set()
    for f in frames:
        if f.inner is None or f.tcp_seq is None or f.tcp_payload <= 0:
            continue
        key = (f.inner, f.tcp_seq)
        if key in seen:
            out.add(f.number)
        seen.add(key)
    return out


def open_on_both_paths(
    namespace: str, port: int, rb_pcap: Path, *, via_rb: int, via_ra: int, per_round: int = 8, rounds: int = 6
) -> tuple[list[socket.socket], set[int]]:
    """Open flows until at least ``via_rb`` of them cross rb (seen in ``rb_pcap``) and ``via_ra`` do not.

    The hash decides the path of each flow; a bounded number of rounds makes a lab in which every
    flow landed on one path (1 in 2^8 per round) a retry instead of a flaky test.  Returns every
    socket and the local (inner source) ports of those that crossed rb.
    """
    socks: list[socket.socket] = []
    for _ in range(rounds):
        socks += open_flows(namespace, HOST2, port, per_round)
        time.sleep(0.2)
        crossed = {inner[3] for inner in outer_ports(read_frames(rb_pcap)) if inner[2] == 6}
        mine = {s.getsockname()[1] for s in socks}
        on_rb = mine & crossed
        if len(on_rb) >= via_rb and len(mine) - len(on_rb) >= via_ra:
            return socks, on_rb
    close_all(socks)
    raise AssertionError(f"{rounds * per_round} flows did not give {via_rb} via rb and {via_ra} via ra")
