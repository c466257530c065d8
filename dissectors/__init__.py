"""Dissectors: one module per protocol; bindings in :mod:`.registry`."""

from ipsotrace.dissectors.registry import DissectConfig, dissect_frame, parse_port_spec

__all__ = ["DissectConfig", "dissect_frame", "parse_port_spec"]
