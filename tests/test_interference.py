"""A timing job records what else ran beside it, and the dataset summary says so."""

import itertools
import multiprocessing as mp
import time

import numpy as np
import pandas as pd
import pytest

from lenna.datasets import label_quality_by_job, merge_latency
from lenna.io import write_parquet
from lenna.space.specs import sample_specs, sampling_plan
from lenna.timing.devices import pin_device
from lenna.timing.interference import PROC_STAT, CpuMeter, interference_warnings
from lenna.timing.labels import expected_minimum, measure_specs, reference_label
from lenna.timing.protocol import Target, TimingProtocol
from test_specs import CONFIG

needs_proc = pytest.mark.skipif(not PROC_STAT.exists(), reason="no /proc/stat (not Linux)")
FAST = TimingProtocol(warmup=1, repeats=3, rounds=2, runs_per_reset=2, rel_tol=0.05, patience=2, max_resets=6)


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@needs_proc
def test_a_spinning_process_beside_the_meter_is_counted_as_other_cpu_time():
    hog = mp.get_context("spawn").Process(target=_spin, args=(1.5,))
    meter = CpuMeter()
    hog.start()
    hog.join()
    got = meter.summary()
    # The hog alone kept one CPU busy for the whole interval (apart from its start-up).
    assert got["other_cpu_share"] > 0.5 / PROC_STAT.read_text().count("\ncpu"), got
    assert 0.0 <= got["steal_share"] <= 1.0
    assert any("other processes" in w for w in interference_warnings(got))


def test_every_row_carries_its_jobs_interference_measures_and_the_merge_reports_them(tmp_path):
    specs = sample_specs(sampling_plan(CONFIG), seed=4, start=0, stop=6)
    rows = measure_specs(specs, Target("cpu", 1, 1), "cpu", pin_device("cpu", 1), FAST)
    for column in ("reference_spread", "other_cpu_share", "steal_share", "load_avg_1m"):
        assert rows[column].nunique(dropna=False) == 1, column
    assert rows["reference_spread"].iloc[0] >= 0.0
    # The job's reference ticks are stored, and its reference is the minimum a label would see.
    ticks = rows["reference_ticks_ms"].iloc[0]
    assert len(ticks) >= FAST.rounds
    assert rows["reference_ms"].iloc[0] == pytest.approx(expected_minimum(ticks, FAST.rounds))
    write_parquet(specs, tmp_path / "specs.parquet")
    write_parquet(rows, tmp_path / "latency.parquet")
    _, summary = merge_latency([tmp_path / "specs.parquet"], [tmp_path / "latency.parquet"])
    job = summary["label_quality_by_job"][str(tmp_path / "latency.parquet")]
    assert job["reference_spread"] == pytest.approx(rows["reference_spread"].iloc[0])
    assert job["median_dispersion"] == pytest.approx(rows["dispersion"].median())
    assert isinstance(job["warnings"], list)


def test_tables_without_interference_columns_still_get_a_quality_entry():
    table = pd.DataFrame(
        {
            "source": ["a", "a", "b"],
            "status": ["ok", "ok", "ok"],
            "label_kind": ["discrete", "expected", "discrete"],
            "dispersion": [0.1, 0.3, 0.2],
            "replicates_ms": [[1.0, 1.1], [2.0], [3.0, 3.0]],
            "latency_ms_raw": [1.0, 2.0, 3.0],
        }
    )
    quality = label_quality_by_job(table)
    assert sorted(quality) == ["a", "b"]
    assert quality["a"]["median_dispersion"] == pytest.approx(0.2) and quality["a"]["n_labels"] == 2
    assert quality["b"]["warnings"] == [] and "other_cpu_share" not in quality["b"]


def test_warnings_name_what_was_seen_and_stay_quiet_below_the_thresholds():
    assert (
        interference_warnings({"other_cpu_share": 0.02, "steal_share": 0.0, "reference_spread": 0.05}) == []
    )
    said = interference_warnings({"other_cpu_share": 0.4, "steal_share": 0.2, "reference_spread": 0.5})
    assert len(said) == 3 and "40%" in said[0] and "steal" in said[1] and "50%" in said[2]


def test_expected_minimum_is_the_mean_minimum_over_every_draw():
    values = np.random.default_rng(0).lognormal(size=9)
    for k in (1, 2, 3, 9, 12):
        draws = list(itertools.combinations(values, min(k, len(values))))
        assert expected_minimum(values, k) == pytest.approx(np.mean([min(d) for d in draws]))


def test_the_reference_sees_the_machine_as_a_label_does():
    # A job under bursty load: the machine runs 1.0x to 1.3x slow from tick to tick, once 0.8x
    # (a lucky fast moment). A label is the minimum of `rounds` visits at random moments; the
    # reference must come out as that label's expectation, so that dividing by it calibrates.
    # The minimum over all ticks finds the lucky moment instead, 20% below what labels see.
    rng = np.random.default_rng(1)
    speed = np.concatenate([[0.8], rng.uniform(1.0, 1.3, 39)])
    protocol = TimingProtocol(rounds=3, repeats=7, label_quantile=0.0)
    ticks = [s * (1 + 0.01 * rng.random(protocol.repeats)) for s in speed]
    labels = [
        min(ticks[i].min() for i in rng.choice(len(ticks), protocol.rounds, replace=False))
        for _ in range(4000)
    ]
    assert reference_label(ticks, protocol) == pytest.approx(np.mean(labels), rel=0.01)
    assert np.concatenate(ticks).min() < 0.85 * np.mean(labels)
    # With the median of passes the statistic pools the ticks as a label pools its visits.
    median = TimingProtocol(rounds=3, repeats=7, label_quantile=0.5)
    assert reference_label(ticks, median) == pytest.approx(np.median(np.concatenate(ticks)))
