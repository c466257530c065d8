"""The network lab: namespaces, veths, ECMP and a kernel VXLAN overlay, for tests and demos."""

from ipsotrace.lab.build import LabError, LabOptions, down, ns_name, status, up
from ipsotrace.lab.topology import DEFAULT, Link, Topology, Vtep

__all__ = ["DEFAULT", "LabError", "LabOptions", "Link", "Topology", "Vtep", "down", "ns_name", "status", "up"]
