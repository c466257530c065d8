"""The vectorized fast path: batch reading, shape decoding and correlation with numpy.

``FastAnalyzer`` (engine) gives the same :class:`ipsotrace.correlate.Aggregates` as
``Correlator.add`` over ``decode()``; ``decode_batch`` gives per-frame columns and the frames
it leaves to the scalar dissectors; ``BatchReader`` reads pcap/pcapng in chunks.
"""

from ipsotrace.fast.batch import Batch, BatchReader, pcap_split, read_batches
from ipsotrace.fast.decode import FastColumns, decode_batch
from ipsotrace.fast.engine import EngineStats, FastAnalyzer, analyze_files

__all__ = [
    "Batch",
    "BatchReader",
    "EngineStats",
    "FastAnalyzer",
    "FastColumns",
    "analyze_files",
    "decode_batch",
    "pcap_split",
    "read_batches",
]
