"""Benchmark of the latency labels of one target, after `snakemake` has built its dataset.

Reports, for the target's first device:
- throughput: labels per minute for each label kind, and the timed forward passes and gate
  resets an expected label costs on average (fresh specs from the config's own sampling plan);
- reproducibility: stored specs re-timed now, median relative difference to their stored label,
  next to the noise of the labels (median relative IQR of their replicates);
- feature dependence: a plain ridge regression on the features against the constant mean, on
  the held-out test split (R^2 and RMSE of log latency);
- the measurement stage's wall time, from the `elapsed_s` its jobs record in their shards.

Usage: python benchmarks/label_quality.py [--config config/config.yaml] [--target cpu] [--n 60]
Writes benchmarks/out/label_quality-{target}.json and prints the same numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.linear_model import RidgeCV

from lenna.config import reference_shape, target_settings, timing_protocol
from lenna.datasets import fit_normaliser, normalise
from lenna.io import read_metadata
from lenna.space.specs import sample_specs, sampling_plan
from lenna.timing.devices import device_lock, pin_device
from lenna.timing.labels import measure_specs


def forward_overhead(protocol, rows, kind) -> float:
    """Untimed passes per label: warm-up in every round, or at the first and after every reset."""
    if kind == "discrete":
        return protocol.warmup * protocol.rounds
    return protocol.warmup + protocol.reset_warmup * (rows["n_resets"].mean() - 1)


def throughput(config, target, device, protocol, n):
    reference = reference_shape(config)
    plan = sampling_plan(config)
    # A seed the pipeline never uses, so these specs are fresh.
    specs = sample_specs(plan, seed=config["sampling"]["seed"] + 10_007, start=0, stop=4 * n)
    out = {}
    for kind in ("discrete", "expected"):
        chosen = specs[specs["label_kind"] == kind].head(n)
        start = time.perf_counter()
        rows = measure_specs(chosen, target, device, pin_device(device, target.threads), protocol, reference)
        elapsed = time.perf_counter() - start
        out[kind] = {
            "n": len(rows),
            "labels_per_min": 60 * len(rows) / elapsed,
            "mean_timed_passes": float(rows["n_timed"].mean()),
            "mean_forward_passes": float(rows["n_timed"].mean() + forward_overhead(protocol, rows, kind)),
            "mean_resets": float(rows["n_resets"].mean()),
            "share_converged": float(rows["converged"].mean()),
        }
    return out


def reproducibility(table, summary, reference, target, device, protocol, n):
    """Stored labels against a re-timing now, next to the noise floor of two re-timings in a row.

    Raw: measured values. Calibrated: each job's values scaled by its reference-cell speed
    (the dataset's ``latency_ms`` when ``datasets.calibrate`` is on, and the re-timing scaled the
    same way with its own reference timing). ``median_ratio`` far from 1 is a machine that is
    faster or slower as a whole than when the dataset was measured.
    """
    sample = table.sample(n=min(n, len(table)), random_state=0).reset_index(drop=True)
    pinned = pin_device(device, target.threads)
    first = measure_specs(sample, target, device, pinned, protocol, reference)
    second = measure_specs(sample, target, device, pinned, protocol, reference)
    now_raw, again_raw = first["latency_ms"].to_numpy(), second["latency_ms"].to_numpy()
    nominal = summary["reference_nominal_ms"]
    now_cal = now_raw * nominal / first["reference_ms"].iloc[0]
    out = {
        "n": len(sample),
        "reference_nominal_ms": nominal,
        "reference_now_ms": float(first["reference_ms"].iloc[0]),
    }
    for kind in ("all", "discrete", "expected"):
        mask = np.ones(len(sample), bool) if kind == "all" else (sample["label_kind"] == kind).to_numpy()
        if not mask.any():
            continue
        raw = now_raw[mask] / sample["latency_ms_raw"].to_numpy()[mask]
        cal = now_cal[mask] / sample["latency_ms"].to_numpy()[mask]
        part = table if kind == "all" else table[table["label_kind"] == kind]
        out[kind] = {
            "n": int(mask.sum()),
            "raw_median_rel_diff": float(np.median(np.abs(raw - 1))),
            "raw_median_ratio": float(np.median(raw)),
            "calibrated_median_rel_diff": float(np.median(np.abs(cal - 1))),
            "calibrated_median_ratio": float(np.median(cal)),
            "noise_floor_back_to_back": float(np.median(np.abs(now_raw[mask] / again_raw[mask] - 1))),
            "median_label_dispersion": float(part["dispersion"].median()),
        }
    return out


def feature_dependence(data_dir, op_set_name, steps):
    """Ridge regression of log latency on the features against the constant mean, on the test
    split, for the calibrated labels and for the raw ones."""
    train = pd.read_parquet(data_dir / "train.parquet")
    test = pd.read_parquet(data_dir / "test.parquet")
    normaliser = fit_normaliser(train, op_set_name, steps)
    out = {"n_train": len(train), "n_test": len(test)}
    for column in ("latency_ms", "latency_ms_raw"):
        y_train, y_test = np.log(train[column]), np.log(test[column])
        model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(normalise(train, normaliser), y_train)
        pred = model.predict(normalise(test, normaliser))
        sse = float(np.sum((y_test - pred) ** 2))
        sst = float(np.sum((y_test - y_train.mean()) ** 2))
        out[column] = {
            "ridge_r2_log_latency": 1 - sse / sst,
            "ridge_rmse_log": float(np.sqrt(sse / len(test))),
            "constant_rmse_log": float(np.sqrt(sst / len(test))),
            "ridge_median_rel_error": float(np.median(np.abs(np.exp(pred - y_test) - 1))),
        }
    return out


def stage_time(target):
    """Wall time of the timing jobs, as each shard records it (`elapsed_s` in its metadata)."""
    files = sorted(Path("results/latency", target).glob("shard-*.parquet"))
    seconds = [float(read_metadata(f)["elapsed_s"]) for f in files]
    return {"shards": len(files), "total_s": float(sum(seconds)), "per_shard_s": float(np.mean(seconds))}


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--device", help="device of the target to time on (default: its first)")
    parser.add_argument("--n", type=int, default=60, help="specs per measurement in the benchmark")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    target = target_settings(config, args.target)
    device = args.device or config["targets"][args.target]["devices"][0]
    protocol = timing_protocol(config)
    data_dir = Path("results/datasets") / args.target
    table = pd.read_parquet(data_dir / "latency.parquet")
    summary = json.loads((data_dir / "summary.json").read_text())
    space = config["search_space"]
    with device_lock(device):  # no timing job of a running workflow shares the device
        timed = {
            "throughput": throughput(config, target, device, protocol, args.n),
            "reproducibility": reproducibility(
                table, summary, reference_shape(config), target, device, protocol, args.n
            ),
        }
    report = {
        "target": args.target,
        "device": device,
        "device_name": table["device_name"].iloc[0],
        "protocol": protocol.__dict__,
        **timed,
        "feature_dependence": feature_dependence(data_dir, space["op_set"], space["steps"]),
        "measurement_stage": stage_time(args.target),
    }
    out = Path("benchmarks/out") / f"label_quality-{args.target}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
