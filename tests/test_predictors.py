import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from lenna.datasets import fit_normaliser, merge_latency, normalise, split_by_spec_id
from lenna.io import write_parquet
from lenna.predictors import fitting
from lenna.predictors import mlp as mlp_module
from lenna.predictors.baselines import fit_constant
from lenna.predictors.fitting import fit_elasticnet
from lenna.predictors.metrics import latency_metrics, spearman
from lenna.predictors.mlp import fit_mlp, fit_mlp_choosing_transform
from lenna.predictors.model import PredictorError, base_output, load_predictor
from lenna.space.genotype import DARTS_V2
from lenna.space.network import Macro
from lenna.space.ops import op_set
from lenna.space.specs import prob_columns, sample_specs, sampling_plan
from lenna.timing.devices import pin_device
from lenna.timing.labels import measure_specs
from test_measure import CPU, FAST
from test_specs import CONFIG

MLP = dict(
    hidden=[32, 32],
    activation="relu",
    lr=0.01,
    epochs=60,
    batch_size=16,
    weight_decay=0.0,
    patience=15,
    seed=0,
)

DISCRETE_SAMPLERS = {"discrete": 0.6, "derived": 0.4}


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """A small real dataset: specs measured on this CPU, merged and split as the workflow does.
    Discrete cells only (drawn one-hot or derived): what these tests ask of a predictor holds for
    any label, and an expected-latency label costs five times a discrete one to time (test_measure.py
    times both)."""
    root = tmp_path_factory.mktemp("predictor-data")
    plan = sampling_plan({**CONFIG, "sampling": {**CONFIG["sampling"], "samplers": DISCRETE_SAMPLERS}})
    specs = sample_specs(plan, seed=21, start=0, stop=90)
    write_parquet(specs, root / "specs.parquet")
    write_parquet(measure_specs(specs, CPU, "cpu", pin_device("cpu", 1), FAST), root / "latency.parquet")
    table, _ = merge_latency([root / "specs.parquet"], [root / "latency.parquet"])
    parts = split_by_spec_id(table, {"train": 0.6, "val": 0.2, "test": 0.2})
    return parts, fit_normaliser(parts["train"], "darts", 4)


def test_metrics_follow_their_definitions():
    m = latency_metrics([1.0, 2.0, 4.0, 10.0], [1.04, 2.15, 4.0, 8.0])
    assert m["within_5pct"] == 0.5 and m["within_10pct"] == 0.75
    assert m["mape"] == pytest.approx((0.04 + 0.075 + 0 + 0.2) / 4)
    assert m["rmse_ms"] == pytest.approx(np.sqrt((0.04**2 + 0.15**2 + 0 + 4) / 4))
    assert m["spearman"] == pytest.approx(1.0) and m["n_test"] == 4


def test_every_model_beats_nothing_less_than_the_constant_on_training_data(splits):
    parts, normaliser = splits
    train = parts["train"]
    constant = fit_constant(train, normaliser)
    assert np.allclose(constant.predict(train), train["latency_ms"].mean())
    enet = fit_elasticnet(train, normaliser, l1_ratio=[0.5, 1.0], cv=3, seed=0)
    rmse = lambda p: latency_metrics(train["latency_ms"], p.predict(train))["rmse_ms"]  # noqa: E731
    assert rmse(enet) < rmse(constant)


def test_mlp_training_is_deterministic_on_cpu(splits):
    parts, normaliser = splits
    a, _ = fit_mlp(parts["train"], parts["val"], normaliser, transform="log", **MLP)
    b, _ = fit_mlp(parts["train"], parts["val"], normaliser, transform="log", **MLP)
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert np.array_equal(a.predict(parts["test"]), b.predict(parts["test"]))


def test_the_transform_is_chosen_by_validation_rmse(splits):
    parts, normaliser = splits
    predictor, _ = fit_mlp_choosing_transform(
        parts["train"], parts["val"], normaliser, ["log", "linear"], **MLP
    )
    selection = predictor.description["transform_selection"]
    scores = {t: s["rmse_ms"] for t, s in selection["validation"].items()}
    assert selection["chosen"] == predictor.description["transform"] == min(scores, key=scores.get)


