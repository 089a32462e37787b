"""LENNA's block space: its ops, block, network, text form, specs, supernet and the whole DAG."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import TINY_LENNA, apply_changes, run_snakemake
from lenna.config import ConfigError, check_config
from lenna.space import lenna_block
from lenna.space.build import build_network, gated_cell
from lenna.space.layers import count_parameters
from lenna.space.lenna_block import EDGES, OPS, Arch, ArchError, block_shape, op_mask
from lenna.space.lenna_layers import Block, make_block_op
from lenna.space.network import Macro
from lenna.space.parts import cell_parts
from lenna.space.spaces import get_space, load_architecture
from lenna.space.specs import prob_columns, sample_specs, sampling_plan, spec_probs, spec_shape
from lenna.timing.parts import build_part

# LENNA's search network (its SuperDartsRecastingNet): C = 16, 4 blocks per stage, CIFAR-10.
LENNA_MACRO = Macro(
    init_channels=16, layers=4, input_size=32, input_channels=3, num_classes=10, stem_multiplier=1
)


def _block(layer_ops):
    """A block's text with ``layer_ops(j, i)`` on the edge from i into layer j."""
    return "+".join("|" + "|".join(f"{layer_ops(j, i)}~{i}" for i in range(j)) + "|" for j in range(1, 6))


ALL_CONV = _block(lambda j, i: "3x3_Conv")
ALL_IDENTITY = _block(lambda j, i: "Identity")
POOL_THEN_IDENTITY = _block(lambda j, i: "3x3_maxpool" if i == 0 else "Identity")


def test_the_ops_and_edges_are_lennas():
    # LENNA's normal_ops (NASR/data_pipeline/latency_estimator.py), in its order.
    assert OPS == (
        "3x3_Conv", "5x5_Conv", "3x3_ConvDW", "5x5_ConvDW", "3x3_dConv", "5x5_dConv",
        "3x3_dConvDW", "5x5_dConvDW", "3x3_maxpool", "3x3_avgpool", "Identity",
    )  # fmt: skip
    assert len(EDGES) == 1 + 2 + 3 + 4 + 5
    assert EDGES[:3] == [(0, 0), (1, 0), (1, 1)]  # layer 2 takes the block input and layer 1
    # its 167 features: block type, channels and 15 x 11 probabilities; ours add the shape columns
    assert 2 + len(prob_columns(OPS, 5)) == 167
    assert op_mask(False).all()
    assert (~op_mask(True)).sum() == 5 and not op_mask(True)[[0, 1, 3, 6, 10], OPS.index("Identity")].any()


@pytest.mark.parametrize("name", OPS)
def test_every_op_keeps_the_shape_and_a_strided_one_halves_it_and_doubles_the_channels(name):
    x = torch.randn(2, 8, 16, 16)
    assert make_block_op(name, 8, 8, 1).eval()(x).shape == (2, 8, 16, 16)
    if name == "Identity":
        with pytest.raises(ValueError, match="cannot stride"):
            make_block_op(name, 8, 16, 2)
    else:
        assert make_block_op(name, 8, 16, 2).eval()(x).shape == (2, 16, 8, 8)


def _conv_bn(c_in, c_out, k):
    return k * k * c_in * c_out + 2 * c_out  # conv without bias, batch norm weight and bias


