"""The NAS-Bench-201 space: its string, cell, network, specs, config and the public-device check."""

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import ROOT, TINY_NB201, apply_changes, run_snakemake
from lenna.config import ConfigError, check_config, complete_search_space
from lenna.space import nb201
from lenna.space.build import build_cell, build_network
from lenna.space.layers import count_parameters
from lenna.space.nb201 import Arch, ArchError, public_table
from lenna.space.nb201_layers import NB201Cell
from lenna.space.network import Macro
from lenna.space.parts import cell_parts
from lenna.space.spaces import get_space, load_architecture
from lenna.space.specs import prob_columns, sample_specs, sampling_plan, spec_probs
from lenna.tables import device_columns, rank_agreement, sample_public
from lenna.timing.public import BENCHMARK_MACRO

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_every_string_of_the_public_table_round_trips_and_keeps_its_official_index():
    table = public_table()
    assert len(table) == 15_625 and table["arch"].is_unique
    for text, index in zip(table["arch"], table["index"], strict=True):
        arch = Arch.parse(text)
        assert str(arch) == text
        assert arch.index == index
    # and the table holds every architecture of the space: 5 ops on 6 edges
    assert len({Arch.parse(t).ops for t in table["arch"]}) == 5**6


def _relu_conv_bn(c_in, c_out, k):
    return k * k * c_in * c_out + 2 * c_out  # conv without bias, batch norm weight and bias


def test_the_benchmark_network_has_the_parameter_count_computed_by_hand():
    # Worked out from the NAS-Bench-201 paper's description, not from this code: stem conv
    # 3x3x3x16 + BN(16); reduction blocks 16->32 and 32->64, each ReLU-conv3x3-BN (stride 2),
    # ReLU-conv3x3-BN and a 1x1 conv shortcut; BN(64) before pooling; a 64 -> 10 classifier.
    stem = 3 * 3 * 3 * 16 + 2 * 16
    blocks = sum(
        _relu_conv_bn(c_in, c_out, 3) + _relu_conv_bn(c_out, c_out, 3) + c_in * c_out
        for c_in, c_out in ((16, 32), (32, 64))
    )
    head = 2 * 64 + 64 * 10 + 10
    fixed = stem + blocks + head
    assert fixed == 73_306  # the benchmark's smallest network: 0.073 M parameters
    # Every nor_conv_3x3 edge adds a ReLU-conv3x3-BN at its stage's channels, 5 cells per stage.
    convs = 6 * 5 * sum(_relu_conv_bn(c, c, 3) for c in (16, 32, 64))
    assert fixed + convs == 1_531_546  # the largest: 1.53 M
    assert count_parameters(build_network(Arch.parse(ALL_NONE), BENCHMARK_MACRO)) == 73_306
    assert count_parameters(build_network(Arch.parse(ALL_CONV), BENCHMARK_MACRO)) == 1_531_546


def test_the_network_classifies_and_its_cells_follow_the_stages():
    net = build_network(Arch.parse(public_table()["arch"][0]), BENCHMARK_MACRO).eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    cells = net.cells
    assert len(cells) == 15 and len(net.layers) == 17
    assert [(c.shape.c, c.shape.height) for c in cells[::5]] == [(16, 32), (32, 16), (64, 8)]
    assert nb201.cell_shapes(BENCHMARK_MACRO) == [c.shape for c in cells]
    with pytest.raises(ValueError, match="stem_multiplier"):
        nb201.cell_shapes(Macro(16, 5, 32, 3, 10, stem_multiplier=3))


@pytest.mark.parametrize(
    "text, message",
    [
        (ALL_NONE.replace("none~1|+", "conv_7x7~1|+"), "unknown op 'conv_7x7'"),
        ("|none~0|+|none~0|none~1|", "2 node"),
        (ALL_NONE + "+|none~0|", "4 node"),
        ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "edge from node 2, which is not an earlier node"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 lacks the edge(s) from node(s) [1]"),
        ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "two edges from node 0"),
        ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "'none0' is not of the form op~i"),
        ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "not of the form |op~i|"),
    ],
)
def test_bad_strings_fail_naming_the_problem(text, message):
    with pytest.raises(ArchError) as err:
        Arch.parse(text)
    assert message in str(err.value)