def test_a_saved_model_gives_identical_predictions_in_a_fresh_process(splits, tmp_path):
    parts, normaliser = splits
    predictor, _ = fit_mlp(parts["train"], parts["val"], normaliser, transform="log", **MLP)
    predictor.save(tmp_path / "mlp")
    write_parquet(parts["test"], tmp_path / "test.parquet")
    here = predictor.predict(parts["test"])
    # Loading and predicting import no torch (the jobs that only predict start 1.5 s sooner).
    code = (
        "import sys, json, pandas as pd; from lenna.predictors.model import load_predictor;"
        "p = load_predictor(sys.argv[1]); t = pd.read_parquet(sys.argv[2]);"
        "print(json.dumps({'pred': p.predict(t).tolist(), 'torch': 'torch' in sys.modules}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "mlp"), str(tmp_path / "test.parquet")],
        capture_output=True,
        text=True,
        check=True,
    )
    fresh = json.loads(out.stdout)
    assert np.array_equal(np.array(fresh["pred"]), here) and not fresh["torch"]
    assert "pickle" not in (tmp_path / "mlp" / "model.json").read_text()


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_the_numpy_and_the_torch_forward_agree_for_every_kind(splits, activation):
    # One forward serves both (model._ops): predictions on numpy arrays, the search's
    # differentiable latency on tensors. Every kind, base and activation, with the floor.
    parts, normaliser = splits
    train, val, test = parts["train"], parts["val"], parts["test"]
    short = {**MLP, "epochs": 3, "activation": activation}
    models = [
        fit_mlp(train, val, normaliser, transform=t, base=b, **short)[0]
        for t, b in (("log", "shape"), ("linear", "ridge"), ("log", "none"))
    ]
    if activation == "relu":
        models += [
            fit_constant(train, normaliser),
            fit_elasticnet(train, normaliser, l1_ratio=[0.5], cv=3, seed=0),
        ]
    x = test[normaliser["features"]].to_numpy(np.float64)
    rng = np.random.default_rng(0)
    n_probs = x.shape[1] - fitting.N_SHAPE
    for model in models:
        # A floor over the median at the first two rows' shapes (the lowest elsewhere), and for
        # the shape base a fitted shape at both: every branch of the forward runs.
        keys = x[:2, : fitting.N_SHAPE]
        model.weights["floor_shapes"] = keys
        model.weights["floor_ms"] = np.full(2, np.median(model.predict(test)))
        if model.base == "shape":
            model.weights["shape_keys"] = keys
            model.weights["shape_coef"] = rng.normal(0, 0.1, (2, n_probs))
            model.weights["shape_intercept"] = rng.normal(0, 0.1, 2)
        on_tensor = model.latency(torch.as_tensor(x)).numpy()
        on_array = model.latency(x)
        assert on_array.dtype == np.float64
        np.testing.assert_allclose(on_array, on_tensor, rtol=1e-12, err_msg=model.kind)
        np.testing.assert_allclose(model.predict(test), on_tensor, rtol=1e-5, err_msg=model.kind)


