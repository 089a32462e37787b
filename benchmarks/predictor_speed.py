"""Benchmark: latency predictions for 100,000 specs in one call, per trained predictor.

Usage: python benchmarks/predictor_speed.py [--target cpu] [--n 100000] [--threads 1]
Prints, per model, the best of 5 wall times of `LatencyPredictor.predict_features` on n rows
built from the target's test split, and the gradient of the expected latency of the search
network with respect to its alphas (time of one forward + backward).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from lenna.predictors.model import load_predictor
from lenna.space.network import Macro, network_macro


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(Path(args.config).read_text())
    test = pd.read_parquet(Path("results/datasets") / args.target / "test.parquet")
    macro = Macro(**network_macro(config["macro"], "search"))
    report = {"n": args.n, "threads": args.threads, "models": {}}
    for directory in sorted(Path("results/predictors", args.target).iterdir()):
        if not (directory / "model.json").exists():
            continue
        predictor = load_predictor(directory)
        x = test[predictor.features].to_numpy(np.float64)
        x = x[np.arange(args.n) % len(x)]
        times = []
        for _ in range(5):
            start = time.perf_counter()
            out = predictor.predict_features(x)
            times.append(time.perf_counter() - start)
        assert out.shape == (args.n,) and np.isfinite(out).all()
        alphas = [(1e-3 * torch.randn(14, 8, dtype=torch.float64)).requires_grad_() for _ in range(2)]
        start = time.perf_counter()
        latency = predictor.expected_cells_latency(
            *alphas, macro, config["targets"][args.target]["batch_size"]
        )
        latency.backward()
        grad_s = time.perf_counter() - start
        report["models"][directory.name] = {"predict_s": min(times), "expected_latency_grad_s": grad_s}
    out = Path("benchmarks/out") / f"predictor_speed-{args.target}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
