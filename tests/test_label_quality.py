"""Labels must be honest: reproducible within the noise, and determined by the features."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeCV

from lenna.datasets import feature_columns, fit_normaliser, normalise, split_by_spec_id
from lenna.space.specs import sample_specs, sampling_plan
from lenna.timing.devices import pin_device
from lenna.timing.labels import measure_specs
from lenna.timing.protocol import Target, TimingProtocol

WIDE = {
    "search_space": {"op_set": "darts", "steps": 4},
    "macro": {
        "input_channels": 3,
        "stem_multiplier": 3,
        "input_size": [8, 16],
        "init_channels": [4, 16],
        "layers": [3, 8],
    },
    "sampling": {"samplers": {"discrete": 0.7, "derived": 0.3}, "soft_concentration": [0.01, 20.0]},
}
PROTOCOL = TimingProtocol(warmup=2, repeats=5, rounds=2)


@pytest.fixture(scope="module")
def labelled():
    specs = sample_specs(sampling_plan(WIDE), seed=3, start=0, stop=240)
    rows = measure_specs(specs, Target("cpu", 1, 1), "cpu", pin_device("cpu", 1), PROTOCOL)
    return specs.merge(rows.drop(columns="label_kind"), on="spec_id")


def host(rows: pd.DataFrame) -> pd.Series:
    """What a failure shows: how the machine's speed moved during the job and what it cost."""
    return pd.Series(
        {
            "reference_spread": rows["reference_spread"].iloc[0],
            "share_retimed": rows["retimed"].mean(),
            "n_unstable": int((rows["status"] == "unstable").sum()),
        }
    )


def test_retiming_stored_specs_reproduces_their_labels(labelled):
    sample = labelled.iloc[:40]
    again = measure_specs(sample, Target("cpu", 1, 1), "cpu", pin_device("cpu", 1), PROTOCOL)
    # Labels the merge keeps (status ok in both jobs), each job's by its speed: the ratio of the
    # two jobs' labels over its median. Calibration by the reference cell estimates that factor
    # (`datasets.merge_latency`, tested in test_datasets.py), but a job of 40 specs times it only
    # a few times: on a host whose speed swings twofold within seconds (2026-12-07, 01:00 UTC) its
    # estimate missed by up to 20% while the labels agreed within 2-5% modulo the factor.
    kept = (sample["status"].to_numpy() == "ok") & (again["status"].to_numpy() == "ok")
    ratio = again["latency_ms"].to_numpy()[kept] / sample["latency_ms"].to_numpy()[kept]
    rel = np.abs(ratio / np.median(ratio) - 1)
    # The benchmark (benchmarks/label_quality.py) quotes the real figure on a quiet machine;
    # here the bound leaves room for a shared CI host but still fails for labels that are noise.
    assert kept.sum() >= 30 and np.median(rel) < 0.10, pd.concat([host(sample), host(again)])


def test_a_plain_regressor_on_the_features_beats_the_mean_on_held_out_specs(labelled):
    # The labels the merge keeps: unstable ones are left out of every dataset.
    kept = labelled[labelled["status"] == "ok"]
    splits = split_by_spec_id(kept, {"train": 0.7, "val": 0.0, "test": 0.3})
    normaliser = fit_normaliser(splits["train"], "darts", 4)
    assert normaliser["features"] == feature_columns("darts", 4)
    model = RidgeCV(alphas=np.logspace(-3, 3, 13))
    model.fit(normalise(splits["train"], normaliser), np.log(splits["train"]["latency_ms"]))
    y = np.log(splits["test"]["latency_ms"].to_numpy())
    pred = model.predict(normalise(splits["test"], normaliser))
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - np.log(splits["train"]["latency_ms"]).mean()) ** 2)
    # Labels shuffled across specs score -0.08..0.04; real ones 0.55-0.83 on this machine and 0.43 on
    # the CI host in a spell when its speed swung twofold within the job (2026-12-07, `host` 1.10).
    assert r2 > 0.25, pd.concat([pd.Series({"r2": r2}), host(labelled)])