@pytest.mark.parametrize(
    "damage",
    [
        "missing_weights",
        "corrupt_json",
        "swapped_weights",
        "wrong_layer",
        "missing_base",
        "missing_shapes",
        "kind",
    ],
)
def test_a_corrupted_or_mismatched_model_fails_naming_the_file(splits, tmp_path, damage):
    parts, normaliser = splits
    mlp, _ = fit_mlp(parts["train"], parts["val"], normaliser, transform="log", **MLP)
    mlp.save(tmp_path / "m")
    meta, weights = tmp_path / "m" / "model.json", tmp_path / "m" / "weights.npz"
    if damage == "missing_weights":
        weights.unlink()
        expect = "weights.npz"
    elif damage == "corrupt_json":
        meta.write_text(meta.read_text()[:-40])
        expect = "model.json"
    elif damage == "swapped_weights":
        fit_constant(parts["train"], normaliser).save(tmp_path / "c")
        weights.write_bytes((tmp_path / "c" / "weights.npz").read_bytes())
        expect = "weights.npz"
    elif damage == "missing_base":  # a file that declares a linear base it does not hold
        fit_mlp(parts["train"], parts["val"], normaliser, transform="log", base="none", **MLP)[0].save(
            tmp_path / "m"
        )
        desc = json.loads(meta.read_text())
        assert desc["architecture"]["base"] == "none" and "base_coef" not in np.load(weights).files
        desc["architecture"]["base"] = "ridge"
        meta.write_text(json.dumps(desc))
        expect = "model.json: weight 'base_coef' is missing"
    elif damage == "missing_shapes":  # declares the shape base, holds only its ridge part
        fit_mlp(parts["train"], parts["val"], normaliser, transform="log", base="ridge", **MLP)[0].save(
            tmp_path / "m"
        )
        desc = json.loads(meta.read_text())
        desc["architecture"]["base"] = "shape"
        meta.write_text(json.dumps(desc))
        expect = "model.json: weight 'shape_keys' is missing"
    elif damage == "wrong_layer":
        desc = json.loads(meta.read_text())
        desc["architecture"]["hidden"] = [32, 16]
        meta.write_text(json.dumps(desc))
        expect = "model.json"
    else:
        desc = json.loads(meta.read_text())
        desc["kind"] = "transformer"
        meta.write_text(json.dumps(desc))
        expect = "model.json"
    with pytest.raises(PredictorError, match=expect):
        load_predictor(tmp_path / "m")


def test_expected_cells_latency_is_differentiable_in_the_alphas(splits):
    parts, normaliser = splits
    predictor, _ = fit_mlp(parts["train"], parts["val"], normaliser, transform="log", **MLP)
    alpha_normal = (1e-3 * torch.randn(14, 8, dtype=torch.float64)).requires_grad_()
    alpha_reduce = (1e-3 * torch.randn(14, 8, dtype=torch.float64)).requires_grad_()
    macro = Macro(init_channels=4, layers=5, input_size=8, input_channels=1)
    latency = predictor.expected_cells_latency(alpha_normal, alpha_reduce, macro, batch_size=1)
    latency.backward()
    assert latency.item() > 0
    assert torch.isfinite(alpha_normal.grad).all() and alpha_normal.grad.abs().sum() > 0
    assert torch.isfinite(alpha_reduce.grad).all() and alpha_reduce.grad.abs().sum() > 0


def test_a_genotype_is_predicted_as_the_sum_of_its_cells(splits):
    parts, normaliser = splits
    predictor = fit_elasticnet(parts["train"], normaliser, l1_ratio=[0.5], cv=3, seed=0)
    macro = Macro(init_channels=4, layers=5, input_size=8, input_channels=1)
    total = predictor.predict_cells(DARTS_V2, macro, batch_size=1)
    shapes = DARTS_V2.cell_shapes(macro)
    rows = []
    for s in shapes:
        probs = predictor.genotype_probs(DARTS_V2, s.reduction)
        rows.append([*[float(getattr(s, c)) for c in predictor.features[:7]], 1.0, *probs.ravel()])
    assert total == pytest.approx(predictor.predict_features(np.array(rows)).sum())
    assert predictor.genotype_probs(DARTS_V2, False).sum() == 14  # one op (or none) per edge


def test_predictions_are_vectorised_over_many_specs(splits):
    parts, normaliser = splits
    mlp, _ = fit_mlp(parts["train"], parts["val"], normaliser, transform="log", **MLP)
    x = np.repeat(parts["test"][mlp.features].to_numpy(np.float64), 500, axis=0)
    out = mlp.predict_features(x)
    assert out.shape == (len(x),) and np.isfinite(out).all()


def test_a_transform_the_mlp_cannot_fit_is_left_out_and_recorded(splits, monkeypatch):
    # The tiny NAS-Bench-201 run once overflowed the log transform's exponential on its 7
    # validation specs in every epoch; the linear one fitted. That failure is fit_mlp's own error.
    parts, normaliser = splits
    real = mlp_module.fit_mlp

    def log_overflows(train, val, normaliser, transform, **kwargs):
        if transform == "log":
            raise ValueError("the MLP has no finite validation RMSE to keep a model by (7 validation specs)")
        return real(train, val, normaliser, transform=transform, **kwargs)

    monkeypatch.setattr(mlp_module, "fit_mlp", log_overflows)
    train, val = parts["train"], parts["val"]
    predictor, _ = fit_mlp_choosing_transform(train, val, normaliser, ["log", "linear"], **MLP)
    selection = predictor.description["transform_selection"]
    assert selection["chosen"] == "linear" and set(selection["failed"]) == {"log"}
    with pytest.raises(ValueError, match=r"no transform of \['log'\] could be fitted"):
        fit_mlp_choosing_transform(train, val, normaliser, ["log"], **MLP)


