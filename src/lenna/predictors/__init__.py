"""Latency predictors: the model file format and API, fitting, baselines, metrics, network check."""
