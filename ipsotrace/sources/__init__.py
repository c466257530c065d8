"""Packet sources: capture files now, live interfaces later.  They yield :class:`Frame`."""

from ipsotrace.sources.base import CaptureError, Frame, SourceStatus
from ipsotrace.sources.capfile import CaptureFile, open_capture

__all__ = ["CaptureError", "CaptureFile", "Frame", "SourceStatus", "open_capture"]
