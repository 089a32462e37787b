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


def test_retiming_stored_specs_reproduces_their_labels(labelled):
    sample = labelled.iloc[:40]
    again = measure_specs(sample, Target("cpu", 1, 1), "cpu", pin_device("cpu", 1), PROTOCOL)
    # Labels reach the datasets calibrated by their job's reference cell (datasets.calibrate=true):
    # a shared host that changed speed between the two jobs (25% on one CI run) moves both.
    calibrated = [t["latency_ms"].to_numpy() / t["reference_ms"].to_numpy() for t in (again, sample)]
    rel = np.abs(calibrated[0] / calibrated[1] - 1)
    # The benchmark (benchmarks/label_quality.py) quotes the real figure on a quiet machine;
    # here the bound leaves room for a shared CI host but still fails for labels that are noise.
    assert np.median(rel) < 0.10


def test_a_plain_regressor_on_the_features_beats_the_mean_on_held_out_specs(labelled):
    splits = split_by_spec_id(labelled, {"train": 0.7, "val": 0.0, "test": 0.3})
    normaliser = fit_normaliser(splits["train"], "darts", 4)
    assert normaliser["features"] == feature_columns("darts", 4)
    model = RidgeCV(alphas=np.logspace(-3, 3, 13))
    model.fit(normalise(splits["train"], normaliser), np.log(splits["train"]["latency_ms"]))
    y = np.log(splits["test"]["latency_ms"].to_numpy())
    pred = model.predict(normalise(splits["test"], normaliser))
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - np.log(splits["train"]["latency_ms"]).mean()) ** 2)
    assert r2 > 0.5, pd.Series({"r2": r2})
