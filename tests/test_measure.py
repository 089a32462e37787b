import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import torch

from lenna.io import read_parquet, write_parquet
from lenna.space.cell import sample_gates
from lenna.space.ops import OP_SETS
from lenna.space.specs import sample_specs, sampling_plan, spec_probs
from lenna.timing.devices import as_input, device_lock, pin_device, place
from lenna.timing.labels import (
    SpecTiming,
    build_cell,
    first_expected_visit,
    gate_seed,
    make_inputs,
    measure_specs,
)
from lenna.timing.protocol import Target, TimingProtocol, label_of
from test_specs import CONFIG

OPS = OP_SETS["darts"]
# No re-timing (a wide tolerance): tests that use these labels for something else must not see
# a spec turn "unstable" on a busy machine. tests/test_retiming.py tests the re-timing.
FAST = TimingProtocol(
    warmup=1,
    repeats=5,
    runs_per_reset=3,
    rel_tol=0.05,
    patience=3,
    max_resets=30,
    reset_warmup=0,
    retime_tolerance=10.0,
)
CPU = Target("cpu", batch_size=1, threads=1)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    specs = sample_specs(sampling_plan(CONFIG), seed=11, start=0, stop=16)
    path = tmp_path_factory.mktemp("specs") / "shard.parquet"
    write_parquet(specs, path)
    stored = read_parquet(path)
    rows = measure_specs(stored, CPU, "cpu", pin_device("cpu", 1), FAST)
    return stored, rows


def test_every_row_carries_provenance(measured):
    _, rows = measured
    assert (rows["status"] == "ok").all()
    assert (rows["latency_ms"] > 0).all()
    for column in ("device_name", "torch_version", "threads", "batch_size", "timer", "measured_at"):
        assert rows[column].notna().all() and (rows[column].astype(str) != "").all(), column
    assert (rows["timer"] == "perf_counter_ns").all()
    assert (rows["threads"] == 1).all()


def test_discrete_label_is_the_minimum_of_its_replicates_by_default(measured):
    _, rows = measured
    assert FAST.label_quantile == 0.0
    for _, row in rows[rows["label_kind"] == "discrete"].iterrows():
        assert row["n_visits"] == FAST.rounds
        assert len(row["replicates_ms"]) == FAST.repeats * row["n_visits"]
        assert row["latency_ms"] == pytest.approx(np.min(row["replicates_ms"]))


def test_label_quantile_chooses_the_statistic_of_the_passes():
    runs = np.array([5.0, 1.0, 3.0, 2.0, 4.0])
    assert label_of(runs, TimingProtocol(label_quantile=0.5)) == 3.0
    assert label_of(runs, TimingProtocol(label_quantile=0.25)) == 2.0
    assert label_of(runs, TimingProtocol()) == 1.0


def test_expected_label_is_the_mean_over_resets_of_the_pooled_visits(measured):
    _, rows = measured
    expected = rows[rows["label_kind"] == "expected"]
    assert len(expected) > 0
    for _, row in expected.iterrows():
        per_reset = np.asarray(row["replicates_ms"])
        assert row["n_resets"] == len(per_reset) == len(row["gates"])
        assert row["latency_ms"] == pytest.approx(per_reset.mean())
        assert row["n_timed"] == row["n_visits"] * row["n_resets"] * FAST.runs_per_reset


def test_the_first_visit_of_an_expected_spec_stops_by_the_convergence_rule(measured):
    stored, _ = measured
    cpu = torch.device("cpu")
    for _, row in stored[stored["label_kind"] == "expected"].head(4).iterrows():
        cell, probs = build_cell(row, cpu)
        timing = SpecTiming("expected")
        rng = np.random.default_rng(gate_seed(row["spec_id"]))
        with torch.inference_mode():
            first_expected_visit(cell, make_inputs(cell, CPU, cpu), probs, rng, FAST, timing)
        per_reset = np.quantile(timing.visits[0], FAST.reset_quantile, axis=1)
        assert len(per_reset) == len(timing.gates)
        cum = np.cumsum(per_reset) / np.arange(1, len(per_reset) + 1)
        changes = np.abs(np.diff(cum)) / cum[:-1]
        if timing.converged:
            assert (changes[-FAST.patience :] < FAST.rel_tol).all()
            assert not (changes[-FAST.patience - 1 :] < FAST.rel_tol).all() or len(changes) == FAST.patience
        else:
            assert len(per_reset) == FAST.max_resets


