"""The latency-aware DARTS search, its data, the final training and the Pareto summary."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from lenna.datasets import feature_columns
from lenna.predictors.model import LatencyPredictor
from lenna.search.architect import SecondOrder, latency_term
from lenna.search.final import FinalSettings, train_final
from lenna.search.images import DatasetError, _stratified_parts, load_cifar10, load_data, load_digits
from lenna.search.loop import run_search
from lenna.search.pareto import headline, on_front, pareto_table
from lenna.search.settings import SearchSettings
from lenna.search.supernet import SuperNet, alpha_table, derive_cell, derive_genotype
from lenna.space.build import build_cell
from lenna.space.cell import edge_list
from lenna.space.genotype import Genotype
from lenna.space.network import Macro
from lenna.space.ops import op_set

OPS = op_set("darts")
STEPS = 4
EDGES = edge_list(STEPS)
TINY_MACRO = Macro(4, 3, 8, input_channels=1, num_classes=10)
# A known cost per op (ms per edge): convolutions expensive, pools and skips cheap, none free.
OP_COST = {
    "none": 0.0,
    "max_pool_3x3": 0.1,
    "avg_pool_3x3": 0.1,
    "skip_connect": 0.05,
    "sep_conv_3x3": 1.0,
    "sep_conv_5x5": 1.2,
    "dil_conv_3x3": 0.6,
    "dil_conv_5x5": 0.7,
}


def cost_predictor() -> LatencyPredictor:
    """A linear predictor whose cell latency is 0.5 ms + the sum of its edges' expected op costs."""
    features = feature_columns("darts", STEPS)
    coef = np.array(
        [OP_COST[f.split("_", 1)[1]] if f.startswith("e") and f[1].isdigit() else 0.0 for f in features]
    )
    n = len(features)
    description = {
        "kind": "linear",
        "op_set": "darts",
        "steps": STEPS,
        "features": features,
        "transform": "linear",
        "label": {"mean": 0.0, "std": 1.0},
    }
    weights = {"coef": coef, "intercept": np.array([0.5]), "mean": np.zeros(n), "std": np.ones(n)}
    return LatencyPredictor(description, weights)


def alpha_from(table: dict[tuple[int, str], float]) -> torch.Tensor:
    alpha = torch.zeros(len(EDGES), len(OPS))
    for (k, op), value in table.items():
        alpha[k, OPS.index(op)] = value
    return alpha


# -- derivation -----------------------------------------------------------------------------------


def test_derivation_keeps_two_strongest_edges_per_node_and_never_none():
    table = {(k, "none"): 10.0 for k in range(len(EDGES))}  # none dominates everywhere: still never chosen
    # node 0 (edges 0, 1): both kept; node 1 (edges 2, 3, 4): edges 2 and 4 strongest
    table |= {(0, "sep_conv_3x3"): 3.0, (1, "max_pool_3x3"): 2.0}
    table |= {(2, "dil_conv_5x5"): 4.0, (3, "avg_pool_3x3"): 1.0, (4, "sep_conv_5x5"): 3.5}
    pairs = derive_cell(alpha_from(table), OPS, STEPS)
    assert len(pairs) == 2 * STEPS
    assert pairs[:4] == (("sep_conv_3x3", 0), ("max_pool_3x3", 1), ("dil_conv_5x5", 0), ("sep_conv_5x5", 2))
    assert all(op != "none" for op, _ in pairs)
    Genotype(normal=pairs, normal_concat=(2, 3, 4, 5), reduce=pairs, reduce_concat=(2, 3, 4, 5))


def test_skip_cap_replaces_the_weakest_skips():
    # Every edge prefers skip_connect, with strength growing with the edge index.
    table = {(k, "skip_connect"): 2.0 + 0.1 * k for k in range(len(EDGES))}
    table |= {(k, "sep_conv_3x3"): 1.0 for k in range(len(EDGES))}
    alpha = alpha_from(table)
    uncapped = derive_cell(alpha, OPS, STEPS)
    capped = derive_cell(alpha, OPS, STEPS, max_skip=2)
    assert sum(op == "skip_connect" for op, _ in uncapped) == 8
    assert sum(op == "skip_connect" for op, _ in capped) == 2
    # the two skips kept are the strongest ones: on the last node's strongest edges
    assert [p for p in capped if p[0] == "skip_connect"] == [p for p in uncapped[-2:]]


class _GpuTensor(torch.Tensor):
    """Stands in for a tensor on a GPU, on a machine without one: numpy cannot read it, as it
    cannot read a CUDA tensor, until it is copied to the host with ``.cpu()``."""

    def numpy(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy")

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor)