def test_a_string_with_inputs_out_of_order_is_read_and_written_in_the_benchmarks_order():
    arch = Arch.parse("|none~0|+|skip_connect~1|nor_conv_1x1~0|+|none~2|none~0|avg_pool_3x3~1|")
    assert str(arch) == "|none~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|none~2|"


def test_a_gated_cell_runs_the_ops_of_its_string_and_none_edges_cost_nothing():
    arch = Arch.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|")
    cell = build_cell(arch, nb201.cell_shape(8, 6)).eval()
    assert cell.active_ops() == list(arch.ops)
    assert Arch.from_probs(arch.probs()) == arch
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        # node 1 = conv(x); node 2 = x (skip) + none; node 3 = pool(node 1) + conv1x1(node 2)
        e = cell.edge_ops
        n1 = e[0][0](x)
        expected = e[4][0](n1) + e[5][0](x)
        assert torch.allclose(cell(x), expected)
    dead = build_cell(Arch.parse(ALL_NONE), nb201.cell_shape(8, 6))
    assert torch.equal(dead(x), torch.zeros_like(x))


def test_a_soft_cell_holds_every_probable_op_and_its_gates_switch_among_them():
    probs = np.full((6, 5), 0.2)
    cell = NB201Cell.from_probabilities(nb201.cell_shape(4, 4), nb201.OPS, probs)
    assert all(edge.ops == nb201.OPS[1:] for edge in cell.edges)
    cell.set_gates(["nor_conv_3x3"] * 6)
    assert cell(torch.randn(1, 4, 4, 4)).shape == (1, 4, 4, 4)
    with pytest.raises(ValueError, match="not a candidate"):
        build_cell(Arch.parse(ALL_NONE), nb201.cell_shape(4, 4)).set_gates(["skip_connect"] * 6)


def _tiny_config():
    config = yaml.safe_load(TINY_NB201.read_text())
    complete_search_space(config)
    return config


def test_specs_of_the_space_have_six_edges_and_its_discrete_cells_are_its_architectures():
    config = _tiny_config()
    assert config["search_space"] == {"name": "nb201", "op_set": "nb201", "steps": 3}
    specs = sample_specs(sampling_plan(config), seed=0, start=0, stop=40)
    assert [c for c in specs.columns if c.startswith("e")] == prob_columns(nb201.OPS, 3)
    assert len(prob_columns(nb201.OPS, 3)) == 6 * 5
    assert set(specs["sampler"]) == {"discrete", "soft"}
    for _, row in specs[specs["sampler"] == "discrete"].iterrows():
        probs = spec_probs(row, nb201.OPS, 3)
        assert Arch.from_probs(probs).index is not None and np.array_equal(probs.sum(axis=1), np.ones(6))
    assert set(specs["c_prev_prev"]) == {0} and not specs["reduction"].any()


def test_cell_parts_of_the_space_have_no_preprocessing_and_never_stride():
    pre, edges = cell_parts(nb201.cell_shape(16, 32), nb201.OPS, 3)
    assert pre == [] and len(edges) == 6
    assert edges[0][0] is None and edges[0][3] == ("nor_conv_3x3", 16, 16, 32, 1)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"macro.stem_multiplier": 3}, "macro.stem_multiplier"),
        ({"sampling.samplers": {"derived": 1.0}}, "sampling.samplers: 'derived'"),
        ({"search_space": {"name": "nb201", "op_set": "darts"}}, "search_space.op_set: 'darts'"),
        ({"search_space": {"name": "nb201", "steps": 4}}, "search_space.steps"),
        ({"search_space": {"name": "darts"}}, "public_check"),
        ({"search_space": {"name": "proxyless"}}, "search_space.name"),
    ],
)
def test_config_errors_of_the_space_name_the_key(change, message):
    config = apply_changes(yaml.safe_load(TINY_NB201.read_text()), change)
    if change.get("search_space", {}).get("name") == "darts":
        config["macro"]["stem_multiplier"] = 3
        config["macro"]["input_channels"] = 1
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        check_config(config)


def test_spaces_are_told_apart_by_their_op_set():
    assert get_space("nb201", 3).name == "nb201" and get_space(nb201.OPS, 3).n_edges == 6
    assert get_space("darts", 4).n_edges == 14
    with pytest.raises(ValueError, match="3 nodes"):
        get_space("nb201", 4)


