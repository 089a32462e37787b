"""A measurement job killed with SIGKILL mid-shard: nothing partial is read, finished shards
are kept (and write-protected), and the next run completes the dataset."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest

from conftest import ROOT, SNAKEMAKE, run_snakemake, tiny_snakefile, write_config

pytestmark = pytest.mark.e2e


def _labelled(workdir, dataset: str) -> int:
    """Specs with a label: the dataset's rows plus those left out as unstable (a busy host)."""
    summary = json.loads((workdir / dataset).with_name("summary.json").read_text())
    assert summary["n_ok"] == len(pd.read_parquet(workdir / dataset))
    return summary["n_ok"] + summary["n_unstable"]


SLOW = {
    # Expected labels that run to max_resets keep each shard busy for seconds; two shards (the
    # CPU's timing jobs run one at a time): the first finishes, the second is killed.
    "measurement.rel_tol": 1e-6,
    "measurement.max_resets": 20,
    "measurement.runs_per_reset": 10,
    "sampling.specs_per_shard": 12,
}


def test_a_killed_measurement_job_leaves_no_partial_shard_and_the_next_run_finishes(tmp_path):
    config = write_config(tmp_path / "slow.yaml", **SLOW)
    workdir = tmp_path / "work"
    target = "results/datasets/cpu/latency.parquet"
    cmd = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile", str(config)]
    proc = subprocess.Popen(
        [*cmd, "--cores", "2", target],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    shards = workdir / "results" / "latency" / "cpu"
    logs = workdir / "logs" / "measure_latency" / "cpu"
    deadline = time.time() + 240
    running = None
    while time.time() < deadline and running is None:
        done = {p.stem for p in shards.glob("shard-*.parquet")} if shards.exists() else set()
        started = {p.stem for p in logs.glob("shard-*.log")} if logs.exists() else set()
        if done and started - done:
            running = sorted(started - done)[0]
        time.sleep(0.2)
    assert running is not None, "no shard finished while another was being timed"
    time.sleep(0.5)  # inside its timing: a shard times for 5 s or more at these settings
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    finished = sorted(shards.glob("shard-*.parquet"))
    assert not (shards / f"{running}.parquet").exists()  # nothing partial under the real name
    assert not list(shards.glob(".*tmp*"))
    kept = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in finished}
    for path in finished:
        assert not (path.stat().st_mode & 0o222)  # write-protected by snakemake's protected()
        pd.read_parquet(path)

    run_snakemake(workdir, "--unlock", configfile=config)
    run_snakemake(workdir, target, configfile=config)
    for name, digest in kept.items():  # finished shards were not timed again
        assert hashlib.sha256((shards / name).read_bytes()).hexdigest() == digest
    assert _labelled(workdir, target) == 24


def test_a_corrupted_shard_stops_the_merge_naming_it_and_leaves_no_dataset(tiny_run, tmp_path):
    source, _ = tiny_run
    workdir = tmp_path / "work"
    shutil.copytree(source, workdir, symlinks=True)
    snakefile = tiny_snakefile(source)
    # A label the merge keeps, in the first shard that has one (an unstable label is left out
    # anyway; the shared run's timing jobs run beside the SLURM run, and on 2026-12-07 all 8 labels
    # of its shard-1 came out unstable).
    shards = sorted((workdir / "results" / "latency" / "cpu").glob("shard-*.parquet"))
    shard, table = next((p, t) for p in shards if ((t := pd.read_parquet(p))["status"] == "ok").any())
    shard.chmod(0o644)
    table.loc[table.index[table["status"] == "ok"][0], "latency_ms"] = float("nan")
    table.to_parquet(shard, index=False)
    dataset = "results/datasets/cpu/latency.parquet"
    proc = run_snakemake(workdir, dataset, check=False, snakefile=snakefile)
    assert proc.returncode != 0
    assert shard.name in proc.stdout + proc.stderr and "non-positive or missing" in proc.stdout + proc.stderr
    assert not (workdir / "results" / "datasets" / "cpu" / "latency.parquet").exists()
    shard.unlink()  # the user removes the bad shard: the next run times it again and finishes
    run_snakemake(workdir, dataset, snakefile=snakefile)
    assert _labelled(workdir, dataset) == 24


def test_poor_labels_stop_the_merge_when_the_config_says_so_and_leave_no_dataset(tiny_run, tmp_path):
    source, _ = tiny_run
    workdir = tmp_path / "work"
    shutil.copytree(source, workdir, symlinks=True)
    # No timed label meets a zero noise floor: real visits never agree to the nanosecond.
    quality = {"max_noise_floor": 0.0, "max_unstable_share": 0.0, "fail_on_poor": True}
    strict = write_config(tmp_path / "strict.yaml", **{"datasets.label_quality": quality})
    dataset = "results/datasets/cpu/latency.parquet"
    proc = run_snakemake(workdir, dataset, configfile=strict, check=False, snakefile=tiny_snakefile(source))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "labels too poor for the predictors' quoted accuracy" in out, out[-3000:]
    assert "max_noise_floor 0%" in out and "poor jobs: results/latency/cpu/shard-" in out
    assert not (workdir / dataset).exists()
    assert not (workdir / "results" / "datasets" / "cpu" / "summary.json").exists()


def test_a_genotype_file_with_an_unknown_op_stops_training_naming_it_and_leaves_no_metrics(
    tiny_run, tmp_path
):
    source, _ = tiny_run
    workdir = tmp_path / "work"
    shutil.copytree(source, workdir, symlinks=True)
    run = workdir / "results" / "search" / "cpu" / "mlp" / "lambda-0" / "seed-0"
    genotype = json.loads((run / "genotype.json").read_text())
    genotype["normal"][0][0] = "conv_9x9"
    (run / "genotype.json").write_text(json.dumps(genotype))
    metrics = "results/search/cpu/mlp/lambda-0/seed-0/final/metrics.json"
    proc = run_snakemake(workdir, metrics, check=False, snakefile=tiny_snakefile(source))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "genotype.json: normal[0]: unknown op 'conv_9x9'" in out, out[-3000:]
    assert not (workdir / metrics).exists()