def test_a_supernet_on_a_gpu_derives_its_genotype_and_alpha_table():
    # The GPU run's searches failed here: the derivation read the alphas with numpy where they
    # live, on the GPU.
    alpha = torch.randn(len(EDGES), len(OPS), generator=torch.Generator().manual_seed(0))
    on_gpu = torch.nn.Parameter(alpha.clone()).as_subclass(_GpuTensor)
    with pytest.raises(TypeError, match="cuda"):
        on_gpu.numpy()
    assert derive_cell(on_gpu, OPS, STEPS) == derive_cell(alpha, OPS, STEPS)
    net = SuperNet(TINY_MACRO, OPS, STEPS, torch.Generator().manual_seed(0))
    host = {"normal": alpha, "reduce": alpha.flip(0)}
    for name, value in host.items():
        net._parameters[f"alpha_{name}"] = torch.nn.Parameter(value.clone()).as_subclass(_GpuTensor)
    genotype = derive_genotype(net, max_skip_normal=2)
    assert genotype.normal == derive_cell(host["normal"], OPS, STEPS, max_skip=2)
    assert genotype.reduce == derive_cell(host["reduce"], OPS, STEPS)
    table = alpha_table(net)
    assert table["normal_e00_none"] == pytest.approx(float(torch.softmax(alpha[0], -1)[0]))


# -- latency term ---------------------------------------------------------------------------------


def test_latency_term_forms():
    ce, lat = torch.tensor(0.5), torch.tensor(12.0)
    assert float(latency_term("additive", 0.1, lat, 10.0, ce)) == pytest.approx(0.5 + 1.2)
    assert float(latency_term("relative", 2.0, lat, 10.0, ce)) == pytest.approx(0.5 + 2.0 * 0.2)
    expected = 0.5 * (np.log(12.0) / np.log(10.0)) ** 0.6
    assert float(latency_term("mul_log", 0.6, lat, 10.0, ce)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="above 1 ms"):
        latency_term("mul_log", 0.6, lat, 0.8, ce)


def test_expected_latency_is_differentiable_and_points_to_cheap_ops():
    predictor = cost_predictor()
    net = SuperNet(TINY_MACRO, OPS, STEPS, torch.Generator().manual_seed(0))
    lat = predictor.expected_cells_latency(net.alpha_normal, net.alpha_reduce, TINY_MACRO, 1)
    lat.backward()
    grad = net.alpha_normal.grad
    # raising the alpha of an expensive op raises the latency, of none lowers it
    assert (grad[:, OPS.index("sep_conv_5x5")] > 0).all()
    assert (grad[:, OPS.index("none")] < 0).all()


@pytest.fixture(scope="module")
def digits_small():
    return load_data(
        {"dataset": "digits", "split": {"train": 0.6, "val": 0.1, "test": 0.3}, "seed": 0, "limit": 128}
    )


def _search(data, lam, **settings):
    predictor = cost_predictor()
    defaults = {"epochs": 3, "warmup_epochs": 1, "batch_size": 32, "alpha_lr": 0.05}
    return run_search(
        data,
        TINY_MACRO,
        OPS,
        STEPS,
        SearchSettings(**(defaults | settings)),
        lam,
        seed=0,
        expected_latency=lambda a, b: predictor.expected_cells_latency(a, b, TINY_MACRO, 1),
        genotype_latency=lambda g: predictor.predict_cells(g, TINY_MACRO, 1),
    )


