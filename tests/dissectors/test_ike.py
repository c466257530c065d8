"""IKE: IKEv2 IKE_SA_INIT in the clear, IKE_AUTH behind SK, IKEv1 encrypted flag, malformed headers."""

from __future__ import annotations

import struct

from scapy.contrib.ikev2 import IKEv2, IKEv2_Nonce, IKEv2_SA
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from ipsotrace.dissectors import ike
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Packet

ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
OUTER = IP(src="192.0.2.1", dst="192.0.2.2")
ISPI = bytes.fromhex("0102030405060708")


class _Ctx:
    snaplen_cut = False
    partial = False


def _decode(payload: bytes) -> Packet:
    return dissect_frame(bytes(ETH / OUTER / UDP(sport=500, dport=500) / Raw(payload)), 1, DissectConfig())


def test_ikev2_sa_init_every_field() -> None:
    msg = bytes(IKEv2(init_SPI=ISPI, exch_type=34, flags=0x08, id=0) / IKEv2_SA() / IKEv2_Nonce(nonce=b"n" * 16))
    pkt = _decode(msg)
    assert [x.proto for x in pkt.layers] == ["eth", "ipv4", "udp", "ike"]
    ly = pkt.layers[3]
    assert (ly.offset, ly.length) == (42, len(msg))
    assert ly.fields == {
        "ispi": ISPI.hex(),
        "rspi": "0000000000000000",
        "version": "2.0",
        "major_version": 2,
        "exchange_type": 34,
        "exchange": "ike-sa-init",
        "flags": 0x08,
        "message_id": 0,
        "ike_length": len(msg),
        "next_payload": 33,
        "initiator": True,
        "response": False,
        "payloads": ["sa", "nonce"],
        "encrypted": False,
    }
    assert pkt.anomalies == []


def test_ikev2_auth_is_encrypted() -> None:
    body = struct.pack("!BBH", 0, 0, 4 + 32) + bytes(32)  # SK payload: IV + ciphertext + ICV, opaque
    hdr = ISPI + bytes(range(8)) + bytes([46, 0x20, 35, 0x20]) + struct.pack("!II", 1, 28 + len(body))
    got = ike.dissect(hdr + body, 0, len(hdr) + len(body), _Ctx())
    assert not isinstance(got, Anomaly)
    assert (got.fields["exchange"], got.fields["response"], got.fields["rspi"]) == (
        "ike-auth",
        True,
        "0001020304050607",
    )
    assert (got.fields["payloads"], got.fields["encrypted"]) == (["sk"], True)


def test_ikev1_main_mode_encrypted_flag() -> None:
    hdr = ISPI + bytes(8) + bytes([5, 0x10, 2, 0x01]) + struct.pack("!II", 0, 28 + 16) + bytes(16)
    got = ike.dissect(hdr, 0, len(hdr), _Ctx())
    assert not isinstance(got, Anomaly)
    assert (got.fields["version"], got.fields["exchange"], got.fields["encrypted"]) == (
        "1.0",
        "identity-protection",
        True,
    )
    assert "payloads" not in got.fields and "initiator" not in got.fields


def test_length_mismatch_malformed_truncated() -> None:
    hdr = ISPI + bytes(8) + bytes([0, 0x20, 34, 0]) + struct.pack("!II", 0, 60)
    got = ike.dissect(hdr, 0, 28, _Ctx())
    assert not isinstance(got, Anomaly) and [a.kind for a in got.anomalies] == ["ike.length-mismatch"]
    bad_version = ISPI + bytes(8) + bytes([0, 0x30, 34, 0]) + struct.pack("!II", 0, 28)
    got = ike.dissect(bad_version, 0, 28, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "ike.malformed"
    short_len = ISPI + bytes(8) + bytes([0, 0x20, 34, 0]) + struct.pack("!II", 0, 12)
    got = ike.dissect(short_len, 0, 28, _Ctx())
    assert isinstance(got, Anomaly) and got.kind == "ike.malformed"
    for cut in (0, 8, 27):
        got = ike.dissect(hdr, 0, cut, _Ctx())
        assert isinstance(got, Anomaly) and got.kind == "ike.truncated"
