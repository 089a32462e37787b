"""Checks of the GPU path that the pipeline itself cannot make: our CUDA-event timing against two
independent clocks, and a CUDA out-of-memory spec inside a real shard.

1. Clock check: ``--n`` discrete specs of the config's own sampling plan, each timed three ways on
   the target's first GPU: our protocol's CUDA events (`lenna.timing.protocol.time_passes`, one
   event pair around each pass; the median and the minimum of rounds x repeats passes, the
   minimum being the label), ``torch.utils.benchmark.Timer.blocked_autorange`` (its median per
   call, blocks of back-to-back calls with a synchronisation at each block's ends), and wall clock
   around each pass with ``torch.cuda.synchronize`` before and after (the median). Prints each
   clock's median ratio to the CUDA-event median and the spread of those ratios.
2. Out of memory: ``measure_specs`` over 4 specs of which one is far too large for the GPU's
   memory, the process capped at ``--memory-fraction`` of the GPU so that the failure comes fast
   (a real CUDA out-of-memory error from the caching allocator). The shard must complete, the
   large spec be ``failed`` with the allocator's message, and the others be labelled.

Usage: python benchmarks/gpu_checks.py [--config config/gpu.yaml] [--target gpu] [--n 20]
Writes benchmarks/out/gpu_checks-{target}.json (and .csv, one row per spec of the clock check).
Needs a CUDA GPU; run nothing else on it meanwhile.
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
from torch.utils import benchmark

from lenna.config import target_settings, timing_protocol
from lenna.space.specs import sample_specs, sampling_plan
from lenna.timing.clock import time_passes, timed_round
from lenna.timing.devices import device_lock, device_name, pin_device
from lenna.timing.labels import _timed_cell, measure_specs


def wall_passes(module, inputs, n: int) -> np.ndarray:
    """Wall time (ms) of ``n`` passes, each between two ``torch.cuda.synchronize`` calls."""
    out = np.empty(n)
    for i in range(n):
        torch.cuda.synchronize()
        t0 = time.perf_counter_ns()
        module(*inputs)
        torch.cuda.synchronize()
        out[i] = (time.perf_counter_ns() - t0) / 1e6
    return out


def clock_check(specs: pd.DataFrame, target, device, protocol) -> pd.DataFrame:
    rows = []
    for _, row in specs.iterrows():
        cell, _, inputs = _timed_cell(row, target, device)
        with torch.inference_mode():
            events = np.concatenate([timed_round(cell, inputs, protocol) for _ in range(protocol.rounds)])
            time_passes(cell, inputs, protocol.warmup)
            walls = wall_passes(cell, inputs, protocol.rounds * protocol.repeats)
            timer = benchmark.Timer(stmt="cell(*inputs)", globals={"cell": cell, "inputs": inputs})
            blocked = timer.blocked_autorange(min_run_time=0.2)
        rows.append(
            {
                "spec_id": row["spec_id"],
                "c": int(row["c"]),
                "height": int(row["height"]),
                "reduction": bool(row["reduction"]),
                "event_median_ms": float(np.median(events)),
                "event_min_ms": float(events.min()),
                "timer_median_ms": blocked.median * 1e3,
                "timer_calls": int(blocked.number_per_run * len(blocked.raw_times)),
                "wall_median_ms": float(np.median(walls)),
            }
        )
        del cell, inputs
    return pd.DataFrame(rows)


def ratio_summary(table: pd.DataFrame, column: str) -> dict:
    ratio = table[column] / table["event_median_ms"]
    return {
        "median_ratio": float(ratio.median()),
        "min_ratio": float(ratio.min()),
        "max_ratio": float(ratio.max()),
        "median_abs_diff_pct": float((ratio - 1).abs().median() * 100),
    }


def out_of_memory_check(specs: pd.DataFrame, target, device_str, device, protocol, fraction: float) -> dict:
    specs = specs.head(4).copy()
    huge = specs.index[1]
    # 64 x 2048 x 64 x 64 float32: 2 GiB per cell state, several of them live at once.
    specs.loc[huge, ["c_prev_prev", "c_prev", "c", "height", "width"]] = [2048, 2048, 2048, 64, 64]
    specs.loc[huge, ["reduction", "reduction_prev"]] = False
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    try:
        t0 = time.perf_counter()
        rows = measure_specs(specs, target, device_str, device, protocol)
        seconds = time.perf_counter() - t0
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    return {
        "memory_fraction": fraction,
        "seconds": seconds,
        "rows": len(rows),
        "status": rows["status"].tolist(),
        "huge_spec": specs.loc[huge, "spec_id"],
        "huge_status": rows.loc[rows["spec_id"] == specs.loc[huge, "spec_id"], "status"].item(),
        "huge_error": rows.loc[rows["spec_id"] == specs.loc[huge, "spec_id"], "error"].item(),
        "labels_ms": rows["latency_ms"].round(4).tolist(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/gpu.yaml")
    parser.add_argument("--target", default="gpu")
    parser.add_argument("--n", type=int, default=20, help="discrete specs in the clock check")
    parser.add_argument("--memory-fraction", type=float, default=0.1)
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    target = target_settings(config, args.target)
    protocol = timing_protocol(config)
    device_str = config["targets"][args.target]["devices"][0]
    device = pin_device(device_str, target.threads)
    if device.type != "cuda" or not torch.cuda.is_available():
        raise SystemExit(f"{args.config}: target {args.target} is not a usable CUDA device here")
    discrete_only = {**config, "sampling": {**config["sampling"], "samplers": {"discrete": 1.0}}}
    specs = sample_specs(sampling_plan(discrete_only), seed=4242, start=0, stop=args.n)
    with device_lock(device_str):
        table = clock_check(specs, target, device, protocol)
        oom = out_of_memory_check(specs, target, device_str, device, protocol, args.memory_fraction)
    result = {
        "device_name": device_name(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "batch_size": target.batch_size,
        "n_specs": len(table),
        "event_median_ms_range": [float(table.event_median_ms.min()), float(table.event_median_ms.max())],
        "label_over_median": float((table.event_min_ms / table.event_median_ms).median()),
        "timer_vs_events": ratio_summary(table, "timer_median_ms"),
        "wall_vs_events": ratio_summary(table, "wall_median_ms"),
        "out_of_memory": oom,
    }
    out = Path("benchmarks/out")
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"gpu_checks-{args.target}.csv", index=False)
    (out / f"gpu_checks-{args.target}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table.round(4).to_string(index=False))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