def test_rank_agreement_is_one_with_the_column_we_copy_and_lower_with_the_others():
    table = public_table()
    archs = sample_public(table, 200, seed=1)
    assert len(set(archs["index"])) == 200
    copied = table.set_index("index").loc[archs["index"], "gold_6240"].to_numpy()
    measured = pd.DataFrame({"index": archs["index"], "batch_size": 1, "latency_ms": copied})
    ranks = rank_agreement(measured, table).set_index("device")
    assert set(ranks.index) == set(device_columns(table)) and len(ranks) == 21
    assert ranks.loc["gold_6240", "spearman_rho"] == pytest.approx(1.0)
    assert ranks.loc["gold_6240", "kind"] == "cpu" and ranks.loc["pixel3", "kind"] == "phone"
    assert (ranks.drop(index="gold_6240")["spearman_rho"] < 0.999).all()
    with pytest.raises(ValueError, match="n_archs"):
        sample_public(table, 0, seed=1)


@pytest.mark.e2e
def test_the_tiny_nb201_experiment_runs_through_the_cli(tmp_path):
    run_snakemake(tmp_path, "--cores", "2", configfile=TINY_NB201)
    results = tmp_path / "results"
    specs = pd.read_parquet(results / "datasets" / "cpu" / "latency.parquet")
    assert set(specs["op_set"]) == {"nb201"} and (specs["latency_ms"] > 0).all()
    comparison = pd.read_csv(results / "predictors" / "cpu" / "comparison.csv")
    assert set(comparison["model"]) == {"flops", "lut", "mlp"}
    assert comparison["network_n_test"].notna().all()  # whole NAS-Bench-201 networks checked
    assert not (results / "predictors" / "cpu" / "learning_curve.csv").exists()  # [] skips it
    networks = pd.read_parquet(results / "networks" / "cpu" / "measured.parquet")
    assert all(Arch.parse(t) for t in networks["genotype"]) and (networks["blocks_ms"] > 0).all()
    ranks = pd.read_csv(results / "public" / "cpu" / "rank.csv")
    assert len(ranks) == 2 * 21 and set(ranks["batch_size"]) == {1, 2}
    assert ranks["spearman_rho"].between(-1, 1).all() and (ranks["n_archs"] == 12).all()
    summary = (results / "summary.md").read_text()
    assert "against the public devices" in summary
    # the latency-aware search ran on the NAS-Bench-201 supernet and derived benchmark cells
    found = sorted((results / "search" / "cpu").glob("*/lambda-*/seed-*/genotype.json"))
    assert len(found) == 2  # one predictor x two lambdas x one seed
    for path in found:
        arch = load_architecture(path)
        assert isinstance(arch, Arch) and arch.index is not None
        assert arch.connected  # the derivation never returns a network that ignores its input
        history = pd.read_parquet(path.parent / "history.parquet")
        assert history["argmax_disconnected"].dtype == bool  # a collapse of the argmax stays visible
        assert [c for c in history.columns if c.startswith("reduce_e")] == []
        assert len([c for c in history.columns if c.startswith("normal_e")]) == 30
    pareto = pd.read_csv(results / "pareto" / "cpu" / "pareto.csv")
    assert len(pareto) == 2 and (pareto["latency_ms"] > 0).all()
    assert all(Arch.parse(g) for g in pareto["genotype"])
    assert not pareto["disconnected"].any() and (pareto["num_classes"] == 10).all()
    assert not pareto[pareto["degenerate"]]["on_front"].any()


def test_the_supernet_mixes_every_op_under_one_alpha_and_derives_the_argmax_cell():
    from lenna.search.supernet import NB201SuperNet, alpha_table, derive_genotype, make_supernet

    macro = Macro(
        init_channels=4, layers=2, input_size=8, input_channels=1, num_classes=10, stem_multiplier=1
    )
    net = make_supernet(get_space("nb201", 3), macro, torch.Generator().manual_seed(0))
    assert isinstance(net, NB201SuperNet) and [a.shape for a in net.alphas()] == [(6, 5)]
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    loss = net(torch.randn(3, 1, 8, 8)).sum()
    loss.backward()
    assert net.alpha_normal.grad is not None and net.alpha_normal.grad.abs().sum() > 0
    wanted = Arch.parse("|none~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|")
    with torch.no_grad():
        net.alpha_normal.copy_(torch.tensor(wanted.probs() * 5.0))
    assert derive_genotype(net, max_skip_normal=0) == wanted  # no skip cap in this space
    table = alpha_table(net)
    assert len(table) == 30 and all(k.startswith("normal_e") for k in table)


