"""Latency-aware DARTS: images, supernet, architect, search loop, final training, Pareto table."""
