"""Load test of the latency labels: the same specs timed quiet and beside controlled interference.

Samples ``--n`` specs from the config's own sampling plan (discrete and expected labels in the
config's shares) and times them on the target's first device through
`lenna.timing.labels.measure_specs`, once per condition, in this order:

- ``quiet``: nothing else running (the baseline every other condition is compared with);
- ``cpu``: one process per core spinning in a Python loop;
- ``memory``: one process per core copying 64 MiB numpy arrays (memory bandwidth and caches);
- ``burst``: quiet, except a burst in the middle of the timing (from 25% to 60% of the quiet
  duration) of one process per core that writes, reads and checksums files and multiplies
  matrices (disk I/O, page cache and CPU, as unpacking repositories and running numpy do);
- ``quiet_again``: quiet; its distance from ``quiet`` is the noise floor.

For every condition it prints, per label kind, the median and 90th percentile of
|label / quiet label - 1|, the share over 10%, the wall time, the share of specs re-timed and
left unstable, and the job's interference measures; for the raw labels, for labels divided by
their job's reference-cell timing as the datasets calibrate them, and (same timings) divided by
the minimum over all the job's reference ticks, the reference statistic before 2026-11-24.
``--set key=value`` overrides a ``measurement`` value (e.g. the protocol before re-timing:
``--set retime_rounds=0 --set label_quantile=0.5 --set reset_quantile=0.4 --set runs_per_reset=5
--set rounds=3``), so that two protocols can be compared on the same specs.

Usage: python benchmarks/load_test.py [--config config/config.yaml] [--target cpu] [--n 120]
       [--conditions quiet,cpu,memory,burst,quiet_again] [--set KEY=VALUE ...] [--tag NAME]
Writes benchmarks/out/load_test-{target}{-tag}.json and, per spec (shape, and label, status and
job reference timing per condition), load_test-{target}{-tag}.parquet. Run it with nothing else
busy beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from lenna.config import reference_shape, target_settings, timing_protocol
from lenna.space.specs import SHAPE_COLUMNS, sample_specs, sampling_plan
from lenna.timing.devices import pin_device
from lenna.timing.interference import describe_interference
from lenna.timing.labels import measure_specs

CONDITIONS = ("quiet", "cpu", "memory", "burst", "quiet_again")


def spin(seconds: float, _: int) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def copy_arrays(seconds: float, _: int) -> None:
    a = np.ones(8 * 2**20)  # 64 MiB
    b = np.empty_like(a)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        np.copyto(b, a)
        np.copyto(a, b)


def io_and_numpy(seconds: float, worker: int) -> None:
    rng = np.random.default_rng(worker)
    end = time.monotonic() + seconds
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        while time.monotonic() < end:
            path = Path(tmp) / f"blob-{n % 8}"
            path.write_bytes(rng.bytes(16 * 2**20))
            os.sync()
            hashlib.sha256(path.read_bytes()).hexdigest()
            m = rng.random((300, 300))
            m @ m
            n += 1


HOGS = {"cpu": spin, "memory": copy_arrays, "burst": io_and_numpy}


def start_hogs(kind: str, seconds: float, delay: float = 0.0) -> list:
    """One hog process per core, started after ``delay`` seconds (by a timer in each process)."""

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_delayed, args=(kind, seconds, delay, w)) for w in range(os.cpu_count() or 1)]
    for p in procs:
        p.start()
    return procs


def _delayed(kind: str, seconds: float, delay: float, worker: int) -> None:
    time.sleep(delay)
    HOGS[kind](seconds, worker)


def compare(rows, quiet) -> dict:
    """Per label kind: how far the labels are from the quiet ones, raw and divided by their job's
    reference-cell timing (as the datasets calibrate them)."""
    out = {}
    ok = (rows["status"] != "failed").to_numpy() & (quiet["status"] != "failed").to_numpy()
    raw = rows["latency_ms"].to_numpy() / quiet["latency_ms"].to_numpy()
    ratios = {"raw": raw, "calibrated": raw / (rows["reference_ms"].iloc[0] / quiet["reference_ms"].iloc[0])}
    if "reference_ticks_ms" in rows:
        # The same timings calibrated by the reference statistic used before 2026-11-24: the
        # minimum over all of the job's reference ticks.
        pooled = min(rows["reference_ticks_ms"].iloc[0]) / min(quiet["reference_ticks_ms"].iloc[0])
        ratios["calibrated_pooled_min"] = raw / pooled
    for kind in ("discrete", "expected", "all"):
        mask = ok & ((rows["label_kind"] == kind).to_numpy() if kind != "all" else True)
        if not mask.any():
            continue
        entry = {"n": int(mask.sum())}
        for name, ratio in ((name, ratio[mask]) for name, ratio in ratios.items()):
            rel = np.abs(ratio - 1)
            entry[name] = {
                "median_rel": float(np.median(rel)),
                "p90_rel": float(np.quantile(rel, 0.9)),
                "share_over_10pct": float(np.mean(rel > 0.1)),
                "median_ratio": float(np.median(ratio)),
            }
        out[kind] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--n", type=int, default=120, help="specs to time per condition")
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--tag", default="")
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    for item in args.set:
        key, value = item.split("=", 1)
        if key not in config["measurement"]:
            raise SystemExit(f"--set {item}: measurement.{key} is not a config key")
        config["measurement"][key] = yaml.safe_load(value)
    conditions = args.conditions.split(",")
    if conditions[0] != "quiet":
        raise SystemExit("--conditions must start with quiet (the baseline)")
    target = target_settings(config, args.target)
    protocol = timing_protocol(config)
    device_str = config["targets"][args.target]["devices"][0]
    device = pin_device(device_str, target.threads)
    specs = sample_specs(sampling_plan(config), seed=args.seed, start=0, stop=args.n)
    reference = reference_shape(config)
    result = {"target": args.target, "n_specs": args.n, "protocol": config["measurement"], "conditions": {}}
    timings, quiet_seconds = {}, None
    print(f"{args.n} specs ({specs['label_kind'].value_counts().to_dict()}) on {device_str}, {protocol}")
    for condition in conditions:
        procs = []
        if condition in ("cpu", "memory"):
            procs = start_hogs(condition, 3600)
            time.sleep(1.0)
        elif condition == "burst":
            span = quiet_seconds or 60.0
            procs = start_hogs("burst", 0.35 * span, delay=0.25 * span)
        t0 = time.perf_counter()
        rows = measure_specs(specs, target, device_str, device, protocol, reference)
        seconds = time.perf_counter() - t0
        for p in procs:
            p.terminate()
            p.join()
        if condition == "quiet":
            quiet_seconds = seconds
        timings[condition] = rows
        job = rows.iloc[0].to_dict()
        entry = {
            "seconds": round(seconds, 1),
            "retime_s": round(float(job.get("retime_s", 0.0)), 1),
            "share_retimed": float(rows["retimed"].mean()) if "retimed" in rows else None,
            "share_unstable": float((rows["status"] == "unstable").mean()),
            "noise_floor": float(rows["uncertainty"].median()) if "uncertainty" in rows else None,
            "interference": describe_interference(job),
            "reference_ticks_ms": [round(t, 5) for t in job.get("reference_ticks_ms", [])],
            "vs_quiet": compare(rows, timings["quiet"]) if condition != "quiet" else {},
        }
        result["conditions"][condition] = entry
        line = f"{condition:12s} {seconds:6.1f} s (re-timing {entry['retime_s']:.1f} s)"
        if entry["share_retimed"] is not None:
            line += f", re-timed {entry['share_retimed']:.0%}, unstable {entry['share_unstable']:.1%}"
        print(line + f"; {entry['interference']}")
        for kind, c in entry["vs_quiet"].items():
            for name in (n for n in c if n != "n"):
                d = c[name]
                print(
                    f"    {kind:9s} {name:21s} n={c['n']:4d} median |a/quiet-1| {d['median_rel']:.1%}, "
                    f"p90 {d['p90_rel']:.1%}, over 10% {d['share_over_10pct']:.0%}, "
                    f"median ratio {d['median_ratio']:.3f}"
                )
    out = Path("benchmarks/out")
    out.mkdir(parents=True, exist_ok=True)
    name = f"load_test-{args.target}{'-' + args.tag if args.tag else ''}.json"
    (out / name).write_text(json.dumps(result, indent=2))
    # Per spec: its shape and, per condition, its label, status and job reference timing, so that
    # how a condition moves a label can be studied against the spec's shape and ops.
    per_spec = specs[["spec_id", "label_kind", *SHAPE_COLUMNS]].reset_index(drop=True)
    for condition, rows in timings.items():
        for column in ("latency_ms", "status", "reference_ms"):
            per_spec[f"{condition}_{column}"] = rows[column].to_numpy()
    per_spec.to_parquet(out / name.replace(".json", ".parquet"), index=False)
    print(f"wrote {out / name} and its per-spec table {out / name.replace('.json', '.parquet')}")


if __name__ == "__main__":
    main()