def test_lennas_network_has_the_parameter_count_computed_by_hand():
    # From LENNA's layers (ConvLayer: conv without bias, BN, ReLU; PoolingExpandLayer: pooling,
    # a 1x1 conv without bias, BN, ReLU), not from this code. Stem 3 -> 16 conv-BN; stage 1: four
    # normal blocks at 16; stages 2 and 3: a reduction block (16 -> 32, 32 -> 64) and three normal
    # blocks; a 64 -> 10 classifier.
    stem, head = _conv_bn(3, 16, 3), 64 * 10 + 10
    normal = {c: 15 * _conv_bn(c, c, 3) for c in (16, 32, 64)}
    reduce = {c: 5 * _conv_bn(c, 2 * c, 3) + 10 * _conv_bn(2 * c, 2 * c, 3) for c in (16, 32)}
    all_conv = stem + 4 * normal[16] + reduce[16] + 3 * normal[32] + reduce[32] + 3 * normal[64] + head
    assert all_conv == 2_802_394
    net = build_network(Arch.parse(f"normal={ALL_CONV} reduce={ALL_CONV}"), LENNA_MACRO)
    assert count_parameters(net) == 2_802_394
    # identities everywhere but the strided edges, which pool and expand with a 1x1 conv and BN
    smallest = stem + sum(5 * _conv_bn(c, 2 * c, 1) for c in (16, 32)) + head
    assert smallest == 14_874
    net = build_network(Arch.parse(f"normal={ALL_IDENTITY} reduce={POOL_THEN_IDENTITY}"), LENNA_MACRO)
    assert count_parameters(net) == 14_874
    assert net.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_the_network_follows_lennas_stages():
    shapes = lenna_block.cell_shapes(LENNA_MACRO)
    assert [(s.reduction, s.c_prev, s.c, s.height) for s in shapes] == [
        *[(False, 16, 16, 32)] * 4,
        (True, 16, 32, 32),
        *[(False, 32, 32, 16)] * 3,
        (True, 32, 64, 16),
        *[(False, 64, 64, 8)] * 3,
    ]
    with pytest.raises(ValueError, match="stem_multiplier"):
        lenna_block.cell_shapes(Macro(16, 4, 32, stem_multiplier=3))


def test_the_text_form_round_trips_and_bad_text_fails_naming_the_problem(tmp_path):
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = lenna_block.random_arch(rng)
        assert Arch.parse(str(arch)) == arch
        assert Arch.parse(json.dumps(arch.to_dict())) == arch
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(arch.to_dict()))
    assert load_architecture(path) == arch
    bad = {
        f"normal={ALL_CONV} reduce={ALL_IDENTITY}": "reduce: edge (0, 0) strides, and 'Identity' cannot",
        f"normal={ALL_CONV.replace('3x3_Conv~0', '7x7_Conv~0', 1)} reduce=x": "unknown op '7x7_Conv'",
        f"normal={ALL_CONV.rsplit('+', 1)[0]} reduce={ALL_CONV}": "normal: 4 node(s), a cell has 5",
        f"normal={ALL_CONV.replace('3x3_Conv~1', '3x3_Conv~3', 1)} reduce={ALL_CONV}": "edge from node 3",
        f"normal={ALL_CONV}": "expected 'normal=<block> reduce=<block>'",
    }
    for text, message in bad.items():
        with pytest.raises(ArchError, match=re.escape(message)):
            Arch.parse(text)
    path.write_text(f"normal={ALL_CONV} reduce={ALL_IDENTITY}")
    with pytest.raises(ArchError, match="genotype.json: reduce"):
        load_architecture(path)


def test_a_gated_block_runs_its_chosen_ops_and_refuses_the_identity_on_a_strided_edge():
    shape = block_shape(4, 8, reduction=True)
    probs = np.where(op_mask(True), 1.0, 0.0)
    probs /= probs.sum(axis=1, keepdims=True)
    block = Block.from_probabilities(shape, OPS, probs).eval()
    assert [len(e.ops) for e in block.edges] == [10 if inp == 0 else 11 for _, inp in EDGES]
    assert block(torch.randn(2, 4, 8, 8)).shape == (2, 8, 4, 4)
    block.set_gates(["5x5_dConvDW"] * 15)
    assert block.active_ops() == ["5x5_dConvDW"] * 15
    with pytest.raises(ValueError, match="not a candidate"):
        block.set_gates(["Identity"] * 15)
    with pytest.raises(ValueError, match="cannot hold 'Identity'"):
        Block.from_probabilities(shape, OPS, np.full((15, 11), 1 / 11))


def test_specs_never_give_the_identity_to_a_strided_edge():
    config = check_config_of(yaml.safe_load(TINY_LENNA.read_text()))
    assert config["search_space"] == {"name": "lenna", "op_set": "lenna", "steps": 5}
    specs = sample_specs(sampling_plan(config), seed=0, start=0, stop=200)
    assert set(specs["reduction"]) == {False, True} and set(specs["sampler"]) == {"discrete", "soft"}
    for _, row in specs.iterrows():
        probs = spec_probs(row, OPS, 5)
        assert np.allclose(probs.sum(axis=1), 1.0)
        assert not (probs[~op_mask(bool(row["reduction"]))] > 0).any()
        block = gated_cell(get_space("lenna", 5), spec_shape(row), probs)  # every spec builds
        assert len(block.edges) == 15


