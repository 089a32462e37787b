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
