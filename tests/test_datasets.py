import numpy as np
import pandas as pd
import pytest

from lenna.datasets import check_splits, fit_normaliser, merge_latency, split_by_spec_id, split_of
from lenna.io import DataError, read_parquet, write_parquet
from test_measure import CPU, FAST
from test_specs import CONFIG

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two real spec shards and their measured latency shards."""
    from lenna.space.specs import sample_specs, sampling_plan
    from lenna.timing.devices import pin_device
    from lenna.timing.labels import measure_specs

    root = tmp_path_factory.mktemp("shards")
    plan = sampling_plan(CONFIG)
    spec_paths, latency_paths = [], []
    for shard, (start, stop) in enumerate([(0, 6), (6, 12)]):
        specs = sample_specs(plan, 5, start, stop)
        spec_paths.append(root / f"specs-{shard}.parquet")
        latency_paths.append(root / f"latency-{shard}.parquet")
        write_parquet(specs, spec_paths[-1])
        write_parquet(measure_specs(specs, CPU, "cpu", pin_device("cpu", 1), FAST), latency_paths[-1])
    return spec_paths, latency_paths


def test_merge_joins_features_and_counts_rows(shards):
    table, summary = merge_latency(*shards)
    assert summary["n_ok"] == len(table) == 12
    assert table["spec_id"].is_unique
    for column in ("spec_id", "latency_ms", "label_kind", "device_name", "c_prev", "e00_none", "batch_size"):
        assert column in table.columns


def test_merge_names_the_file_with_a_nonpositive_latency(shards, tmp_path):
    spec_paths, latency_paths = shards
    bad = read_parquet(latency_paths[1])
    bad.loc[2, "latency_ms"] = -1.0
    write_parquet(bad, tmp_path / "bad.parquet")
    with pytest.raises(DataError, match="bad.parquet.*non-positive"):
        merge_latency(spec_paths, [latency_paths[0], tmp_path / "bad.parquet"])


def test_merge_names_a_truncated_shard(shards, tmp_path):
    spec_paths, latency_paths = shards
    data = latency_paths[0].read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.parquet.*not a readable Parquet"):
        merge_latency(spec_paths, [tmp_path / "cut.parquet"])


def test_a_spec_keeps_its_split_when_specs_are_added():
    ids = [f"{i:016x}" for i in range(0, 10_000, 7)]
    before = {s: split_of(s, FRACTIONS) for s in ids[:500]}
    grown = split_by_spec_id(pd.DataFrame({"spec_id": ids}), FRACTIONS)
    after = {s: name for name, part in grown.items() for s in part["spec_id"]}
    assert all(after[s] == before[s] for s in before)
    shares = {k: len(v) / len(ids) for k, v in grown.items()}
    assert all(abs(shares[k] - FRACTIONS[k]) < 0.05 for k in FRACTIONS)


def test_a_split_left_without_labels_stops_the_split_naming_the_table_and_what_to_do():
    # Six kept labels of a small run on a noisy host (the rest unstable): none fell in test.
    ids = [f"{i:016x}" for i in range(200)]
    train, val = ([s for s in ids if split_of(s, FRACTIONS) == name] for name in ("train", "val"))
    kept = pd.DataFrame({"spec_id": train[:4] + val[:2]})
    splits = split_by_spec_id(kept, FRACTIONS)
    with pytest.raises(
        DataError, match=r"latency.parquet: no labels in the test split \(train \d, val \d, test 0 of 6"
    ) as err:
        check_splits(splits, FRACTIONS, "results/datasets/cpu/latency.parquet")
    assert "sampling.n_specs" in str(err.value) and "datasets.split" in str(err.value)
    # a split the config leaves out may be empty
    check_splits(splits, {"train": 0.8, "val": 0.2, "test": 0.0}, "latency.parquet")
    with pytest.raises(DataError, match="no labels in the val and test splits"):
        check_splits(split_by_spec_id(kept[:4], FRACTIONS), FRACTIONS, "latency.parquet")
    check_splits(split_by_spec_id(pd.DataFrame({"spec_id": ids}), FRACTIONS), FRACTIONS, "latency.parquet")


def test_splits_are_byte_identical_across_runs(shards, tmp_path):
    table, _ = merge_latency(*shards)
    for run in ("a", "b"):
        shuffled = table.sample(frac=1.0, random_state=0 if run == "a" else 1)
        for name, part in split_by_spec_id(shuffled, FRACTIONS).items():
            write_parquet(part, tmp_path / f"{run}-{name}.parquet")
    for name in FRACTIONS:
        assert (tmp_path / f"a-{name}.parquet").read_bytes() == (tmp_path / f"b-{name}.parquet").read_bytes()


def test_the_normaliser_sees_the_training_split_only(shards):
    table, _ = merge_latency(*shards)
    splits = split_by_spec_id(table, {"train": 0.5, "val": 0.25, "test": 0.25})
    before = fit_normaliser(splits["train"], "darts", 4)
    splits["test"]["c_prev"] *= 100
    splits["test"]["latency_ms"] *= 100
    assert fit_normaliser(splits["train"], "darts", 4) == before
    assert before["n_train"] == len(splits["train"])
    assert np.all(np.asarray(before["std"]) > 0)


def test_calibration_scales_each_job_by_its_reference_speed(shards, tmp_path):
    spec_paths, latency_paths = shards
    slow = read_parquet(latency_paths[1])
    assert slow["reference_ms"].nunique() == 1 and slow["reference_ms"].iloc[0] > 0
    fast = read_parquet(latency_paths[0]).assign(reference_ms=1.0)
    slow = slow.assign(reference_ms=1.5)  # this job's machine ran 1.5x slower than the other's
    write_parquet(fast, tmp_path / "fast.parquet")
    write_parquet(slow, tmp_path / "slow.parquet")
    table, summary = merge_latency(spec_paths, [tmp_path / "fast.parquet", tmp_path / "slow.parquet"])
    assert summary["reference_nominal_ms"] == pytest.approx(1.25)
    by_id = table.set_index("spec_id")
    for source, factor in ((fast, 1.0 / 1.25), (slow, 1.5 / 1.25)):
        rows = by_id.loc[source["spec_id"]]
        assert np.allclose(rows["speed_factor"], factor)
        assert np.allclose(rows["latency_ms"], source["latency_ms"].to_numpy() / factor)
        assert np.allclose(rows["latency_ms_raw"], source["latency_ms"].to_numpy())
    raw, _ = merge_latency(
        spec_paths, [tmp_path / "fast.parquet", tmp_path / "slow.parquet"], calibrate=False
    )
    assert np.allclose(raw["latency_ms"], raw["latency_ms_raw"])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda path: path.write_bytes(b""), "not a readable Parquet"),
        (lambda path: write_parquet(read_parquet(path).drop(columns="latency_ms"), path), "missing column"),
        (
            lambda path: write_parquet(read_parquet(path).assign(latency_ms=np.nan), path),
            "non-positive or missing",
        ),
        (
            lambda path: write_parquet(read_parquet(path).assign(latency_ms=0.0), path),
            "non-positive or missing",
        ),
        (
            lambda path: write_parquet(read_parquet(path).assign(spec_id="feedfacefeedface"), path),
            "in no spec shard",
        ),
    ],
    ids=["empty", "wrong_schema", "nan_latency", "zero_latency", "unknown_spec"],
)
def test_a_corrupted_latency_shard_is_named(shards, tmp_path, damage, message):
    spec_paths, latency_paths = shards
    bad = tmp_path / "bad-shard.parquet"
    bad.write_bytes(latency_paths[1].read_bytes())
    damage(bad)
    with pytest.raises(DataError, match=f"bad-shard.parquet.*{message}"):
        merge_latency(spec_paths, [latency_paths[0], bad])


def test_one_spec_with_conflicting_labels_in_two_shards_is_an_error_naming_both(shards, tmp_path):
    spec_paths, latency_paths = shards
    copy = read_parquet(latency_paths[0])
    write_parquet(copy, tmp_path / "same.parquet")
    table, summary = merge_latency(spec_paths, [latency_paths[0], tmp_path / "same.parquet"])
    assert summary["n_duplicates_dropped"] == len(copy) and len(table) == len(copy)
    write_parquet(copy.assign(latency_ms=copy["latency_ms"] * 1.5), tmp_path / "retimed.parquet")
    with pytest.raises(DataError, match="conflicting labels.*retimed.parquet"):
        merge_latency(spec_paths, [latency_paths[0], tmp_path / "retimed.parquet"])


def test_a_spec_the_stream_drew_twice_keeps_its_first_timing_and_is_counted(shards, tmp_path):
    # In a small space (NAS-Bench-201) the stream draws some specs again at a later index: both
    # draws are timed and disagree within the noise, which is no error.
    spec_paths, latency_paths = shards
    specs, labels = read_parquet(spec_paths[0]), read_parquet(latency_paths[0])
    first = labels[labels["status"] == "ok"].iloc[[0]]
    again = specs[specs["spec_id"] == first["spec_id"].iloc[0]].assign(index=10_000)
    write_parquet(again, tmp_path / "specs-again.parquet")
    write_parquet(first.assign(latency_ms=first["latency_ms"] * 1.01), tmp_path / "again.parquet")
    table, summary = merge_latency(
        [spec_paths[0], tmp_path / "specs-again.parquet"], [latency_paths[0], tmp_path / "again.parquet"]
    )
    assert summary["n_resampled_dropped"] == 1 and summary["n_duplicates_dropped"] == 1
    assert len(table) == (labels["status"] == "ok").sum()
    kept = table.set_index("spec_id").loc[first["spec_id"].iloc[0], "latency_ms_raw"]
    assert kept == first["latency_ms"].iloc[0]