def test_search_with_a_latency_term_finds_faster_cells_than_plain_darts(digits_small):
    torch.set_num_threads(1)
    _, plain, _ = _search(digits_small, 0.0)
    genotype, aware, summary = _search(digits_small, 3.0)
    assert len(aware) == 3 and not aware["alpha_updates"][0] and aware["alpha_updates"][2]
    # warm-up epochs leave the alphas (and so the expected latency) untouched
    assert aware["expected_latency_ms"][0] == pytest.approx(summary["reference_latency_ms"])
    assert aware["expected_latency_ms"].iloc[-1] < 0.9 * plain["expected_latency_ms"].iloc[-1]
    assert aware["genotype_latency_ms"].iloc[-1] < plain["genotype_latency_ms"].iloc[-1]
    assert Genotype.parse(aware["genotype"].iloc[-1]) == genotype
    columns = {"train_loss", "train_acc", "arch_loss", "arch_acc", "skip_normal", "normal_e00_none"}
    assert columns <= set(aware.columns)
    # a DARTS cell never holds none: its argmax is never disconnected
    assert not aware["argmax_disconnected"].any() and summary["argmax_disconnected_epochs"] == 0
    # the history's alpha columns are probabilities
    probs = aware[[c for c in aware.columns if c.startswith("normal_e03_")]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_second_order_gradient_reduces_to_first_order_at_zero_step(digits_small):
    torch.manual_seed(0)
    net = SuperNet(TINY_MACRO, OPS, STEPS, torch.Generator().manual_seed(1))
    net.train()
    x_w, y_w = digits_small.train.x[:16], digits_small.train.y[:16]
    x_a, y_a = digits_small.train.x[16:32], digits_small.train.y[16:32]
    SecondOrder(net).grads(0.0, 0.0, x_w, y_w, x_a, y_a)
    second = [a.grad.clone() for a in net.alphas()]
    for a in net.alphas():
        a.grad = None
    torch.nn.functional.cross_entropy(net(x_a), y_a).backward(inputs=net.alphas())
    for s, a in zip(second, net.alphas(), strict=True):
        assert torch.allclose(s, a.grad, atol=1e-6)
    # with a real step the unrolled gradient differs
    SecondOrder(net).grads(0.1, 3e-4, x_w, y_w, x_a, y_a)
    assert not torch.allclose(second[0], net.alpha_normal.grad, atol=1e-6)


def test_digits_are_scikit_learns_read_without_importing_it():
    code = (
        "import sys, json; from lenna.search.images import digits_arrays; x, y = digits_arrays();"
        "print(json.dumps([x.tolist(), y.tolist(), 'sklearn' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    images, target, imported = json.loads(out.stdout)
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    assert not imported and np.array_equal(images, bunch.images) and np.array_equal(target, bunch.target)


def test_second_order_search_runs(digits_small):
    genotype, history, _ = _search(digits_small, 1.0, epochs=2, order="second")
    assert len(history) == 2 and np.isfinite(history["arch_loss"].iloc[-1])


# -- data -----------------------------------------------------------------------------------------


def test_digits_split_is_stratified_disjoint_and_deterministic():
    a = load_digits({"train": 0.6, "val": 0.1, "test": 0.3}, 0)
    b = load_digits({"train": 0.6, "val": 0.1, "test": 0.3}, 0)
    assert sum(a.sizes().values()) == 1797 and a.sizes()["test"] == pytest.approx(539, abs=5)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.train.y, b.train.y)
    y = np.repeat(np.arange(10), 50)
    parts = _stratified_parts(y, {"train": 0.6, "val": 0.1, "test": 0.3}, 0)
    index = np.concatenate(list(parts.values()))
    assert len(index) == len(set(index)) == 500  # disjoint and complete
    counts = np.bincount(a.test.y.numpy(), minlength=10)
    assert counts.min() >= 50  # every class in the test part, in proportion
    assert a.train.x.shape[1:] == (1, 8, 8) and abs(float(a.train.x.mean())) < 1e-4


def _cifar_dir(path, n=20, bad=None):
    path.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": [int(i) for i in rng.integers(0, 10, n)],
        }
        with open(path / name, "wb") as f:
            pickle.dump(batch, f)
    return path


def test_cifar10_python_batches_are_read(tmp_path):
    data = load_cifar10(_cifar_dir(tmp_path / "cifar"), {"train": 0.6, "val": 0.1, "test": 0.3}, 0)
    assert data.test.x.shape == (20, 3, 32, 32) and len(data.train) + len(data.val) == 100
    assert data.train.x.dtype == torch.float32 and data.train.y.dtype == torch.int64