def check_config_of(config):
    check_config(config)
    return config


def test_cell_parts_of_a_reduction_block_stride_and_widen_on_the_input_edges_only():
    pre, edges = cell_parts(block_shape(8, 16, reduction=True), OPS, 5)
    assert pre == [] and len(edges) == 15
    assert edges[0][OPS.index("Identity")] is None
    assert edges[0][OPS.index("3x3_maxpool")] == ("3x3_maxpool", 8, 16, 16, 2)
    assert edges[2][OPS.index("Identity")] == ("Identity", 16, 16, 8, 1)
    x = torch.randn(1, 8, 16, 16)
    assert build_part(edges[0][OPS.index("3x3_maxpool")]).eval()(x).shape == (1, 16, 8, 8)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"macro.stem_multiplier": 3}, "macro.stem_multiplier"),
        ({"sampling.samplers": {"derived": 1.0}}, "sampling.samplers: 'derived'"),
        ({"search_space": {"name": "lenna", "steps": 4}}, "search_space.steps"),
        ({"search_space": {"name": "lenna", "op_set": "nb201"}}, "search_space.op_set: 'nb201'"),
    ],
)
def test_config_errors_of_the_space_name_the_key(change, message):
    config = apply_changes(yaml.safe_load(TINY_LENNA.read_text()), change)
    with pytest.raises(ConfigError, match=message):
        check_config(config)


def test_the_supernet_masks_the_identity_of_strided_edges_and_derives_the_argmax_blocks():
    from lenna.search.supernet import LennaSuperNet, alpha_table, derive_genotype, make_supernet

    macro = Macro(
        init_channels=2, layers=1, input_size=8, input_channels=1, num_classes=10, stem_multiplier=1
    )
    net = make_supernet(get_space("lenna", 5), macro, torch.Generator().manual_seed(0))
    assert isinstance(net, LennaSuperNet) and [a.shape for a in net.alphas()] == [(15, 11), (15, 11)]
    net(torch.randn(3, 1, 8, 8)).sum().backward()
    assert net.alpha_normal.grad.abs().sum() > 0 and net.alpha_reduce.grad.abs().sum() > 0
    assert (net.alpha_reduce.grad[~torch.as_tensor(op_mask(True))] == 0).all()
    wanted = Arch.parse(f"normal={ALL_IDENTITY} reduce={POOL_THEN_IDENTITY}")
    with torch.no_grad():
        net.alpha_normal.copy_(torch.tensor(wanted.probs(False) * 5.0))
        net.alpha_reduce.copy_(torch.tensor(wanted.probs(True) * 5.0))
        net.alpha_reduce[0, OPS.index("Identity")] = 50.0  # the largest alpha, but masked
    assert derive_genotype(net) == wanted
    table = alpha_table(net)
    assert len(table) == 2 * 15 * 11 and table["reduce_e00_Identity"] == 0.0


def _cost_predictor(identity_ms: float):
    """A linear predictor: a block costs 0.5 ms plus, per edge, 1 ms per probable op, except the
    identity, which costs ``identity_ms``."""
    from lenna.datasets import feature_columns
    from lenna.predictors.model import LatencyPredictor

    features = feature_columns("lenna", 5)
    coef = np.array(
        [
            (identity_ms if f.endswith("_Identity") else 1.0) if f[0] == "e" and f[1].isdigit() else 0.0
            for f in features
        ]
    )
    description = {
        "kind": "linear",
        "op_set": "lenna",
        "steps": 5,
        "features": features,
        "transform": "linear",
        "label": {"mean": 0.0, "std": 1.0},
    }
    n = len(features)
    weights = {"coef": coef, "intercept": np.array([0.5]), "mean": np.zeros(n), "std": np.ones(n)}
    return LatencyPredictor(description, weights)