def test_gates_were_drawn_from_exactly_the_stored_probabilities(measured):
    stored, rows = measured
    for _, row in rows[rows["label_kind"] == "expected"].iterrows():
        spec = stored.set_index("spec_id").loc[row["spec_id"]]
        probs = spec_probs(spec, OPS, 4)  # as read back from the Parquet shard
        rng = np.random.default_rng(gate_seed(row["spec_id"]))
        replayed = [[OPS.index(op) for op in sample_gates(probs, OPS, rng)] for _ in range(row["n_resets"])]
        assert [list(g) for g in row["gates"]] == replayed
        for gates in row["gates"]:
            assert all(probs[edge, op] > 0 for edge, op in enumerate(gates))


def test_gate_frequencies_match_the_probabilities():
    probs = np.random.default_rng(0).dirichlet(np.ones(len(OPS)), size=14)
    rng = np.random.default_rng(1)
    counts = Counter()
    n = 4000
    for _ in range(n):
        counts.update(enumerate(sample_gates(probs, OPS, rng)))
    freq = np.array([[counts[(e, op)] / n for op in OPS] for e in range(14)])
    assert np.abs(freq - probs).max() < 0.04


def test_a_local_job_sees_only_its_own_gpu_and_a_cluster_assignment_is_kept():
    env = {}
    device = pin_device("cuda:3", 1, env)
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and device == torch.device("cuda:0")
    env = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "5"}
    pin_device("cuda:0", 1, env)
    assert env["CUDA_VISIBLE_DEVICES"] == "5"
    with pytest.raises(ValueError, match="unknown device"):
        pin_device("tpu:0", 1, {})


def test_a_held_device_lock_blocks_a_second_timing_job(tmp_path):
    probe = (
        "import fcntl, sys; f = open(sys.argv[1], 'w');\n"
        "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
        "except BlockingIOError:\n    print('held')"
    )
    lock_file = tmp_path / "lenna-device-cuda0.lock"
    with device_lock("cuda:0", str(tmp_path)):
        held = subprocess.run([sys.executable, "-c", probe, str(lock_file)], capture_output=True, text=True)
    free = subprocess.run([sys.executable, "-c", probe, str(lock_file)], capture_output=True, text=True)
    assert held.stdout.strip() == "held"
    assert free.stdout.strip() == "free"
    assert os.path.exists(lock_file)


def test_no_host_lock_on_a_gpu_the_cluster_scheduler_assigned(tmp_path):
    slurm = {"SLURM_JOB_ID": "42", "CUDA_VISIBLE_DEVICES": "5"}
    with device_lock("cuda:0", str(tmp_path), env=slurm):
        assert not (tmp_path / "lenna-device-cuda0.lock").exists()
    with device_lock("cpu", str(tmp_path), env=slurm):  # a CPU is still locked per host
        assert (tmp_path / "lenna-device-cpu.lock").exists()


def test_a_channels_last_target_times_cells_and_inputs_in_that_layout_and_records_it():
    specs = sample_specs(sampling_plan(CONFIG), seed=3, start=0, stop=2)
    nhwc = Target("cpu", batch_size=2, threads=1, memory_format="channels_last")
    cell, _ = build_cell(specs.iloc[0], torch.device("cpu"))
    cell = place(nhwc, cell, torch.device("cpu"))
    inputs = make_inputs(cell, nhwc, torch.device("cpu"))
    assert all(x.shape[0] == 2 and x.is_contiguous(memory_format=torch.channels_last) for x in inputs)
    convs = [m for m in cell.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1)]
    assert convs and all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convs)
    assert not as_input(CPU, torch.randn(1, 4, 3, 3), torch.device("cpu")).is_contiguous(
        memory_format=torch.channels_last
    )
    rows = measure_specs(specs, nhwc, "cpu", torch.device("cpu"), FAST)
    assert set(rows["memory_format"]) == {"channels_last"} and set(rows["status"]) == {"ok"}
