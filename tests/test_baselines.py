import numpy as np
import pandas as pd
import pytest
import torch

from lenna.datasets import feature_columns, import_external_table
from lenna.io import DataError
from lenna.predictors.baselines import count_part, fit_flops, fit_lut
from lenna.predictors.model import shape_vector
from lenna.space.cell import CellShape
from lenna.space.ops import OP_SETS
from lenna.space.parts import LUT_COLUMNS, all_parts, cell_parts
from lenna.timing.devices import pin_device
from lenna.timing.parts import measure_lut
from test_measure import CPU, FAST

OPS = OP_SETS["darts"]
SHAPES = [CellShape(False, False, 12, 12, 4, 8, 8), CellShape(True, False, 16, 16, 8, 8, 8)]
NORMALISER = {"op_set": "darts", "steps": 4, "features": feature_columns("darts", 4), "mean": [], "std": []}


def _row(shape, probs):
    return np.array([*shape_vector(shape, 1), *probs.ravel()])


def test_reduction_cells_stride_only_on_edges_from_the_inputs():
    pre, edges = cell_parts(SHAPES[1], OPS, 4)
    assert pre == [("preprocess", 16, 8, 8, 1), ("preprocess", 16, 8, 8, 1)]
    sep = OPS.index("sep_conv_3x3")
    assert edges[0][sep] == ("sep_conv_3x3", 8, 8, 8, 2)  # node 0 from input 0
    assert edges[4][sep] == ("sep_conv_3x3", 8, 8, 4, 1)  # node 1 from node 0, at half size
    assert edges[0][OPS.index("none")] is None


def test_flops_of_a_preprocessing_conv_are_its_multiply_adds():
    mflops, params = count_part(("preprocess", 16, 8, 8, 1))
    conv = 16 * 8 * 8 * 8  # c_in * c_out * h * w
    relu, bn = 16 * 8 * 8, 8 * 8 * 8
    assert mflops == pytest.approx((conv + relu + bn) / 1e6)
    assert params == 16 * 8 + 2 * 8


def test_the_lookup_table_predicts_the_sum_of_the_parts_a_cell_runs():
    parts = all_parts(SHAPES, OPS, 4)
    lut = measure_lut(parts, CPU, pin_device("cpu", 1), FAST)
    assert list(lut.columns) == LUT_COLUMNS and (lut["latency_ms"] > 0).all()
    predictor = fit_lut(lut, [(s, 1) for s in SHAPES], NORMALISER)
    cost = {tuple(r[:5]): r[6] for r in lut.itertuples(index=False, name=None)}
    probs = np.zeros((14, len(OPS)))
    probs[:, OPS.index("skip_connect")] = 0.5
    probs[:, OPS.index("none")] = 0.5
    pre, edges = cell_parts(SHAPES[0], OPS, 4)
    expected = sum(cost[p] for p in pre) + sum(0.5 * cost[e[OPS.index("skip_connect")]] for e in edges)
    assert predictor.predict_features(_row(SHAPES[0], probs)[None])[0] == pytest.approx(expected)
    # The search's forward on tensors gives what the numpy one predicts (model._ops).
    rows = np.stack([_row(s, probs) for s in SHAPES])
    np.testing.assert_allclose(
        predictor.latency(torch.as_tensor(rows)).numpy(), predictor.latency(rows), rtol=1e-12
    )
    unknown = CellShape(False, False, 24, 24, 8, 8, 8)
    for forward in (predictor.predict_features, lambda x: predictor.latency(torch.as_tensor(x))):
        with pytest.raises(ValueError, match="no table entry"):
            forward(_row(unknown, probs)[None])


def test_the_flops_model_is_a_least_squares_fit_on_expected_flops():
    rng = np.random.default_rng(0)
    rows = [_row(SHAPES[i % 2], rng.dirichlet(np.ones(len(OPS)), size=14)) for i in range(40)]
    train = pd.DataFrame(rows, columns=NORMALISER["features"])
    predictor = fit_flops(train.assign(latency_ms=1.0), [(s, 1) for s in SHAPES], NORMALISER)
    mflops = predictor.weights["base"][:, 0]
    assert mflops[1] > 0 and predictor.description["quantities"] == ["mflops", "params"]
    # A label that is exactly affine in the expected FLOPs is recovered exactly.
    quantities = predictor.weights["base"][[i % 2 for i in range(40)]] + np.einsum(
        "nqf,nf->nq", predictor.weights["coef"][[i % 2 for i in range(40)]], train.to_numpy()[:, 8:]
    )
    exact = fit_flops(
        train.assign(latency_ms=0.5 + 2.0 * quantities[:, 0]), [(s, 1) for s in SHAPES], NORMALISER
    )
    assert exact.predict(train) == pytest.approx(0.5 + 2.0 * quantities[:, 0])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.assign(battery_temp=1.0), "unknown column.*battery_temp"),
        (lambda t: t.drop(columns="c_prev"), "missing column.*c_prev"),
        (lambda t: t.assign(latency_ms=-t["latency_ms"]), "positive"),
        (lambda t: t.assign(e00_none=t["e00_none"] + 0.5), "sum to 1"),
        (lambda t: pd.concat([t, t.iloc[:1]]), "duplicate spec_id"),
    ],
)
def test_a_bad_external_table_is_rejected_naming_file_and_problem(tmp_path, change, message):
    probs = np.zeros((3, 14, len(OPS)))
    probs[:, :, 0] = 1.0
    probs[1, 0] = 0.0
    probs[1, 0, 3] = 1.0
    probs[2, 1] = 0.0
    probs[2, 1, 4] = 1.0
    rows = [_row(SHAPES[0], p) for p in probs]
    table = pd.DataFrame(rows, columns=NORMALISER["features"]).assign(latency_ms=[1.0, 2.0, 3.0])
    table.to_csv(tmp_path / "good.csv", index=False)
    good, summary = import_external_table(tmp_path / "good.csv", "darts", 4)
    assert summary["n_ok"] == 3 and set(good["label_kind"]) == {"discrete"} and good["spec_id"].is_unique
    change(table).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=f"bad.csv.*{message}"):
        import_external_table(tmp_path / "bad.csv", "darts", 4)
