"""The tiny config through a real single-node SLURM cluster (Debian's slurm-wlm and munge on
127.0.0.1) with the project's slurm profile: heavy jobs go through SLURM, light rules stay local."""

import re
import subprocess

import pytest

pytestmark = pytest.mark.e2e

# The rules of the Snakefile's `localrules`: run on the submitting host, never as SLURM jobs.
LOCAL = {"sample_specs", "merge_latency", "split_normalise", "evaluate_predictor", "pareto", "summary"}
# Jobs of the tiny config with one search, one timing shard and two predictors (the others would
# only repeat them, each a wave of jobs to wait for) that must have been SLURM jobs (rule: count).
CLUSTER = {
    "measure_latency": 1,
    "measure_lut": 1,
    "measure_networks": 1,
    "train_mlp": 1,
    "train_lut": 1,
    "darts_search": 1,
    "train_final": 1,
    "measure_final": 1,
}


def test_the_tiny_config_runs_on_slurm_with_the_slurm_profile(slurm_run):
    # The run started with the session, in the background (conftest.slurm_run): the config
    # conftest.SLURM_RUN_CHANGES, one search and one timing shard.
    if slurm_run.skip is not None:
        pytest.skip(f"no SLURM test cluster: {slurm_run.skip}")
    proc = slurm_run.result()
    workdir, cluster = slurm_run.workdir, slurm_run.cluster
    # Comment (rule and wildcards, set by the executor plugin), state, may others share the node.
    jobs = cluster.run("squeue", "--states=all", "--noheader", "--format=%k|%T|%h").stdout
    cluster.check_alive()
    slurm_run.stop()
    states = [line.split("|") for line in jobs.split()]
    assert states and all(state == "COMPLETED" for _, state, _ in states), jobs
    submitted = {}
    for comment, _, shared in states:
        rule = re.match(r"rule_(\w+?)_wildcards_", comment).group(1)
        submitted[rule] = submitted.get(rule, 0) + 1
        # CPU timing jobs had the node to themselves (--exclusive); the others shared it.
        assert shared == ("NO" if rule.startswith("measure_") else "OK"), (rule, shared)
    assert submitted == CLUSTER, jobs
    assert not LOCAL & submitted.keys()
    assert all(f"localrule {rule}:" in proc.stdout + proc.stderr for rule in LOCAL)
    # The run is complete: the Pareto table, the summary and the report are there.
    for path in ("results/pareto/cpu/pareto.csv", "results/summary.md", "results/report.html"):
        assert (workdir / path).exists(), path
    # Every daemon the test started is gone.
    left = subprocess.run(["pgrep", "-f", str(slurm_run.tmp / "slurm")], capture_output=True, text=True)
    assert left.stdout.strip() == "", left.stdout
