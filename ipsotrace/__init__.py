"""ipsotrace: decode, correlate and probe IP overlays (VXLAN, Geneve, GRE, ERSPAN, GTP-U, MPLS…)."""

from ipsotrace.decode import decode
from ipsotrace.dissectors.registry import DissectConfig, dissect_frame
from ipsotrace.records import Anomaly, Layer, Packet
from ipsotrace.sources import CaptureError, CaptureFile, Frame, open_capture

__version__ = "0.1.0"

__all__ = [
    "Anomaly",
    "CaptureError",
    "CaptureFile",
    "DissectConfig",
    "Frame",
    "Layer",
    "Packet",
    "__version__",
    "decode",
    "dissect_frame",
    "open_capture",
]
