"""Benchmark: dry-run the whole DAG at cluster scale.

Usage: python benchmarks/dag_scale.py [--specs 100000] [--shards 1000] [--devices 64]
Writes a config = the default one with ``--specs`` specs in ``--shards`` shards and one target
of ``--devices`` GPUs (cuda:0 .. cuda:N-1), then times ``snakemake --dry-run`` on it in an empty
working directory (every job must be planned) and reports the wall time, the peak resident
memory of the snakemake process and the number of jobs. Writes benchmarks/out/dag_scale.json.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--specs", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=1_000)
    parser.add_argument("--devices", type=int, default=64)
    args = parser.parse_args()
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["sampling"]["n_specs"] = args.specs
    config["sampling"]["specs_per_shard"] = -(-args.specs // args.shards)
    devices = [f"cuda:{i}" for i in range(args.devices)]
    target = {"devices": devices, "batch_size": 64, "threads": 1, "dtype": "float32", "hardware": "h100"}
    config["targets"] = {"gpus": target}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(Path(tmp) / "work"),
            "--configfile",
            str(path),
            "--dry-run",
            "--quiet",
            "rules",
            "--cores",
            str(args.devices),
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"snakemake failed:\n{proc.stderr[-3000:]}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stats = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", proc.stdout, re.M)}
    result = {
        "specs": args.specs,
        "shards": args.shards,
        "devices": args.devices,
        "dry_run_seconds": round(seconds, 1),
        "peak_rss_mib": round(peak_mib),
        "jobs": stats.get("total"),
        "measure_latency_jobs": stats.get("measure_latency"),
    }
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "dag_scale.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
