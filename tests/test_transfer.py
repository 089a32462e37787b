"""Device tables as targets and the few-shot predictor of a device from a few labels
(lenna.tables, lenna.predictors.transfer)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import ROOT, TINY_NB201, apply_changes, run_snakemake
from lenna.config import ConfigError, check_config, complete_search_space, table_targets
from lenna.io import DataError
from lenna.predictors.model import load_predictor
from lenna.predictors.transfer import (
    BLENDS,
    choose_labels,
    doptimal_rows,
    family_devices,
    fit_few_shot,
    fit_source_model,
    leave_family_out,
    leave_one_device_out,
    rank_cap,
    ridge_loo,
    source_table,
)
from lenna.space.nb201 import Arch, public_table
from lenna.tables import (
    Protocol,
    batch_size_of,
    connected,
    few_shot_split,
    network_dataset,
    read_device_table,
    sample_pool,
    score_rows,
)

QUICK_SOURCE = {"hidden": [16], "epochs": 2, "batch_size": 512, "seed": 0}
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
CONV_PATH = "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"


@pytest.fixture(scope="module")
def table():
    return read_device_table(ROOT / "resources" / "nb201-latency" / "latency.parquet")


def test_a_table_may_name_architectures_by_string_or_index_and_gets_both(tmp_path, table):
    rows = table.iloc[[5, 3, 100]]
    by_arch = tmp_path / "arch.csv"
    rows[["arch", "pixel3"]].rename(columns={"pixel3": "latency_ms"}).to_csv(by_arch, index=False)
    by_index = tmp_path / "index.csv"
    rows[["index", "pixel3"]].rename(columns={"pixel3": "latency_ms"}).to_csv(by_index, index=False)
    a, b = read_device_table(by_arch), read_device_table(by_index)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["index", "arch", "latency_ms"]
    assert list(a["index"]) == sorted(rows["index"])  # in index order
    assert all(str(Arch.parse(s)) == s for s in a["arch"])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"name": ["x"], "latency_ms": [1.0]}), "needs a column 'arch'"),
        (
            pd.DataFrame({"arch": ["|bogus~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "latency_ms": [1.0]}),
            "row 0",
        ),
        (pd.DataFrame({"index": [15625], "latency_ms": [1.0]}), "not an official NAS-Bench-201 index"),
        (pd.DataFrame({"index": [3], "latency_ms": [0.0]}), "positive latencies"),
        (pd.DataFrame({"index": [3, 3], "latency_ms": [1.0, 2.0]}), "appears twice"),
        (pd.DataFrame({"index": [3, 4]}), "no latency column"),
        (pd.DataFrame({"index": [0], "arch": [CONV_PATH], "latency_ms": [1.0]}), "is not that of"),
    ],
)
def test_a_bad_device_table_is_an_error_naming_the_file(tmp_path, frame, message):
    path = tmp_path / "mine.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=message) as err:
        read_device_table(path)
    assert str(path) in str(err.value)


def test_disconnected_cells_are_left_out_of_the_datasets(table):
    assert not connected(ALL_NONE) and connected(CONV_PATH)
    data = network_dataset(table, "pixel3", 1, source="public")
    assert len(table) - len(data) == 341  # the count in docs/device-tables.md
    # what is left has no degenerate (pruned) pixel3 latency
    assert data["latency_ms"].min() > 1.0 and table["pixel3"].min() < 0.01
    assert (data["unit"] == "network").all() and set(data["batch_size"]) == {1}
    assert batch_size_of("titanxp_256") == 256 and batch_size_of("pixel3") == 1
    assert batch_size_of("gold_6240") == 1  # a CPU model number, not a batch size


def test_the_published_protocol_draws_from_the_pool_and_scores_the_middle_of_the_score_range(table):
    protocol = Protocol()
    data = network_dataset(table, "titanxp_1", 1, source="public")
    rows = sample_pool(data, 10, seed=3, protocol=protocol)
    assert len(rows) == 10 and data["index"].iloc[rows].between(0, 899).all()
    other = network_dataset(table, "pixel3", 1, source="public")
    # a seed draws the same architectures on every device
    assert list(other["index"].iloc[sample_pool(other, 10, 3, protocol)]) == list(data["index"].iloc[rows])
    assert len(sample_pool(data, 900, 0, protocol)) == 879  # the whole pool, connected cells
    with pytest.raises(ValueError, match="pool"):
        sample_pool(data, 901, 0, protocol)
    scored = score_rows(table["titanxp_1"].to_numpy(), table["index"].to_numpy(), protocol)
    assert scored.sum() == 800  # 10th..90th percentile of indices 900..1899
    split = few_shot_split(data, table, "titanxp_1", 10, 3, protocol)
    assert (split == "train").sum() == 10 and (split == "test").sum() == 789
    assert not (data["index"][split == "test"] < 900).any()


def test_the_held_out_device_never_reaches_the_source_model(table):
    sources = source_table(table, "titanxp_1")
    assert "titanxp_1" not in sources.columns and len(sources.columns) == 2 + 20
    scrambled = table.assign(titanxp_1=np.random.default_rng(0).uniform(1, 100, len(table)))
    a = fit_source_model(source_table(table, "titanxp_1"), 1, QUICK_SOURCE)
    b = fit_source_model(source_table(scrambled, "titanxp_1"), 1, QUICK_SOURCE)
    for (wa, ba), (wb, bb) in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    with pytest.raises(ValueError, match="own sources"):
        source_table(table, "titanxp_1", ["pixel3", "titanxp_1"])
    with pytest.raises(ValueError, match="not in the table"):
        source_table(table, "titanxp_1", ["tpu"])


def test_ridge_with_leave_one_out_penalty_recovers_a_linear_law():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 3.0
    coef, intercept, penalty = ridge_loo(x, y)
    np.testing.assert_allclose(coef, [1.0, -2.0, 0.5], atol=1e-3)
    assert abs(intercept - 3.0) < 1e-3 and penalty == 1e-3
    # pure noise: the largest penalty wins and the fit is nearly the mean
    coef, _, penalty = ridge_loo(x, rng.normal(size=30))
    assert penalty >= 100 and np.abs(coef).max() < 0.2


def test_the_few_shot_predictor_is_an_mlp_file_usable_by_the_search(tmp_path, table):
    sources = source_table(table, "titanxp_1", ["1080ti_1", "pixel3"])
    source = fit_source_model(sources, 1, QUICK_SOURCE)
    data = network_dataset(table, "titanxp_1", 1, source="public")
    # three members by default, seeds 0..2, merged into one MLP whose outputs are their mean
    alone = [fit_source_model(sources, 1, {**QUICK_SOURCE, "members": 1, "seed": s}) for s in range(3)]
    features = data[source.normaliser["features"]].to_numpy(np.float64)[:50]
    mean = np.mean([m.outputs(features) for m in alone], axis=0)
    np.testing.assert_allclose(source.outputs(features), mean, rtol=1e-12)
    assert [w.shape[0] for w, _ in source.layers] == [48, 2]  # 3 x 16 hidden, 2 sources
    train = data.iloc[sample_pool(data, 10, 0, Protocol())]
    predictor = fit_few_shot(source, train)
    predictor.save(tmp_path / "few_shot")
    loaded = load_predictor(tmp_path / "few_shot")
    assert loaded.kind == "mlp" and loaded.unit == "network"
    assert loaded.description["transfer"]["sources"] == ["1080ti_1", "pixel3"]
    assert loaded.description["transfer"]["n_labels"] == 10
    # the composed MLP is the source model followed by the blend of its outputs
    features = data[loaded.features].to_numpy(np.float64)[:50]
    blend = np.array(list(loaded.description["transfer"]["blend"].values()))
    direct = np.exp(source.outputs(features) @ blend)
    ratio = loaded.predict(data.iloc[:50]) / direct
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)  # equal up to the fitted intercept
    # search: one network, whatever the search macro; differentiable in the alphas
    arch = Arch.parse(data["arch"].iloc[0])
    alphas = torch.tensor(arch.probs() * 50.0, requires_grad=True)
    expected = loaded.expected_network_latency(alphas, None, None, 1)
    assert expected.item() == pytest.approx(loaded.predict_cells(arch, None, 1), rel=1e-4)
    assert expected.item() == pytest.approx(loaded.predict(data.iloc[:1])[0], rel=1e-4)
    expected.backward()
    assert alphas.grad is not None and alphas.grad.abs().sum() > 0


def test_leave_one_device_out_scores_each_method_for_every_n_and_seed(table):
    small = table[["index", "arch", "titanxp_1", "titanxp_32", "1080ti_1"]]
    scores = leave_one_device_out(
        small, "titanxp_1", [10, 20], [0, 1], Protocol(), QUICK_SOURCE, {"epochs": 5, "hidden": [8]}
    )
    assert len(scores) == 5 * 2 * 2 + 1 and (scores["split"] == "device").all()
    assert set(scores["method"]) == {
        "few_shot",
        "few_shot_ridge",
        "few_shot_chosen",
        "alone",
        "flops",
        "ceiling",
    }
    ceiling = scores[scores["method"] == "ceiling"].iloc[0]
    data = network_dataset(small, "titanxp_1", 1, source="public")
    outside = (~data["index"].between(900, 1899)).sum()  # every label but the scoring range's
    assert ceiling["n_train"] == outside == 14300 and ceiling["spearman"] > 0.9
    assert scores["spearman"].between(-1, 1).all() and (scores["n_test"] == 789).all()
    assert scores.groupby("n_labels")["n_train"].first().to_dict() == {10: 10, 20: 20, 14300: 14300}


def test_rank_cap_is_below_one_only_for_ties():
    assert rank_cap(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(1.0)
    assert rank_cap(np.array([1.0, 1.0, 2.0, 2.0, 3.0])) < 0.99


def nb201_config(**changes) -> dict:
    config = yaml.safe_load(TINY_NB201.read_text())
    config.setdefault("external_targets", {})
    return apply_changes(config, changes)


def test_device_table_config_errors_name_the_key(tmp_path):
    config = nb201_config(device_tables={"public": {"devices": ["tpu"]}})
    complete_search_space(config)
    with pytest.raises(ConfigError, match=r"device_tables\.public\.devices: \['tpu'\]"):
        check_config(config)
    config = nb201_config(
        device_tables={
            "public": {"devices": ["pixel3"], "few_shot": {"n": 10, "seed": 0, "sources": ["pixel3"]}}
        }
    )
    complete_search_space(config)
    with pytest.raises(ConfigError, match="never its own source"):
        check_config(config)
    config = nb201_config(device_tables={"public": {"table": str(tmp_path / "none.csv")}})
    complete_search_space(config)
    with pytest.raises(ConfigError, match=r"device_tables\.public\.table: no such file"):
        check_config(config)
    config = nb201_config(device_tables={"public": {"devices": ["pixel3"]}}, **{"search_space.name": "darts"})
    config["search_space"].pop("op_set", None)
    complete_search_space(config)
    with pytest.raises(ConfigError, match="search_space.name must be nb201"):
        check_config(config)
    config = nb201_config(device_tables={"public": {"devices": ["pixel3", "titanxp_1"]}})
    complete_search_space(config)
    targets = table_targets(config)
    assert sorted(targets) == ["pixel3", "titanxp_1"] and targets["pixel3"]["batch_size"] == 1


@pytest.mark.e2e
def test_a_device_table_experiment_runs_through_the_cli(tmp_path, table):
    # a user's own device: ten architectures of the pool and the scoring range, by index
    rows = table[(table["index"] < 40) | table["index"].between(900, 1899)]
    mine = tmp_path / "my_gpu.csv"
    rows[["index", "titanx_32"]].rename(columns={"titanx_32": "latency_ms"}).to_csv(mine, index=False)
    public = ROOT / "resources" / "nb201-latency" / "latency.parquet"
    small = tmp_path / "small.parquet"
    table.loc[table["index"] < 2500, ["index", "arch", "titanxp_1", "titanxp_32", "pixel3"]].to_parquet(small)
    config = nb201_config(
        targets={},
        device_tables={
            "my_gpu": {"table": str(mine)},
            "public": {
                "table": str(public),
                "devices": ["titanxp_1"],
                "few_shot": {"n": 10, "seed": 0, "sources": ["titanxp_32", "pixel3"], "source": QUICK_SOURCE},
                "search": True,
            },
            "small": {"table": str(small), "devices": ["pixel3"]},
        },
        transfer={"table": "small", "n_labels": [10], "seeds": [0], "source": QUICK_SOURCE},
        **{
            "search.predictors": ["few_shot"],
            # FLOPs (the space's own counting) and the MLP; the other models train on a table's
            # dataset as on any other (`test_an_external_latency_table_trains_its_own_predictors`)
            "predictors.models": ["flops", "mlp"],
            "predictors.mlp.batch_size": 64,  # the tables' 600-1,500 training rows, not 15 specs
        },
    )
    config.pop("public_check")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    run_snakemake(tmp_path, configfile=path)
    results = tmp_path / "results"
    for target, models in (
        ("my_gpu", {"flops", "mlp"}),
        ("pixel3", {"flops", "mlp"}),
        ("titanxp_1", {"flops", "mlp", "few_shot"}),
    ):
        comparison = pd.read_csv(results / "predictors" / target / "comparison.csv")
        assert set(comparison["model"]) == models, target
    train = pd.read_parquet(results / "datasets" / "titanxp_1" / "train.parquet")
    assert len(train) == 10 and train["index"].between(0, 899).all()
    few_shot = load_predictor(results / "predictors" / "titanxp_1" / "few_shot")
    assert few_shot.description["transfer"]["sources"] == ["titanxp_32", "pixel3"]
    # the searched architectures' latency is the table's, beside the few-shot prediction
    pareto = pd.read_csv(results / "pareto" / "titanxp_1" / "pareto.csv")
    assert len(pareto) == 2 and set(pareto["model"]) == {"few_shot"}
    truth = public_table().set_index("arch")["titanxp_1"]
    assert list(pareto["latency_ms"]) == [truth[g] for g in pareto["genotype"]]
    loo = pd.read_csv(results / "transfer" / "small" / "loo.csv")
    # per device: few_shot, few_shot_ridge, few_shot_chosen, alone, flops, and its ceiling
    assert set(loo["device"]) == {"titanxp_1", "titanxp_32", "pixel3"} and len(loo) == 3 * (5 + 1)
    summary = pd.read_csv(results / "transfer" / "small" / "summary.csv")
    assert "mean" in set(summary["device"]) and (results / "transfer" / "small" / "loo.svg").exists()
    assert not Path(tmp_path / "results" / "specs").exists()  # nothing was timed


def test_every_blend_finds_a_device_priced_like_one_source_and_the_default_is_the_ensemble():
    rng = np.random.default_rng(0)
    outputs = rng.normal(size=(400, 1)) + 0.3 * rng.normal(size=(400, 12))  # correlated sources
    y = 0.4 + 1.3 * outputs[:, 7]  # the new device: an affine map of source 7
    for name, blend in BLENDS.items():
        coef, intercept, _ = blend(outputs[:20], y[:20])
        error = np.abs(outputs[20:] @ coef + intercept - y[20:]).mean()
        assert error < (0.05 if name != "mean_shrink" else 0.3), name
    coef, _, info = BLENDS["averaged"](outputs[:20], y[:20])
    assert int(np.argmax(info["weights"])) == 7 and np.argmax(np.abs(coef)) == 7


def test_the_few_shot_blend_is_named_in_its_file_and_an_unknown_one_is_refused(table):
    source = fit_source_model(source_table(table, "titanxp_1", ["1080ti_1", "pixel3"]), 1, QUICK_SOURCE)
    data = network_dataset(table, "titanxp_1", 1, source="public")
    train = data.iloc[sample_pool(data, 10, 0, Protocol())]
    assert fit_few_shot(source, train).description["transfer"]["blend_kind"] == "ensemble"
    with pytest.raises(ValueError, match="blend 'median'"):
        fit_few_shot(source, train, blend="median")
    # chosen labels: n distinct architectures of the pool, the same for the same seed
    for choice in ("diverse", "doptimal"):
        chosen = choose_labels(source, data, 10, choice, 0, Protocol())
        assert len(set(chosen)) == 10 and data.iloc[chosen]["index"].between(0, 899).all(), choice
        np.testing.assert_array_equal(chosen, choose_labels(source, data, 10, choice, 0, Protocol()))
    with pytest.raises(ValueError, match="label choice 'best'"):
        choose_labels(source, data, 10, "best", 0, Protocol())


def test_doptimal_labels_reach_the_extremes_of_the_directions_devices_differ_in():
    rng = np.random.default_rng(0)
    main, minor = rng.uniform(-1, 1, 500), rng.uniform(-1, 1, 500)
    outputs = np.c_[main, main + 0.1 * minor, main - 0.1 * minor, 0.5 * minor]  # four "devices"
    for seed in range(3):
        rows = doptimal_rows(outputs, 6, seed)
        assert len(set(rows)) == 6
        assert np.ptp(main[rows]) > 1.8 and np.ptp(minor[rows]) > 1.6, seed  # both spans nearly whole
        assert np.abs(main[rows]).mean() > 0.6  # at the extremes, not around the middle (0.5 at random)


def test_a_family_is_held_out_whole_with_sources_of_the_other_families_only(table, monkeypatch):
    small = table[["index", "arch", "gold_6240", "silver_4114", "titanxp_1", "pixel3"]]
    assert family_devices(small, "cpu") == ["gold_6240", "silver_4114"]
    seen = []
    original = fit_source_model

    def spy(sources, *args, **kwargs):
        seen.append([c for c in sources.columns if c not in ("index", "arch")])
        return original(sources, *args, **kwargs)

    monkeypatch.setattr("lenna.predictors.transfer.fit_source_model", spy)
    scores = leave_family_out(small, "cpu", [10], [0], Protocol(), QUICK_SOURCE, {"epochs": 5, "hidden": [8]})
    assert seen == [["titanxp_1", "pixel3"]]  # one source model (both CPUs at batch 1), no CPU in it
    assert set(scores["device"]) == {"gold_6240", "silver_4114"} and (scores["split"] == "family:cpu").all()
    with pytest.raises(ValueError, match="device family 'tpu'"):
        family_devices(small, "tpu")