def test_a_config_file_on_the_command_line_replaces_the_default_one(tmp_path):
    # Run where config/config.yaml exists (the repository root, for a user): --configfile must
    # not be merged into the DARTS default key by key (op_set darts would stay under nb201).
    def dry_run(name, *targets, configfile):  # the two at once, each in a directory of its own
        (tmp_path / name / "config").mkdir(parents=True)
        (tmp_path / name / "config" / "config.yaml").write_text((ROOT / "config" / "config.yaml").read_text())
        return run_snakemake(tmp_path / name, "--dry-run", *targets, configfile=configfile)

    with ThreadPoolExecutor(2) as pool:
        given = pool.submit(dry_run, "given", configfile=TINY_NB201)
        default = pool.submit(dry_run, "default", "results/specs/shard-11.parquet", configfile=None)
        given, default = given.result(), default.result()
    assert "results/public/cpu/rank.csv" in given.stdout
    assert "shard-11" in default.stdout  # no --configfile: the default (12 shards) is used


def test_a_cell_is_connected_when_some_path_of_non_none_ops_leads_from_input_to_output():
    assert Arch.parse(ALL_CONV).connected and not Arch.parse(ALL_NONE).connected
    # input -> node 1 -> node 3 through two convolutions, every other edge none
    assert Arch.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|").connected
    # node 2 is reached, but only node 1's edge leads on to the output, and node 1 is cut off
    assert not Arch.parse("|none~0|+|skip_connect~0|none~1|+|none~0|nor_conv_3x3~1|none~2|").connected
    # every op but none carries the input, pooling and the identity included
    assert Arch.parse("|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|").connected


def _most_probable_connected_by_brute_force(probs):
    best, best_score = None, -np.inf
    for picks in itertools.product(range(len(nb201.OPS)), repeat=len(nb201.EDGES)):
        arch = Arch(tuple(nb201.OPS[j] for j in picks))
        score = np.log(probs[np.arange(len(picks)), picks]).sum()
        if arch.connected and score > best_score:
            best, best_score = arch, score
    return best


def test_derivation_on_alphas_that_favour_none_everywhere_yields_the_most_probable_connected_cell():
    from lenna.search.supernet import argmax_disconnected, derive_genotype, make_supernet

    rng = np.random.default_rng(0)
    alpha = rng.normal(size=(6, 5))
    alpha[:, nb201.OPS.index("none")] += 4.0  # none is the argmax of every edge
    probs = np.exp(alpha) / np.exp(alpha).sum(axis=1, keepdims=True)
    plain, derived = Arch.from_probs(probs), Arch.connected_from_probs(probs)
    assert plain == Arch.parse(ALL_NONE) and not plain.connected
    assert derived.connected and derived == _most_probable_connected_by_brute_force(probs)
    # one edge from input to output turned on, the others keep their none
    assert sum(op != "none" for op in derived.ops) == 1
    # a connected argmax cell is the derivation itself, none edges and all
    wanted = Arch.parse("|none~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|")
    assert Arch.connected_from_probs(wanted.probs()) == wanted
    # even a one-hot matrix of a disconnected cell (zero probabilities) has a connected best
    assert Arch.connected_from_probs(Arch.parse(ALL_NONE).probs()).connected
    # and the search derives it, recording that the argmax would have been disconnected
    macro = Macro(
        init_channels=4, layers=1, input_size=8, input_channels=1, num_classes=10, stem_multiplier=1
    )
    net = make_supernet(get_space("nb201", 3), macro, torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.alpha_normal.copy_(torch.tensor(alpha))
    assert derive_genotype(net) == derived and argmax_disconnected(net)
    with torch.no_grad():
        net.alpha_normal.copy_(torch.tensor(wanted.probs() * 5.0))
    assert derive_genotype(net) == wanted and not argmax_disconnected(net)
