"""A label is the pooled passes of several visits; specs whose best visits disagree are re-timed
within a budget, and what still disagrees is labelled unstable, left out and counted."""

import numpy as np
import pandas as pd
import pytest

from lenna.datasets import describe_label_quality, label_quality, merge_latency
from lenna.io import DataError, write_parquet
from lenna.space.cell import sample_gates
from lenna.space.ops import op_set
from lenna.space.specs import sample_specs, sampling_plan, spec_probs
from lenna.timing.devices import pin_device
from lenna.timing.labels import gate_seed, measure_specs, visit_uncertainty
from lenna.timing.protocol import Target, TimingProtocol
from test_specs import CONFIG

CPU = Target("cpu", 1, 1)
FAST = dict(warmup=1, repeats=3, rounds=2, runs_per_reset=2, rel_tol=0.05, patience=2, max_resets=6)


@pytest.fixture(scope="module")
def specs():
    # Both label kinds: the CONFIG plan samples discrete, derived and soft cells.
    table = sample_specs(sampling_plan(CONFIG), seed=7, start=0, stop=10)
    assert set(table["label_kind"]) == {"discrete", "expected"}
    return table


def _time(specs, **protocol):
    return measure_specs(specs, CPU, "cpu", pin_device("cpu", 1), TimingProtocol(**{**FAST, **protocol}))


def test_visit_uncertainty_is_the_gap_between_the_two_best_visits():
    assert visit_uncertainty([1.5, 1.0, 1.02]) == pytest.approx(0.02)
    assert np.isnan(visit_uncertainty([1.0]))


def test_a_zero_tolerance_retimes_every_disagreeing_spec_for_every_extra_round(specs):
    rows = _time(specs, retime_tolerance=0.0, retime_rounds=2, retime_budget_s=600)
    assert rows["retime_rounds_run"].iloc[0] == 2
    # Visits of two rounds never agree to the nanosecond: every spec was visited 2 + 2 times,
    # and none can meet a zero tolerance.
    assert (rows["n_visits"] == 4).all() and rows["retimed"].all()
    assert (rows["status"] == "unstable").all()
    assert rows["error"].str.startswith("visits disagree by").all()
    assert rows["retime_s"].iloc[0] > 0


def test_a_wide_tolerance_retimes_nothing(specs):
    rows = _time(specs, retime_tolerance=10.0, retime_rounds=3)
    assert (rows["n_visits"] == 2).all() and not rows["retimed"].any()
    assert (rows["status"] == "ok").all()
    assert rows["retime_rounds_run"].iloc[0] == 0


def test_a_spent_budget_stops_the_retiming_and_leaves_the_label_unstable(specs):
    rows = _time(specs, retime_tolerance=0.0, retime_rounds=3, retime_budget_s=0.0)
    assert (rows["n_visits"] == 2).all()
    assert (rows["status"] == "unstable").all()


def test_later_visits_of_an_expected_spec_time_the_same_gate_draws(specs):
    rows = _time(specs, retime_tolerance=10.0)
    expected = rows[rows["label_kind"] == "expected"].merge(specs.drop(columns="label_kind"), on="spec_id")
    assert len(expected)
    for _, row in expected.iterrows():
        names = op_set(row["op_set"])
        probs = spec_probs(row, names, int(row["steps"]))
        rng = np.random.default_rng(gate_seed(row["spec_id"]))
        draws = [[names.index(op) for op in sample_gates(probs, names, rng)] for _ in range(row["n_resets"])]
        assert [list(g) for g in row["gates"]] == draws
        # Every visit timed every reset: runs_per_reset passes per reset per visit.
        assert row["n_timed"] == row["n_visits"] * row["n_resets"] * FAST["runs_per_reset"]
        # The label is the mean over resets of each reset's pooled statistic.
        assert row["latency_ms"] == pytest.approx(np.mean(row["replicates_ms"]))


def _labelled(tmp_path, specs, rows):
    write_parquet(specs, tmp_path / "specs.parquet")
    write_parquet(rows, tmp_path / "shard-0.parquet")
    return [tmp_path / "specs.parquet"], [tmp_path / "shard-0.parquet"]


def test_unstable_labels_are_left_out_of_the_dataset_and_counted(tmp_path, specs):
    rows = _time(specs, retime_tolerance=10.0)
    rows.loc[:2, "status"] = "unstable"
    rows.loc[:2, "uncertainty"] = 0.3
    table, summary = merge_latency(*_labelled(tmp_path, specs, rows))
    assert len(table) == len(specs) - 3 and not set(rows["spec_id"][:3]) & set(table["spec_id"])
    assert summary["n_unstable"] == 3 and summary["n_failed"] == 0
    quality = summary["label_quality"]
    assert quality["share_unstable"] == pytest.approx(0.3)
    assert quality["poor"] and quality["poor_jobs"] == [str(tmp_path / "shard-0.parquet")]
    lines = describe_label_quality("cpu", summary)
    assert any(line.startswith("WARNING") and "stayed unstable" in line for line in lines)


def test_poor_labels_fail_the_merge_when_the_config_says_so(tmp_path, specs):
    rows = _time(specs, retime_tolerance=10.0)
    rows["uncertainty"] = 0.2
    paths = _labelled(tmp_path, specs, rows)
    _, summary = merge_latency(*paths, quality={"max_noise_floor": 0.05})
    assert summary["label_quality"]["poor"]
    with pytest.raises(DataError, match=r"too poor.*disagree by a median 20\.0%.*shard-0\.parquet"):
        merge_latency(*paths, quality={"max_noise_floor": 0.05, "fail_on_poor": True})
    # Within the limits the same labels pass.
    _, summary = merge_latency(*paths, quality={"max_noise_floor": 0.25, "fail_on_poor": True})
    assert not summary["label_quality"]["poor"]


def test_tables_timed_before_retiming_still_get_a_quality_entry():
    table = pd.DataFrame(
        {
            "source": ["a", "a"],
            "status": ["ok", "ok"],
            "label_kind": ["discrete", "discrete"],
            "dispersion": [0.1, 0.3],
            "replicates_ms": [[1.0, 1.3], [2.0, 2.1]],
            "latency_ms_raw": [1.0, 2.0],
        }
    )
    quality = label_quality(table)
    assert quality["n_labels"] == 2 and not quality["poor"]
    assert np.isnan(quality["noise_floor"]) and quality["slow_pass_share"] == pytest.approx(0.25)
