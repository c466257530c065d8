"""The overlay probe engine: traceroute over ECMP paths, per-path PMTU, ping.

State machines (:mod:`trace`, :mod:`pmtu`, :mod:`ping`) run over a
:class:`~ipsotrace.probe.network.Network` (the real raw-socket one, or the
simulated one in :mod:`ipsotrace.probe.sim`); nothing here prints.
"""

from ipsotrace.probe.engine import Engine, Pacing
from ipsotrace.probe.mda import probes_to_rule_out
from ipsotrace.probe.model import DUBLIN_VXLAN, Event, Outcome, OverlayTarget, ProbeRequest, Strategy
from ipsotrace.probe.network import Network, PermissionProblem, ProbeError, RawNetwork, Received
from ipsotrace.probe.ping import PingAlgo, PingStats
from ipsotrace.probe.pmtu import PmtuAlgo, PmtuResult
from ipsotrace.probe.session import PingReport, PmtuReport, Session
from ipsotrace.probe.trace import TraceAlgo, TraceResult

__all__ = [
    "DUBLIN_VXLAN",
    "Engine",
    "Event",
    "Network",
    "Outcome",
    "OverlayTarget",
    "Pacing",
    "PermissionProblem",
    "PingAlgo",
    "PingReport",
    "PingStats",
    "PmtuAlgo",
    "PmtuReport",
    "PmtuResult",
    "ProbeError",
    "ProbeRequest",
    "RawNetwork",
    "Received",
    "Session",
    "Strategy",
    "TraceAlgo",
    "TraceResult",
    "probes_to_rule_out",
]
