"""UDP tunnels and encrypted-layer recognisers never raise, and stay inside their bounds, on any bytes."""

from __future__ import annotations

import random
import zlib

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import ayiya, dtls, esp, geneve, gtpu, ike, lwapp, nsh, teredo, vxlan_gpe, wireguard
from ipsotrace.dissectors.base import Decoded, Dissector
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly

DISSECTORS: dict[str, Dissector] = {
    "geneve": geneve.dissect,
    "vxlan-gpe": vxlan_gpe.dissect,
    "nsh": nsh.dissect,
    "gtpu": gtpu.dissect,
    "teredo": teredo.dissect,
    "ayiya": ayiya.dissect,
    "esp": esp.dissect,
    "nat-t": esp.dissect_nat_t,
    "ike": ike.dissect,
    "wireguard": wireguard.dissect,
    "dtls": dtls.dissect,
    "lwapp": lwapp.dissect,
}
# plausible first bytes so the fuzz reaches past the first checks
SEEDS = [b"", b"\x00", b"\x02\x00\x65\x58", b"\x0c\x00\x00\x04", b"\x34\xff", b"\x32\xff", b"\x00\x01\x03\x02"]
SEEDS += [b"\x00\x00", b"\x41\x52\x11\x29", b"\x16\xfe\xfd", b"\x01\x00\x00\x00", b"\x04\x00\x00\x00", b"\x30\x06\x02"]


class _Ctx:
    def __init__(self, cut: bool, partial: bool) -> None:
        self.snaplen_cut = cut
        self.partial = partial


@pytest.mark.parametrize("name", sorted(DISSECTORS))
def test_random_bytes(name: str) -> None:
    rng = random.Random(zlib.crc32(name.encode()))
    dissect = DISSECTORS[name]
    for i in range(3000):
        data = rng.choice(SEEDS) + rng.randbytes(rng.randrange(0, 200))
        off = rng.randrange(0, 4) if data else 0
        data = rng.randbytes(off) + data
        end = rng.randrange(off, len(data) + 1)
        res = dissect(data, off, end, _Ctx(i % 3 == 0, i % 5 == 0))
        assert isinstance(res, Decoded | Anomaly)
        if isinstance(res, Decoded):
            assert 0 <= res.length <= end - off, (name, data.hex())
            assert res.end is None or res.end >= off + res.length, (name, data.hex())
        else:
            assert res.kind.startswith(f"{name}.") or name == "nat-t", res


def test_random_payloads_on_every_bound_port() -> None:
    rng = random.Random(99)
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="192.0.2.1", dst="192.0.2.2")
    ports = [6081, 4790, 2152, 3544, 5072, 500, 4500, 51820, 12222, 12223, 40000]
    for _ in range(2000):
        payload = rng.choice(SEEDS) + rng.randbytes(rng.randrange(0, 120))
        raw = bytes(eth / UDP(sport=50000, dport=rng.choice(ports)) / Raw(payload))
        pkt = dissect_frame(raw[: rng.randrange(42, len(raw) + 1)], 1, DissectConfig())
        assert [x.proto for x in pkt.layers][:3] == ["eth", "ipv4", "udp"]