def test_the_predictor_prices_a_network_of_blocks_and_gives_masked_ops_no_weight():
    predictor = _cost_predictor(identity_ms=100.0)
    macro = Macro(
        init_channels=2, layers=1, input_size=8, input_channels=1, num_classes=10, stem_multiplier=1
    )
    alpha = torch.zeros(15, 11, requires_grad=True)
    latency = predictor.expected_cells_latency(alpha, alpha, macro, batch_size=1)
    normal = 0.5 + 15 * (10 + 100) / 11
    reduce = 0.5 + 5 * 1.0 + 10 * (10 + 100) / 11  # the strided edges: 10 ops of 1 ms, no identity
    assert latency.item() == pytest.approx(normal + 2 * reduce, rel=1e-5)  # one normal, two reductions
    latency.backward()
    assert alpha.grad.abs().sum() > 0
    arch = Arch.parse(f"normal={ALL_IDENTITY} reduce={POOL_THEN_IDENTITY}")
    expected = (0.5 + 1500) + 2 * (0.5 + 5 + 1000)
    assert predictor.predict_cells(arch, macro, 1) == pytest.approx(expected, rel=1e-5)


@pytest.mark.e2e
def test_the_tiny_lenna_experiment_runs_through_the_cli(tmp_path):
    run_snakemake(tmp_path, "--cores", "2", configfile=TINY_LENNA)
    results = tmp_path / "results"
    specs = pd.read_parquet(results / "datasets" / "cpu" / "latency.parquet")
    assert set(specs["op_set"]) == {"lenna"} and (specs["latency_ms"] > 0).all()
    assert len([c for c in specs.columns if c[0] == "e" and c[1].isdigit()]) == 165
    comparison = pd.read_csv(results / "predictors" / "cpu" / "comparison.csv")
    assert set(comparison["model"]) == {"flops", "lut", "mlp"}
    assert comparison["network_n_test"].notna().all()  # whole LENNA networks checked
    networks = pd.read_parquet(results / "networks" / "cpu" / "measured.parquet")
    assert all(Arch.parse(t) for t in networks["genotype"])
    found = sorted((results / "search" / "cpu").glob("*/lambda-*/seed-*/genotype.json"))
    assert len(found) == 2  # one predictor x two lambdas x one seed
    for path in found:
        assert isinstance(load_architecture(path), Arch)
        history = pd.read_parquet(path.parent / "history.parquet")
        assert len([c for c in history.columns if c.startswith("reduce_e")]) == 165
        assert (history["reduce_e00_Identity"] == 0).all()
    pareto = pd.read_csv(results / "pareto" / "cpu" / "pareto.csv")
    assert len(pareto) == 2 and (pareto["latency_ms"] > 0).all() and (pareto["test_accuracy"] > 0).all()
    assert all(Arch.parse(g) for g in pareto["genotype"])
    assert (results / "summary.md").is_file()


def test_the_reference_cell_of_a_timing_job_mixes_the_ops_each_edge_may_hold():
    from lenna.timing.labels import reference_cell

    assert set(reference_cell(block_shape(4, 8, False), OPS, 5).active_ops()) == set(OPS)
    ops = reference_cell(block_shape(4, 8, True), OPS, 5).active_ops()  # would fail on an identity
    assert len(set(ops)) >= 10 and all(op_mask(True)[k, OPS.index(op)] for k, op in enumerate(ops))


def test_the_flops_table_of_a_reduction_block_counts_each_edge_at_its_own_channels():
    from lenna.predictors.baselines import count_part, shape_table

    shape = block_shape(8, 16, reduction=True)
    table = shape_table([(shape, 1)], OPS, 5, lambda part, batch: list(count_part(part)))
    coef = table["coef"][0].reshape(2, 15, 11)  # (mflops, params) per edge and op
    identity, pool, conv = OPS.index("Identity"), OPS.index("3x3_maxpool"), OPS.index("3x3_Conv")
    assert coef[:, 0, identity].tolist() == [0.0, 0.0]  # not a candidate on a strided edge
    assert coef[1, 0, pool] == 8 * 16 + 2 * 16  # 2x2 pooling, a 1x1 conv 8 -> 16 and BN
    assert coef[1, 0, conv] == 9 * 8 * 16 + 2 * 16 and coef[1, 2, conv] == 9 * 16 * 16 + 2 * 16
    # the same 8x8 output pixels, twice the input channels: about twice the multiply-adds
    assert coef[0, 2, conv] == pytest.approx(2 * coef[0, 0, conv], rel=0.05)