def additive_cells(n: int, seed: int) -> pd.DataFrame:
    """``n`` specs of the default sampling with a synthetic label, an exact additive law of their
    op probabilities (a cost per op and edge): what a linear model recovers. Nothing is timed."""
    table = sample_specs(sampling_plan(CONFIG), seed=seed, start=0, stop=n).copy()
    probs = prob_columns(op_set("darts"), 4)
    cost = np.random.default_rng(seed).uniform(0.0, 0.2, len(probs))
    table = table.assign(latency_ms=0.1 + table[probs].to_numpy() @ cost, batch_size=1)
    return table.sort_values("latency_ms").reset_index(drop=True)


def test_the_mlps_linear_base_extends_an_additive_law_to_cells_cheaper_than_any_it_trained_on():
    # A latency-aware search ends in cells of cheap ops, rarer in the random training specs than
    # any other: an MLP alone predicts them near its training data; with the ridge base (the
    # default) it follows the law it learned of op costs.
    table = additive_cells(400, seed=3)
    cheap, rest = table.iloc[:20], table.iloc[20:]
    train, val = rest.drop(index=rest.index[::4]), rest.loc[rest.index[::4]]
    normaliser = fit_normaliser(train, "darts", 4)
    errors = {}
    for base in ("ridge", "none"):
        predictor, _ = fit_mlp(train, val, normaliser, transform="linear", base=base, **MLP)
        assert predictor.description["architecture"]["base"] == base
        errors[base] = latency_metrics(cheap["latency_ms"], predictor.predict(cheap))["mape"]
    assert errors["ridge"] < 0.02 and errors["none"] > 5 * errors["ridge"], errors


def shaped_cells(n: int, seed: int) -> pd.DataFrame:
    """``n`` specs of the default sampling at two cell shapes with a synthetic label: per shape
    its own cost per op (the convolutions 5x dearer at the larger shape, the rest alike), as cells
    on a device cost, summed over the edges. Nothing is timed."""
    table = sample_specs(sampling_plan(CONFIG), seed=seed, start=0, stop=n).copy()
    ops = op_set("darts")
    probs = table[prob_columns(ops, 4)].to_numpy().reshape(n, -1, len(ops)).sum(axis=1)  # op counts
    cost = np.random.default_rng(seed).uniform(0.01, 0.05, len(ops))
    big = np.arange(n) % 2 == 1
    dear = np.where([op.endswith(("conv_3x3", "conv_5x5")) for op in ops], 5.0, 1.0)
    table = table.assign(
        reduction=False, reduction_prev=False, c_prev_prev=16, c_prev=16, c=16, height=np.where(big, 16, 8)
    )
    table["width"] = table["height"]
    label = np.where(big, 0.2 + probs @ (cost * dear), 0.1 + probs @ cost)
    return table.assign(latency_ms=label, batch_size=1)