def test_cifar10_missing_or_malformed_is_a_clear_error(tmp_path):
    split = {"train": 0.6, "val": 0.1, "test": 0.3}
    with pytest.raises(DatasetError, match="no such CIFAR-10 directory"):
        load_cifar10(tmp_path / "nowhere", split, 0)
    root = _cifar_dir(tmp_path / "cifar")
    (root / "data_batch_3").unlink()
    with pytest.raises(DatasetError, match="data_batch_3: missing"):
        load_cifar10(root, split, 0)
    (root / "data_batch_3").write_text("not a pickle")
    with pytest.raises(DatasetError, match="data_batch_3: not a CIFAR-10 python batch"):
        load_cifar10(root, split, 0)
    with open(root / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}, f)
    with pytest.raises(DatasetError, match=r"data_batch_3: data of shape \(4, 100\)"):
        load_cifar10(root, split, 0)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar10_batches_cannot_run_code(tmp_path):
    root = _cifar_dir(tmp_path / "cifar")
    with open(root / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": []}, f)
    with pytest.raises(DatasetError, match="refusing to load builtins.print"):
        load_cifar10(root, {"train": 0.6, "val": 0.1, "test": 0.3}, 0)


# -- final training -------------------------------------------------------------------------------


def test_final_training_learns_and_is_seeded():
    torch.set_num_threads(1)
    data = load_data(
        {"dataset": "digits", "split": {"train": 0.6, "val": 0.1, "test": 0.3}, "seed": 0, "limit": 300}
    )
    from lenna.space.genotype import DARTS_V2

    settings = FinalSettings(epochs=4, batch_size=32, lr=0.05)
    history, metrics = train_final(DARTS_V2, TINY_MACRO, data, settings, seed=3)
    assert metrics["test_accuracy"] > 0.5  # chance is 0.1
    assert metrics["n_test"] == 300 and len(history) == 4
    _, again = train_final(DARTS_V2, TINY_MACRO, data, settings, seed=3)
    assert again["test_accuracy"] == metrics["test_accuracy"]


def test_cutout_zeroes_one_square_per_image_clipped_at_the_border():
    from lenna.search.final import cutout

    x = torch.ones(200, 1, 8, 8)
    out = cutout(x, 4, torch.Generator().manual_seed(0))
    zeros = (out == 0).sum(dim=(1, 2, 3))
    assert zeros.max() == 16 and zeros.min() >= 4  # 4x4, or a corner of it at the border
    assert ((out == 0) | (out == 1)).all() and out.shape == x.shape


def test_drop_path_acts_in_training_only_and_never_on_identity_edges():
    from lenna.search.final import set_drop_path
    from lenna.space.nb201 import Arch, cell_shape

    skips = Arch.parse(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    )
    convs = Arch.parse(
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|"
    )
    x = torch.randn(16, 4, 8, 8)
    for arch, dropped in ((skips, False), (convs, True)):
        cell = build_cell(arch, cell_shape(4, 8))
        set_drop_path(cell, 0.5)
        assert cell.drop_prob == 0.5
        cell.eval()
        with torch.no_grad():
            assert torch.equal(cell(x), cell(x))  # eval: nothing dropped
        cell.train()
        torch.manual_seed(0)
        with torch.no_grad():
            assert torch.equal(cell(x), cell(x)) is not dropped, arch


@pytest.mark.parametrize("space", ["darts", "nb201"])
def test_the_darts_recipe_trains_with_cutout_drop_path_and_an_auxiliary_head(space):
    from lenna.search.final import AuxiliaryHead
    from lenna.space.genotype import DARTS_V2
    from lenna.space.nb201 import Arch

    torch.set_num_threads(1)
    data = load_data(
        {"dataset": "digits", "split": {"train": 0.6, "val": 0.1, "test": 0.3}, "seed": 0, "limit": 200}
    )
    if space == "darts":
        arch, macro = DARTS_V2, TINY_MACRO
    else:
        arch = Arch.parse(
            "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|skip_connect~1|avg_pool_3x3~2|"
        )
        macro = Macro(4, 1, 8, input_channels=1, num_classes=10, stem_multiplier=1)
    plain = FinalSettings(epochs=2, batch_size=32, lr=0.05)
    recipe = FinalSettings(epochs=2, batch_size=32, lr=0.05, cutout=4, drop_path=0.3, auxiliary_weight=0.4)
    _, base = train_final(arch, macro, data, plain, seed=1)
    history, metrics = train_final(arch, macro, data, recipe, seed=1)
    assert metrics["settings"]["auxiliary_weight"] == 0.4 and len(history) == 2
    assert metrics["parameters"] == base["parameters"]  # the head is not part of the network
    assert metrics["test_accuracy"] != base["test_accuracy"] or history["train_loss"].iloc[0] != 0
    assert np.isfinite(history["train_loss"]).all()
    head = AuxiliaryHead(16, 10)
    assert head(torch.randn(3, 16, 2, 2)).shape == (3, 10) and head(torch.randn(3, 16, 5, 5)).shape == (3, 10)


# -- Pareto ---------------------------------------------------------------------------------------


def test_pareto_front_and_headline():
    assert on_front([0.9, 0.95, 0.95, 0.8], [5.0, 6.0, 7.0, 5.0]).tolist() == [True, True, False, False]
    rows = []
    for seed, noise in enumerate([0.0, 0.002]):
        for lam, acc, lat in [(0.0, 0.980, 10.0), (0.1, 0.978, 8.0), (1.0, 0.976, 6.0), (3.0, 0.95, 3.0)]:
            rows.append(
                {
                    "model": "mlp",
                    "lambda": lam,
                    "seed": seed,
                    "test_accuracy": acc + noise,
                    "latency_ms": lat + seed,
                    "predicted_latency_ms": lat,
                }
            )
    table = pareto_table(rows)
    assert list(table.columns[:7]) == [
        "model",
        "lambda",
        "seed",
        "test_accuracy",
        "latency_ms",
        "predicted_latency_ms",
        "on_front",
    ]
    summary = headline(table)["mlp"]
    # lambda 1 is 0.5 points below the baseline (within), lambda 3 is 3 points below (not)
    assert summary["best"]["lambda"] == 1.0
    assert summary["best"]["latency_ratio"] == pytest.approx(6.5 / 10.5)
    assert summary["fastest"]["lambda"] == 3.0
    assert summary["spearman_lambda_latency"] == pytest.approx(-1.0)
    assert isinstance(pd.DataFrame(summary["sweep"]), pd.DataFrame)
    # paired by seed: lambda 1 is 0.4 points below lambda 0 on both seeds, a spread of 0
    assert summary["best"]["accuracy_change_points"] == pytest.approx(-0.4)
    assert summary["best"]["paired_seeds"] == 2 and summary["best"]["change_sd_points"] == pytest.approx(0)
    assert summary["best"]["beyond_seed_noise"] is True


def test_an_accuracy_change_within_the_seed_spread_is_called_noise():
    from lenna.report.summary import to_markdown

    rows = [
        {
            "model": "mlp",
            "lambda": lam,
            "seed": seed,
            "test_accuracy": acc,
            "latency_ms": lat,
            "predicted_latency_ms": lat,
        }
        for seed, lam, acc, lat in [
            (0, 0.0, 0.980, 10.0),
            (1, 0.0, 0.970, 10.0),
            (2, 0.0, 0.975, 10.0),
            (0, 0.1, 0.972, 6.0),
            (1, 0.1, 0.978, 6.0),
            (2, 0.1, 0.974, 6.0),
        ]
    ]
    summary = headline(pareto_table(rows))
    best = summary["mlp"]["best"]
    # differences -0.8, +0.8, -0.1 points: mean -0.03, spread 0.80
    assert best["lambda"] == 0.1 and best["paired_seeds"] == 3
    assert best["change_sd_points"] == pytest.approx(0.8021, abs=1e-3)
    assert best["beyond_seed_noise"] is False
    comparison = pd.DataFrame(
        [{"model": "mlp", "rmse_ms": 0.1, "median_ape": 0.02, "within_10pct": 0.9, "spearman": 0.99}]
    )
    text = to_markdown({"cpu": comparison}, {"cpu": {"models": summary}})
    assert "within seed noise" in text and "paired over 3 seeds" in text


def test_a_degenerate_network_is_flagged_with_its_reason_and_kept_off_the_front():
    from lenna.report.figures import pareto_figure
    from lenna.report.summary import to_markdown

    rows = [
        {"model": "mlp", "lambda": lam, "seed": 0, "test_accuracy": acc, "latency_ms": lat}
        | {"predicted_latency_ms": lat, "disconnected": disconnected, "num_classes": 10}
        for lam, acc, lat, disconnected in [
            (0.0, 0.95, 10.0, False),
            (0.3, 0.93, 6.0, False),
            (1.0, 0.102, 1.0, True),  # ignores its input: chance accuracy
            (3.0, 0.108, 0.5, False),  # connected, yet within a point of chance: the fastest
            (10.0, 0.115, 2.0, False),  # 1.5 points above chance: a (poor) trade-off
        ]
    ]
    table = pareto_table(rows)
    assert table["degenerate"].tolist() == [False, False, True, True, False]
    assert table["degenerate_reason"][2] == (
        "disconnected: no path of non-none ops from input to output; "
        "test accuracy 10.2%, within 1 point of chance (10.0%)"
    )
    assert table["degenerate_reason"][3] == "test accuracy 10.8%, within 1 point of chance (10.0%)"
    assert table["on_front"].tolist() == [True, True, False, False, True]
    summary = headline(table)["mlp"]
    assert [(d["lambda"], d["seed"]) for d in summary["degenerate"]] == [(1.0, 0), (3.0, 0)]
    assert [r["degenerate"] for r in summary["sweep"]] == [0, 0, 1, 1, 0]
    assert summary["fastest"]["lambda"] == 3.0 and summary["fastest"]["degenerate"] == 1
    json.dumps(summary)  # the pareto summary.json
    comparison = pd.DataFrame(
        [{"model": "mlp", "rmse_ms": 0.1, "median_ape": 0.02, "within_10pct": 0.9, "spearman": 0.99}]
    )
    text = to_markdown({"cpu": comparison}, {"cpu": {"models": {"mlp": summary}}})
    assert "**2 of the 5 found networks are degenerate**" in text
    assert "lambda 1 seed 0: disconnected" in text and "| degenerate |" in text
    legend = [t.get_text() for t in pareto_figure(table, "t").axes[0].get_legend().get_texts()]
    assert "degenerate (disconnected or at chance)" in legend
    # a table without the columns that tell (no num_classes, no connectivity) flags nothing, and
    # puts the fastest network at chance on the front
    plain = pareto_table(
        [{k: v for k, v in r.items() if k not in ("disconnected", "num_classes")} for r in rows]
    )
    assert not plain["degenerate"].any() and plain["on_front"].tolist() == [True, True, False, True, True]


def test_pareto_figure_draws_prediction_against_measurement_when_the_networks_have_one():
    from lenna.report.figures import pareto_figure

    table = pd.DataFrame(
        {
            "model": ["mlp"] * 3,
            "lambda": [0.0, 0.3, 1.0],
            "seed": [0, 0, 0],
            "test_accuracy": [0.86, 0.85, 0.84],
            "latency_ms": [10.0, 8.0, 4.0],
            "predicted_latency_ms": [9.5, 6.0, 4.3],  # within, 25% under, within
            "on_front": [True, False, True],
        }
    )
    fig = pareto_figure(table, "t")
    assert len(fig.axes) == 2
    assert fig.axes[1].get_title() == "prediction of the found networks: 2 of 3 within ±10%"
    summed = pareto_figure(table.assign(predicted_sum_ms=[8.0, 7.5, 5.0]), "t")
    assert summed.axes[1].get_title().endswith("(open: the plain sum of cells and parts, 1 of 3)")
    # A table target's networks have no prediction: the accuracy plane alone.
    assert len(pareto_figure(table.assign(predicted_latency_ms=float("nan")), "t").axes) == 1


def test_found_networks_predictions_are_scored_by_the_network_model_and_the_plain_sum():
    from lenna.report.summary import _prediction
    from lenna.search.pareto import headline, pareto_table

    rows = [
        {"model": "mlp", "lambda": lam, "seed": 0, "test_accuracy": 0.9, "latency_ms": measured}
        | {"predicted_latency_ms": predicted, "predicted_sum_ms": summed}
        for lam, measured, predicted, summed in ((0.0, 11.0, 10.0, 9.0), (1.0, 5.5, 4.6, 5.4))
    ]
    table = pareto_table(rows)
    assert "network_factor" not in table and "calibrated_latency_ms" not in table
    prediction = headline(table)["mlp"]["prediction"]
    # The model: 10 / 11 is 9.1% under (within), 4.6 / 5.5 16.4% under (not); the sum: 18% and 2% under.
    assert prediction["predicted"] == {
        "n": 2,
        "within_10pct": 0.5,
        "median_ape": pytest.approx((1 / 11 + 0.9 / 5.5) / 2),
    }
    assert prediction["sum"]["within_10pct"] == 0.5
    # A label the timing protocol marked unstable: the prediction is scored over the stable ones too.
    marked = [{**rows[0], "latency_status": "ok"}, {**rows[1], "latency_status": "unstable"}]
    flagged = headline(pareto_table(marked))["mlp"]["prediction"]
    assert flagged["predicted"]["n"] == 2
    stable = {"n": 1, "within_10pct": 1.0, "median_ape": pytest.approx(1 / 11), "n_unstable": 1}
    assert flagged["stable"] == stable
    text = _prediction(flagged)
    assert "marked 1 of the 2 labels unstable; over the 1 stable ones the predictor is 100% within" in text
    all_ok = headline(pareto_table([{**r, "latency_status": "ok"} for r in rows]))["mlp"]["prediction"]
    assert "stable" not in all_ok
    # A table target's networks have no prediction to score.
    assert (
        headline(pareto_table([{**rows[0], "predicted_latency_ms": float("nan")}]))["mlp"]["prediction"]
        is None
    )
