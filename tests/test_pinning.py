"""GPU pinning without GPUs: a target of three (fake) GPUs. The real workflow gives every timing job
its own device's slot; probe jobs scheduled like timing jobs under the real profile show that jobs
are spread over the devices, that no two ever hold one device at once, and that each job sees
only its own device."""

import json
import re
from itertools import combinations

import pytest

from conftest import ROOT, run_snakemake, write_config

pytestmark = pytest.mark.e2e

DEVICES = ["cuda:0", "cuda:1", "cuda:2"]
PROBE = ROOT / "tests" / "pinning" / "Snakefile"
PROFILE = ROOT / "profiles" / "default"


def gpu_config(tmp_path, n_specs=48):
    """Six shards of 8 specs over three GPUs of one (declared) model."""
    target = {"devices": DEVICES, "batch_size": 1, "threads": 1, "hardware": "fake_gpu"}
    return write_config(tmp_path / "gpus.yaml", targets={"gpus": target}, **{"sampling.n_specs": n_specs})


def overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


def test_every_timing_job_of_the_workflow_holds_exactly_its_own_device(tmp_path):
    config = gpu_config(tmp_path)
    proc = run_snakemake(tmp_path / "work", "-n", configfile=config)
    jobs = re.findall(r"rule (measure_\w+):\n(?:    .*\n)*?    resources: (.*)\n", proc.stdout + proc.stderr)
    kinds = {rule for rule, _ in jobs}
    assert {"measure_latency", "measure_lut", "measure_networks", "measure_final"} <= kinds
    per_device = {d: 0 for d in DEVICES}
    for _, line in jobs:
        resources = dict(item.split("=", 1) for item in line.split(", "))
        device = resources["device"]
        held = [slot for slot in ("dev_cuda0", "dev_cuda1", "dev_cuda2") if resources[slot] == "1"]
        assert held == [f"dev_{device.replace(':', '')}"], line
        assert resources["gpu"] == "1" and resources["gpu_model"] == "fake_gpu", line
        per_device[device] += 1
    # Six shards round-robin over three devices: two each; the whole-target jobs on the first.
    latency = re.findall(
        r"rule measure_latency:\n(?:    .*\n)*?    resources: .*device=(cuda:\d)", proc.stdout + proc.stderr
    )
    assert sorted(latency) == sorted(DEVICES * 2)
    assert all(n >= 2 for n in per_device.values()), per_device


def probe(tmp_path, *args):
    workdir = tmp_path / "probe"
    env = {"TMPDIR": str(tmp_path), "LENNA_PROBE_HOLD_S": "2"}  # device locks live in TMPDIR
    run_snakemake(
        workdir,
        "--workflow-profile",
        str(PROFILE),
        *args,
        configfile=gpu_config(tmp_path),
        snakefile=PROBE,
        env=env,
    )
    return [json.loads(p.read_text()) for p in sorted((workdir / "probe" / "gpus").glob("*.json"))]


def test_timing_jobs_are_spread_over_the_devices_never_share_one_and_see_only_their_own(tmp_path):
    # More cores than devices: only the per-device slots of the profile keep jobs apart.
    records = probe(tmp_path, "--cores", "6")
    assert len(records) == 6
    assert sorted(r["device"] for r in records) == sorted(DEVICES * 2)
    for r in records:
        index = r["device"].split(":")[1]
        assert r["cuda_visible_devices"] == index and r["child_cuda_visible_devices"] == index
        assert r["torch_device"] == "cuda:0"  # the one device the job can see
        assert r["threads"] == 1
    for a, b in combinations(records, 2):
        if a["device"] == b["device"]:
            assert not overlaps(a["job"], b["job"]), (a, b)
    # The devices did work in parallel: jobs on different devices overlapped in time.
    assert any(
        overlaps(a["job"], b["job"]) for a, b in combinations(records, 2) if a["device"] != b["device"]
    )


def test_without_the_profile_slots_the_device_lock_still_keeps_jobs_apart(tmp_path):
    # The second line of defence (e.g. two workflows on one machine): the per-host device lock.
    records = probe(tmp_path, "--cores", "6", "--resources", "dev_cuda0=9", "dev_cuda1=9", "dev_cuda2=9")
    same_device = [(a, b) for a, b in combinations(records, 2) if a["device"] == b["device"]]
    # Here the scheduler did start two jobs of one device together ...
    assert any(overlaps(a["job"], b["job"]) for a, b in same_device)
    # ... but they never held the device at the same time.
    for a, b in same_device:
        assert not overlaps(a["lock"], b["lock"]), (a, b)


def test_searches_and_final_trainings_run_on_the_configured_device_with_its_slot(tmp_path):
    # a GPU target and the searches on a second GPU: each search and final training holds that
    # GPU's slot (never beside a timing job or another of them) and asks a cluster for a GPU
    config = write_config(
        tmp_path / "c.yaml",
        targets={"gpus": {"devices": ["cuda:0"], "batch_size": 1, "threads": 1, "hardware": "fake_gpu"}},
        **{"search.device": "cuda:1", "train_final.device": "cuda:1"},
    )
    proc = run_snakemake(tmp_path / "work", "-n", configfile=config)
    jobs = re.findall(r"rule (darts_search|train_final):\n(?:    .*\n)*?    resources: (.*)\n", proc.stdout)
    assert {rule for rule, _ in jobs} == {"darts_search", "train_final"}
    for _, line in jobs:
        resources = dict(item.split("=", 1) for item in line.split(", "))
        assert resources["device"] == "cuda:1" and resources["dev_cuda1"] == "1" and resources["gpu"] == "1"
    # the default: on the CPU, without a slot (they run beside each other)
    proc = run_snakemake(tmp_path / "cpu", "-n", configfile=write_config(tmp_path / "d.yaml"))
    jobs = re.findall(r"rule darts_search:\n(?:    .*\n)*?    resources: (.*)\n", proc.stdout)
    assert jobs and all("device=cpu" in line and "dev_cpu" not in line for line in jobs)


def test_a_gpu_asked_for_where_there_is_none_is_an_error_naming_the_key():
    import torch

    from lenna.timing.devices import compute_device

    assert compute_device("cpu", 1, "search.device", env={}) == torch.device("cpu")
    if not torch.cuda.is_available():
        env = {}
        with pytest.raises(
            RuntimeError, match=r"train_final.device: cuda:0, but this machine has no usable CUDA"
        ):
            compute_device("cuda:0", 1, "train_final.device", env=env)
        assert env["CUDA_VISIBLE_DEVICES"] == "0"  # pinned as a timing job is