def test_the_shape_base_learns_each_shapes_op_costs_and_falls_back_on_ridge_at_a_new_shape():
    # Op costs do not scale alike from one cell shape to the next (a convolution's grows with
    # channels and pixels, a skip's hardly). One linear law over shape and probability features
    # cannot hold both shapes; a law of op counts per shape (what a lookup table holds, fitted on
    # the cells) can, and the MLP is left only the residual.
    table = shaped_cells(320, seed=4)
    train, val, test = table.iloc[:200], table.iloc[200:260], table.iloc[260:]
    normaliser = fit_normaliser(train, "darts", 4)
    errors = {}
    for base in ("shape", "ridge"):
        predictor, _ = fit_mlp(train, val, normaliser, transform="linear", base=base, **MLP)
        errors[base] = latency_metrics(test["latency_ms"], predictor.predict(test))["mape"]
        if base == "shape":
            assert predictor.weights["shape_keys"].shape == (2, fitting.N_SHAPE)
            shape_mlp = predictor
    assert errors["shape"] < 0.01 and errors["ridge"] > 3 * errors["shape"], errors
    # At a shape no training cell had, the base is its ridge part alone, not an error.
    x = test[normaliser["features"]].to_numpy(np.float64)
    x[:, normaliser["features"].index("height")] = 4.0
    z = torch.as_tensor(normalise(pd.DataFrame(x, columns=normaliser["features"]), normaliser))
    x = torch.as_tensor(x)
    both = [base_output(b, shape_mlp.weights, x, z) for b in ("shape", "ridge")]
    assert torch.equal(both[0], both[1]) and np.isfinite(shape_mlp.predict_features(x.numpy())).all()


def test_an_unknown_mlp_base_is_an_error_naming_the_key(splits):
    parts, normaliser = splits
    with pytest.raises(ValueError, match=r"predictors\.mlp\.base: 'quadratic'"):
        fit_mlp(parts["train"], parts["val"], normaliser, transform="log", base="quadratic", **MLP)


def empty_cells(table: pd.DataFrame, latency_ms: float) -> pd.DataFrame:
    """One cell of no op (every edge ``none``) at each shape of ``table``, labelled ``latency_ms``."""
    probs = prob_columns(op_set("darts"), 4)
    cells = table.drop_duplicates(["c", "height", "reduction"]).copy()
    cells[probs] = [[1.0 if name.endswith("_none") else 0.0 for name in probs]] * len(cells)
    return cells.assign(latency_ms=latency_ms)


def test_no_cell_is_predicted_faster_than_the_cell_of_no_op_timed_at_its_shape(tmp_path):
    # A cell of no op is the cheapest at its shape (every op only adds work); a learned model can
    # still go below it (the additive law here, with none free, puts it at 0.1 ms): the floor
    # raises it.
    table = additive_cells(300, seed=4)
    probs = prob_columns(op_set("darts"), 4)
    cost = np.random.default_rng(4).uniform(0.0, 0.2, len(probs)) * [not p.endswith("_none") for p in probs]
    table["latency_ms"] = 0.1 + table[probs].to_numpy() @ cost
    empty = empty_cells(table, 0.3)
    train = pd.concat([table, empty.iloc[1:]], ignore_index=True)  # one shape without a floor
    normaliser = fit_normaliser(train, "darts", 4)
    predictor = fit_elasticnet(train, normaliser, l1_ratio=[0.5], cv=3, seed=0)
    assert predictor.description["floor"]["n_shapes"] == len(empty) - 1
    predictor.save(tmp_path / "m")
    loaded = load_predictor(tmp_path / "m")
    assert loaded.predict(empty[1:]) == pytest.approx(0.3)
    assert loaded.predict(empty[:1])[0] == pytest.approx(0.3)  # the lowest floor, at a shape without one
    unfloored = {k: v for k, v in loaded.weights.items() if not k.startswith("floor")}
    assert (type(loaded)(loaded.description, unfloored).predict(empty) < 0.29).all()
    assert latency_metrics(table["latency_ms"], loaded.predict(table))["mape"] < 0.05  # the rest unchanged


def test_a_training_table_without_cells_of_no_op_gives_no_floor(splits):
    parts, normaliser = splits
    predictor = fit_elasticnet(parts["train"], normaliser, l1_ratio=[0.5], cv=3, seed=0)
    assert "floor" not in predictor.description and "floor_ms" not in predictor.weights


def test_spearman_is_scipys_with_ties_and_nan_where_an_input_is_constant():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 200):
        for k in range(20):
            a = rng.integers(0, 4, n).astype(float)  # ties
            b = rng.normal(size=n) if k % 2 else rng.integers(0, 3, n).astype(float)
            if np.ptp(a) > 0 and np.ptp(b) > 0:
                assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert np.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])) and np.isnan(spearman([1.0], [2.0]))
    assert spearman([1, 2, 3, 4], [10, 20, 30, 5]) == pytest.approx(-0.2)  # ranks 1-4 against 2, 3, 4, 1
