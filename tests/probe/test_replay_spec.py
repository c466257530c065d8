"""--replay-flow FILE:FLOWSPEC parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipsotrace.probe.network import ProbeError
from ipsotrace.probe.replay import FlowSpec, parse_flowspec, parse_replay


def test_parse() -> None:
    path, spec = parse_replay("/tmp/a:b.pcap:vni=100,src=203.0.113.1,dst=203.0.113.2,proto=tcp,sport=5,dport=0x50")
    assert path == Path("/tmp/a:b.pcap")
    assert spec == FlowSpec(vni=100, src="203.0.113.1", dst="203.0.113.2", proto=6, sport=5, dport=80)
    assert str(spec) == "vni=100,src=203.0.113.1,dst=203.0.113.2,proto=6,sport=5,dport=80"
    assert parse_flowspec("proto=icmp").proto == 1
    assert parse_flowspec("src=2001:db8::1").src == "2001:db8::1"


@pytest.mark.parametrize(
    "bad", ["cap.pcap", "cap.pcap:", "cap.pcap:color=red", "cap.pcap:src=300.1.1.1", "c:proto=xyz"]
)
def test_reject(bad: str) -> None:
    with pytest.raises(ProbeError):
        parse_replay(bad)
