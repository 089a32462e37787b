"""LENNA: latency estimation and latency-aware search for DARTS cells."""

__version__ = "0.1.0"
