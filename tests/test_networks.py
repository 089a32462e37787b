"""Whole networks as data and the network model: timing, the dataset, fitting, choosing, the API."""

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from lenna.datasets import feature_columns
from lenna.predictors.composition import fit_network_model, network_dataset, network_metrics, score_networks
from lenna.predictors.model import N_SHAPE, LatencyPredictor, PredictorError, load_predictor
from lenna.predictors.network import (
    PARTS,
    NetworkModel,
    NetworkModelError,
    macro_of_row,
    part_macs,
    structure,
)
from lenna.search.found import anchor_items, anchored_order, found_items, found_latencies, measure_found
from lenna.space import lenna_block
from lenna.space.architectures import architecture_text, published_architectures, random_architecture
from lenna.space.genotype import DARTS_V2
from lenna.space.network import Macro
from lenna.space.spaces import get_space
from lenna.timing.labels import SpecTiming, visit_in_rounds
from lenna.timing.network_plan import NetworkItem, covered, fit_macros, network_plan
from lenna.timing.networks import Reference, measure_networks
from lenna.timing.protocol import Target, TimingProtocol

DARTS = get_space("darts", 4)
MACRO = {
    "input_channels": 1,
    "num_classes": 10,
    "stem_multiplier": 3,
    "input_size": [8],
    "init_channels": [4, 8],
    "layers": [5, 8],
    "search": {"init_channels": 4, "layers": 5, "input_size": 8},
    "final": {"init_channels": 8, "layers": 8, "input_size": 8},
}
HELD_OUT = {"init_channels": 8, "layers": 6, "input_size": 8}


def linear_predictor(op_set="darts", steps=4, per_op=False) -> LatencyPredictor:
    """A real `linear` predictor with fixed weights: every op costs its own small amount per cell
    and edge (0.01-0.1 ms), and every cell 0.2 ms more. ``per_op``: an op costs the same on every
    edge (0.001-0.1 ms) and a cell nothing more, so cells of one op span a wide range."""
    features = feature_columns(op_set, steps)
    coef = np.zeros(len(features))
    coef[N_SHAPE:] = np.random.default_rng(0).uniform(0.01, 0.1, len(features) - N_SHAPE)
    if per_op:
        ops = sorted({f.split("_", 1)[1] for f in features[N_SHAPE:]})
        cost = dict(zip(ops, np.geomspace(0.001, 0.1, len(ops)), strict=True))
        coef[N_SHAPE:] = [cost[f.split("_", 1)[1]] for f in features[N_SHAPE:]]
    description = {
        "format": "lenna-predictor",
        "format_version": 1,
        "model": "elasticnet",
        "kind": "linear",
        "op_set": op_set,
        "steps": steps,
        "features": features,
        "transform": "linear",
        "label": {"mean": 0.0, "std": 1.0},
    }
    weights = {
        "coef": coef,
        "intercept": np.array(0.0 if per_op else 0.2),
        "mean": np.zeros(len(features)),
        "std": np.ones(len(features)),
    }
    return LatencyPredictor(description, weights)


def one_law(macro_name: str, cells: float, parts: float, n_cells: float) -> float:
    return 1.15 * cells + parts + 0.03 * n_cells


def synthetic_networks(
    predictor, seed=0, n_architectures=14, law=one_law, op_concentration=None
) -> pd.DataFrame:
    """Timed-network rows whose latency is ``law`` of the cells, the parts and the number of cells
    (by default 1.15 x cells + parts + 0.03 ms per cell) with 0.5% noise, the parts linear in their
    multiply-accumulates: what the network model should recover. ``op_concentration``: the
    architectures' ops as `network_plan` draws them (None: uniform, a narrow range of latency)."""
    rng = np.random.default_rng(seed)
    settings = {"n_architectures": n_architectures, "seed": 0, "held_out_macro": HELD_OUT}
    if op_concentration is not None:
        settings["op_concentration"] = op_concentration
    items = network_plan(DARTS, MACRO, settings)
    rows = []
    for item in items:
        cells = predictor.predict_cells(item.arch, item.macro, 1)
        macs = part_macs(DARTS, item.macro)
        parts = {f"{p}_ms": 0.01 + 2e-6 * macs[p] if macs[p] else 0.0 for p in macs}
        n_cells = structure(DARTS, item.macro)["n_cells"]
        latency = law(item.macro_name, cells, sum(parts.values()), n_cells) * (
            1 + 0.005 * rng.standard_normal()
        )
        rows.append(
            {
                "name": item.name,
                "group": item.group,
                "network": item.macro_name,
                "genotype": architecture_text(item.arch),
                **{f"macro_{k}": v for k, v in item.macro.__dict__.items()},
                "status": "ok",
                "uncertainty": 0.01,
                "latency_ms": latency,
                "reference_ms": 2.0,
                "batch_size": 1,
                **parts,
            }
        )
    return pd.DataFrame(rows)


SPLIT = {"train": 0.7, "val": 0.15, "test": 0.15}


@pytest.fixture(scope="module")
def fitted():
    predictor = linear_predictor()
    table, summary = network_dataset(synthetic_networks(predictor), 2.0, True, SPLIT, "t.parquet")
    model, inputs = fit_network_model(table, predictor, "t.parquet")
    return predictor, table, summary, model, inputs


def test_a_network_model_keeps_the_macs_of_its_networks_and_predicts_there_without_torch(fitted, tmp_path):
    # The merge counts each network's parts (it builds them); the model fitted on that table is
    # the model fitted on counting them itself, and keeps them per macro: its job, and any
    # prediction at those macros, builds no network and imports no torch.
    predictor, table, _, model, _ = fitted
    raw = synthetic_networks(predictor)
    counted, _ = network_dataset(raw, 2.0, True, SPLIT, "t.parquet", DARTS)
    for _, row in counted.drop_duplicates("network").iterrows():
        macs = part_macs(DARTS, macro_of_row(row))
        assert {p: row[f"{p}_macs"] for p in PARTS} == macs
    kept, _ = fit_network_model(counted, predictor, "t.parquet")
    assert kept.description == model.description
    assert len(kept.description["part_macs"]) == counted["network"].nunique()
    kept.save(tmp_path / "network.json")
    macro = macro_of_row(counted.iloc[0])
    code = (
        "import sys, json; from lenna.predictors.network import NetworkModel;"
        "from lenna.space.network import Macro;"
        "m = NetworkModel.load(sys.argv[1]); x = m.predict(3.0, Macro(**json.loads(sys.argv[2])), 1);"
        "print(json.dumps([x, 'torch' in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "network.json"), json.dumps(macro.__dict__)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [model.predict(3.0, macro, 1), False]


def test_the_plan_times_random_architectures_at_every_macro_of_the_ranges_and_the_published_ones():
    items = network_plan(DARTS, MACRO, {"n_architectures": 3, "seed": 0, "held_out_macro": HELD_OUT})
    random = [i for i in items if i.group == "random"]
    assert len(random) == 3 * 4 and {i.macro for i in random} == set(fit_macros(MACRO))
    assert {i.macro_name for i in random} == {"search", "final", "C4-L8-S8", "C8-L5-S8"}
    assert [i.macro.layers for i in items if i.group == "held_out"] == [6, 6, 6]
    published = [(i.name, i.macro_name) for i in items if i.group == "published"]
    assert sorted(published) == sorted(
        (n, m) for n in ("DARTS_V1", "DARTS_V2", "PC_DARTS") for m in ("search", "final")
    )
    # Search and final the same network: each published architecture once.
    same = {**MACRO, "final": MACRO["search"]}
    assert (
        len(
            [
                i
                for i in network_plan(DARTS, same, {"n_architectures": 1, "seed": 0})
                if i.group == "published"
            ]
        )
        == 3
    )
    assert published_architectures(get_space("lenna", 5)) == {}


def test_op_concentration_draws_networks_dominated_by_one_op_and_leaves_uniform_draws_as_they_were():
    def top_share(arch):
        ops = arch.ops if hasattr(arch, "ops") else [op for op, _ in arch.normal + arch.reduce]
        return Counter(ops).most_common(1)[0][1] / len(ops)

    nb201 = get_space("nb201", 3)
    nb201_macro = {**MACRO, "stem_multiplier": 1}
    uniform = network_plan(nb201, nb201_macro, {"n_architectures": 40, "seed": 0})
    unset = network_plan(nb201, nb201_macro, {"n_architectures": 40, "seed": 0, "op_concentration": None})
    assert [i.arch for i in uniform] == [i.arch for i in unset]
    for space, macro in ((nb201, nb201_macro), (DARTS, MACRO)):
        drawn = {}
        for concentration in (None, 0.05):
            settings = {"n_architectures": 40, "seed": 0, "op_concentration": concentration}
            archs = [i.arch for i in network_plan(space, macro, settings) if i.group == "random"]
            drawn[concentration] = np.mean([top_share(a) for a in archs])
        assert drawn[0.05] > 0.8 > 0.6 > drawn[None]
    nb201_archs = [i.arch for i in network_plan(nb201, nb201_macro, settings) if i.group == "random"]
    assert any(set(a.ops) == {"none"} for a in nb201_archs)  # the cheap extreme a search ends in
    lenna = get_space("lenna", 5)
    rng = np.random.default_rng(0)
    for _ in range(20):  # every edge keeps to the ops it may hold
        arch = random_architecture(rng, lenna.op_set, lenna.steps, 0.05)
        for block, reduction in ((arch.normal, False), (arch.reduce, True)):
            allowed = lenna_block.op_mask(reduction)
            assert all(allowed[e, lenna_block.OPS.index(op)] for e, op in enumerate(block))


def test_a_held_out_macro_must_have_cells_the_ranges_cover():
    macro = Macro(init_channels=8, layers=6, input_size=8, input_channels=1)
    assert covered(DARTS, macro, MACRO)
    assert not covered(DARTS, Macro(init_channels=6, layers=5, input_size=8, input_channels=1), MACRO)
    assert not covered(DARTS, Macro(init_channels=4, layers=4, input_size=8, input_channels=1), MACRO)


def test_networks_are_timed_by_the_cells_protocol_with_their_parts():
    protocol = TimingProtocol(warmup=1, repeats=2, rounds=2, retime_rounds=1, retime_budget_s=2)
    tiny = {
        **MACRO,
        "init_channels": [2],
        "layers": [3],
        "search": {"init_channels": 2, "layers": 3, "input_size": 8},
    }
    tiny["final"] = tiny["search"]
    nb201 = get_space("nb201", 3)
    tiny_nb201 = {**tiny, "stem_multiplier": 1}
    target = Target("cpu", batch_size=1, threads=1, dtype="float32")
    device = torch.device("cpu")
    for space, macro in ((DARTS, tiny), (nb201, tiny_nb201)):
        items = network_plan(space, macro, {"n_architectures": 2, "seed": 0})
        shape = space.cell_shapes(items[0].macro)[0]
        rows = measure_networks(
            items, target, "cpu", device, protocol, Reference(shape, space.ops, space.steps)
        )
        assert len(rows) == len(items) and set(rows["status"]) <= {"ok", "unstable"}
        assert (rows["latency_ms"] > rows["stem_ms"] + rows["head_ms"]).all() and (rows["stem_ms"] > 0).all()
        assert (rows["n_visits"] >= 2).all() and (rows["reference_ms"] > 0).all()
        assert rows["replicates_ms"].map(len).min() >= 4  # 2 rounds x 2 passes
        # the reference ticks before every network visit: a job of few networks still has many
        assert len(rows["reference_ticks_ms"].iloc[0]) == rows["n_visits"].sum()
        assert {"torch_version", "host", "threads", "timer", "measured_at"} <= set(rows.columns)
        assert ((rows["blocks_ms"] > 0) == (space.name == "nb201")).all()  # residual blocks: nb201 only


def test_a_network_jobs_rounds_are_spread_over_its_span_and_back_to_back_without_one():
    class Clock:
        def tick(self):
            pass

    protocol = TimingProtocol(rounds=3, retime_rounds=0)
    for span_s in (0.0, 0.6):
        starts: list[float] = []
        visit = starts.append
        timings = [SpecTiming("discrete")]
        visit_in_rounds(timings, lambda i, v=visit: v(time.perf_counter()), Clock(), protocol, span_s)
        assert len(starts) == 3
        gaps = np.diff(starts)
        if span_s:  # round r starts at least r / (rounds - 1) of the span after the first
            assert starts[1] - starts[0] >= 0.3 and starts[2] - starts[0] >= 0.6, gaps
        else:
            assert gaps.max() < 0.3, gaps


def test_retiming_rounds_are_spaced_by_the_protocols_gap_within_the_budget_and_else_back_to_back():
    class Clock:
        def tick(self):
            pass

    protocol = TimingProtocol(rounds=3, retime_rounds=4, retime_tolerance=0.1, retime_budget_s=0.5)
    for gap in (0.0, 0.15):
        timing, starts = SpecTiming("discrete"), []

        def visit(_i, timing=timing, starts=starts):  # visits 1 ms, then 2 ms: never stable
            starts.append(time.perf_counter())
            timing.visits.append(np.array([1.0 if not timing.visits else 2.0]))

        out = visit_in_rounds([timing], visit, Clock(), replace(protocol, retime_gap_s=gap))
        retimes = np.array(starts[3:])
        if gap:  # due at +0.15, +0.30, +0.45 s; +0.60 s is past the budget
            assert out["retime_rounds_run"] == 3 and len(retimes) == 3
            assert np.diff(retimes).min() >= 0.14 and out["retime_s"] < 0.6
        else:
            assert out["retime_rounds_run"] == 4 and np.ptp(retimes) < 0.1


def test_the_network_dataset_calibrates_splits_and_leaves_out_unstable_networks():
    predictor = linear_predictor()
    measured = synthetic_networks(predictor, n_architectures=4)
    measured.loc[0, "status"] = "unstable"
    table, summary = network_dataset(measured, 1.0, True, SPLIT, "m.parquet")
    assert summary["n_unstable"] == 1 and len(table) == len(measured) - 1
    # Reference 2 ms against the cell jobs' 1 ms: the job ran at half speed, labels halve.
    assert table["latency_ms"].to_numpy() == pytest.approx(measured["latency_ms"].to_numpy()[1:] / 2)
    assert table["stem_ms"].to_numpy() == pytest.approx(measured["stem_ms"].to_numpy()[1:] / 2)
    random = table["group"] == "random"
    assert set(table.loc[random, "split"]) <= {"train", "val", "test"}
    assert (table.loc[~random, "split"] == table.loc[~random, "group"]).all()
    again, _ = network_dataset(measured, 1.0, True, SPLIT, "m.parquet")
    assert again["split"].tolist() == table["split"].tolist()  # by a hash: the same every time
    uncalibrated, _ = network_dataset(measured, 1.0, False, SPLIT, "m.parquet")
    assert uncalibrated["latency_ms"].tolist() == measured["latency_ms"].tolist()[1:]


def test_bad_network_tables_are_errors_naming_the_file():
    predictor = linear_predictor()
    measured = synthetic_networks(predictor, n_architectures=2)
    with pytest.raises(NetworkModelError, match=r"m\.parquet: .*lacks column\(s\) \['latency_ms'\]"):
        network_dataset(measured.drop(columns=["latency_ms"]), 1.0, True, SPLIT, "m.parquet")
    table, _ = network_dataset(measured, 1.0, True, SPLIT, "m.parquet")
    with pytest.raises(NetworkModelError, match=r"n\.parquet: 1 network\(s\) with a non-positive"):
        fit_network_model(
            table.assign(latency_ms=[-1.0] + table["latency_ms"].tolist()[1:]), predictor, "n.parquet"
        )
    with pytest.raises(NetworkModelError, match=r"n\.parquet: no training networks"):
        fit_network_model(table.assign(split="test"), predictor, "n.parquet")


def test_the_network_model_is_fitted_and_chosen_by_its_error_on_macros_it_was_not_fitted_on(fitted):
    _, table, summary, model, inputs = fitted
    assert summary["by_split"]["train"] > 10 and summary["by_split"]["val"] > 0
    candidates = model.description["candidates"]
    assert set(candidates) == {"sum", "affine", "overhead", "features"}
    assert model.chosen != "sum"
    assert model.description["chosen_by"] == "leave-one-macro-out median_ape (train and val networks)"
    fitting = table[table["split"].isin(["train", "val"])]
    assert candidates["sum"]["selection"]["n"] == len(fitting)  # every macro held out once
    best = min(c["selection"]["median_ape"] for c in candidates.values())
    # the simpler within half a point
    assert candidates[model.chosen]["selection"]["median_ape"] <= best + 0.005
    assert candidates["sum"]["selection"]["median_ape"] > 0.1  # the plain sum misses the 15% and the overhead
    scored = score_networks(table, model, inputs)
    metrics = network_metrics(scored, model)
    # Networks the model never saw, the held-out macro and published architectures among them.
    assert metrics["within_10pct"] == 1.0 and metrics["sum"]["within_10pct"] < 0.2
    assert metrics["by_split"]["held_out"]["model"]["median_ape"] < 0.03
    assert set(metrics["by_split"]) >= {"train", "val", "test", "held_out", "published"}
    # The parts are learned from their timings: predicted without a device.
    parts = model.parts_ms(Macro(init_channels=8, layers=6, input_size=8, input_channels=1))
    macs = part_macs(DARTS, Macro(init_channels=8, layers=6, input_size=8, input_channels=1))
    assert parts["stem"] == pytest.approx(0.01 + 2e-6 * macs["stem"], rel=0.02) and parts["blocks"] == 0.0
    # One law at every macro: no macro gets a calibration of its own.
    assert model.description["macros"] and not any(m["used"] for m in model.description["macros"].values())


def test_a_macro_whose_networks_follow_their_own_law_gets_its_own_calibration():
    """Where the cell predictor errs by a share of the cells' latency at one macro (as
    NAS-Bench-201's does by resolution), no pooled form fits every macro; that macro's own scale on
    the pooled model does, and is kept where cross-validation over architectures says so. Its
    networks span a narrow range of latency, so it gets a scale and no offset."""

    def by_macro(name, cells, parts, n_cells):
        return one_law(name, cells, parts, n_cells) * (0.85 if name == "search" else 1.0)

    predictor = linear_predictor()
    raw = synthetic_networks(predictor, n_architectures=24, law=by_macro)
    table, _ = network_dataset(raw, 2.0, True, SPLIT, "t.parquet")
    model, inputs = fit_network_model(table, predictor, "t.parquet")
    macros = model.description["macros"]
    assert set(macros) == set(table.loc[table["split"].isin(["train", "val"]), "network"])
    assert {m["form"] for m in macros.values()} == {"scale"} and set(macros["search"]["forms"]) == {"scale"}
    own = macros["search"]["selection"]
    assert macros["search"]["used"] and own["own"]["median_ape"] < 0.02 < 0.05 < own["pooled"]["median_ape"]
    search = Macro(**macros["search"]["macro"])
    k, m = model.affine(search, 1)
    pooled = NetworkModel({**model.description, "macros": {}}).affine(search, 1)
    assert (k, m) == pytest.approx(
        (macros["search"]["params"]["scale"] * pooled[0], macros["search"]["params"]["scale"] * pooled[1])
    )
    assert model.name_at(search) == f"{model.chosen}, own calibration at this macro"
    # Networks the model never saw at the fitting macros are priced by their macro's calibration;
    # at the held-out macro, which has none, by the pooled model.
    metrics = network_metrics(score_networks(table, model, inputs), model)
    assert metrics["by_split"]["test"]["model"]["within_10pct"] == 1.0
    assert metrics["by_network"]["search"]["model"]["median_ape"] < 0.02
    held = Macro(
        **{
            k[6:]: int(v)
            for k, v in table[table["split"] == "held_out"].iloc[0].items()
            if k.startswith("macro_")
        }
    )
    assert model.own_calibration(held) is None and model.name_at(held) == model.chosen
    # The search macro's law is its own: its sibling of the same cells (C4-L8-S8) does not share
    # it, so no calibration is lent to macros without networks.
    lending = model.description["lending"]
    assert ["search", "C4-L8-S8"] in lending["pairs"] and not lending["used"]
    assert lending["selection"]["borrowed"]["median_ape"] > lending["selection"]["pooled"]["median_ape"]
    # Stored with the model and read back; a file of the earlier format, whose own calibrations
    # had no form, is a clear error.
    assert NetworkModel(json.loads(json.dumps(model.description))).affine(search, 1) == (k, m)


def test_a_macro_without_networks_borrows_the_calibration_of_the_same_cells_where_siblings_share_it():
    """Where the cell predictor errs at one set of cell shapes (NAS-Bench-201's at one resolution),
    every network of those cells shares the error, however many cells it stacks. The fitting macros
    of the same cells show it (each predicted by its sibling's calibration better than by the pooled
    model); then a macro with no networks of its own, the held-out one, is priced by the calibration
    of its nearest sibling in layers."""

    def by_cells(name, cells, parts, n_cells):
        eight = name in ("final", "C8-L5-S8", "held_out")  # the networks of 8 channels
        return one_law(name, cells, parts, n_cells) * (0.8 if eight else 1.0)

    predictor = linear_predictor()
    raw = synthetic_networks(predictor, n_architectures=24, law=by_cells)
    table, _ = network_dataset(raw, 2.0, True, SPLIT, "t.parquet")
    model, inputs = fit_network_model(table, predictor, "t.parquet")
    lending = model.description["lending"]
    assert lending["used"] and ["C8-L5-S8", "final"] in lending["pairs"]
    # Networks measured 20% under their predicted cells' sum: no floor at that sum.
    assert not model.floored and model.description["floor_check"]["share_under"] > 0.05
    assert (
        lending["selection"]["borrowed"]["median_ape"] < 0.02 < lending["selection"]["pooled"]["median_ape"]
    )
    held = Macro(init_channels=8, layers=6, input_size=8, input_channels=1)
    entry = model.own_calibration(held)
    assert entry["name"] == "C8-L5-S8"  # of 5 and 8 layers, 5 is nearer 6
    assert model.name_at(held) == f"{model.chosen}, calibration of C8-L5-S8 (the same cells)"
    assert "lent to macros of the same cells" in model.name
    metrics = network_metrics(score_networks(table, model, inputs), model)
    assert metrics["by_split"]["held_out"]["model"]["within_10pct"] == 1.0
    assert metrics["by_split"]["held_out"]["model"]["median_ape"] < 0.02
    # Without lending, the pooled model (a compromise between both laws) misses the held-out macro.
    alone = NetworkModel({**model.description, "lending": {"used": False}})
    assert alone.own_calibration(held) is None
    unlent = network_metrics(score_networks(table, alone, inputs), alone)
    assert unlent["by_split"]["held_out"]["model"]["median_ape"] > 0.05
    # With one fitting macro of each set of cells there is no evidence either way: the cells'
    # shapes decide, and the held-out macro takes the calibration of `final` (8 channels).
    one_each = table[~table["network"].isin(["C4-L8-S8", "C8-L5-S8"])].reset_index(drop=True)
    model, inputs = fit_network_model(one_each, predictor, "t.parquet")
    assert model.description["lending"] == {"used": True, "pairs": [], "selection": None}
    assert model.own_calibration(held)["name"] == "final"
    metrics = network_metrics(score_networks(one_each, model, inputs), model)
    assert metrics["by_split"]["held_out"]["model"]["median_ape"] < 0.02


def test_a_macro_whose_networks_span_a_wide_range_may_get_an_offset_of_its_own(tmp_path):
    """Networks of nearly one op each span a wide range of latency at every macro: there a macro
    whose networks cost a fixed amount more or less than the pooled law gets an ``affine``
    calibration of its own (scale and offset), where a scale alone cannot fit both its cheap and
    its slow networks."""

    def by_macro(name, cells, parts, n_cells):
        return 0.9 * cells + parts + 0.4 if name == "search" else 1.3 * cells + parts

    predictor = linear_predictor(per_op=True)
    raw = synthetic_networks(predictor, n_architectures=24, law=by_macro, op_concentration=0.1)
    table, _ = network_dataset(raw, 2.0, True, SPLIT, "t.parquet")
    fitting = table[table["split"].isin(["train", "val"]) & (table["network"] == "search")]
    low, high = fitting["latency_ms"].quantile([0.1, 0.9])
    assert high >= 2 * low  # the wide range the offset needs
    model, inputs = fit_network_model(table, predictor, "t.parquet")
    search = model.description["macros"]["search"]
    assert search["used"] and search["form"] == "affine" and set(search["forms"]) == {"scale", "affine"}
    assert search["forms"]["affine"]["median_ape"] < search["forms"]["scale"]["median_ape"]
    assert search["params"]["a"] == pytest.approx(0.9, rel=0.03)
    metrics = network_metrics(score_networks(table, model, inputs), model)
    assert metrics["by_network"]["search"]["model"]["median_ape"] < 0.01
    # A network.json of the earlier format (own calibrations without a form) is a clear error.
    old = {**model.description, "format_version": 1}
    old["macros"] = {k: {kk: vv for kk, vv in v.items() if kk != "form"} for k, v in old["macros"].items()}
    (tmp_path / "network.json").write_text(json.dumps(old))
    with pytest.raises(
        NetworkModelError, match="network.json: written by an older lenna .*network_model rule"
    ):
        NetworkModel.load(tmp_path / "network.json")


def test_predict_network_loads_from_files_without_a_device(fitted, tmp_path):
    predictor, _, _, model, _ = fitted
    predictor.save(tmp_path / "p")
    macro = Macro(init_channels=8, layers=8, input_size=8, input_channels=1)
    with pytest.raises(PredictorError, match=r"no network model \(network.json\)"):
        load_predictor(tmp_path / "p").predict_network(DARTS_V2, macro, 1)
    model.description["predictor_weights_sha256"] = json.loads((tmp_path / "p" / "model.json").read_text())[
        "weights_sha256"
    ]
    model.save(tmp_path / "p" / "network.json")
    loaded = load_predictor(tmp_path / "p")
    cells = loaded.predict_cells(DARTS_V2, macro, 1)
    whole = loaded.predict_network(DARTS_V2, macro, 1)
    assert whole == pytest.approx(NetworkModel.load(tmp_path / "p" / "network.json").predict(cells, macro, 1))
    assert whole > 1.1 * cells
    with pytest.raises(NetworkModelError, match="batch size 1, asked for 8"):
        loaded.predict_network(DARTS_V2, macro, 8)
    # The search's latency term: the same composition, differentiable in the alphas.
    alphas = [torch.zeros(14, 8, requires_grad=True) for _ in range(2)]
    latency = loaded.expected_network_latency(*alphas, macro, 1)
    k, m = loaded.network_model().affine(macro, 1)
    assert latency.item() == pytest.approx(k * loaded.expected_cells_latency(*alphas, macro, 1).item() + m)
    latency.backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in alphas)
    # A network model fitted for other weights is refused, naming the file.
    (tmp_path / "p" / "network.json").write_text(
        (tmp_path / "p" / "network.json")
        .read_text()
        .replace(model.description["predictor_weights_sha256"], "0" * 64)
    )
    with pytest.raises(PredictorError, match="network.json was fitted for other weights"):
        load_predictor(tmp_path / "p").predict_network(DARTS_V2, macro, 1)
    (tmp_path / "p" / "network.json").write_text("{not json")
    with pytest.raises(PredictorError, match="network.json: not valid JSON"):
        load_predictor(tmp_path / "p").predict_network(DARTS_V2, macro, 1)


def test_networks_of_one_macro_choose_the_network_model_on_the_validation_networks(fitted):
    predictor, table, _, _, _ = fitted
    keys = table["network"].to_numpy()
    one = table[
        (keys == keys[(table["split"] == "train").to_numpy()][0]) | ~table["split"].isin(["train", "val"])
    ]
    assert set(one["split"]) >= {"train", "val"}
    model, _ = fit_network_model(one, predictor, "t.parquet")
    assert model.description["chosen_by"] == "val median_ape"
    candidates = model.description["candidates"]
    assert candidates["sum"]["selection"]["n"] == (one["split"] == "val").sum()


def test_a_network_model_whose_latency_falls_as_its_cells_get_slower_is_never_chosen(fitted):
    predictor, table, _, _, inputs = fitted
    cells = inputs["cells_ms"].to_numpy()
    backwards = table.assign(latency_ms=1.5 * cells.max() - cells)  # as a few noisy networks can fit
    model, _ = fit_network_model(backwards, predictor, "t.parquet")
    candidates = model.description["candidates"]
    assert candidates["affine"]["params"]["a"] < 0  # the best fit, by error, falls with the cells
    chosen = model.description["chosen"]
    params = candidates[chosen]["params"]
    scale = {"sum": 1.0, "affine": params.get("a"), "overhead": params.get("a")}.get(chosen)
    assert (scale if scale is not None else params["weights"]["cells_ms"]) > 0


def test_the_found_networks_of_a_sweep_are_timed_together_once_per_architecture(fitted):
    predictor, _, _, model, _ = fitted
    predictor = LatencyPredictor(predictor.description, predictor.weights, _network=model)
    macro = {"init_channels": 2, "layers": 3, "input_size": 8, "input_channels": 1}
    other = random_architecture(np.random.default_rng(1), DARTS.op_set, DARTS.steps)
    archs = {"a/genotype.json": DARTS_V2, "b/genotype.json": other, "c/genotype.json": DARTS_V2}
    items, item_of = found_items(archs, Macro(**macro))
    assert [i.name for i in items] == ["a/genotype.json", "b/genotype.json"]
    assert item_of == {"a/genotype.json": 0, "b/genotype.json": 1, "c/genotype.json": 0}
    protocol = TimingProtocol(warmup=1, repeats=2, rounds=2, retime_rounds=1, retime_budget_s=2)
    target = Target("cpu", batch_size=1, threads=1, dtype="float32")
    shape = DARTS.cell_shapes(Macro(**macro))[0]
    rows = measure_networks(
        items, target, "cpu", torch.device("cpu"), protocol, Reference(shape, DARTS.ops, DARTS.steps)
    )
    nominal = 2 * float(rows["reference_ms"].iloc[0])  # the cell jobs ran at half this job's speed
    out = found_latencies(items, rows, nominal, predictor, target, "cpu", macro)
    assert [o["networks_in_job"] for o in out] == [2, 2] and out[0]["speed_factor"] == pytest.approx(0.5)
    assert out[1]["latency_ms"] == pytest.approx(2 * rows["latency_ms"].iloc[1])
    at = Macro(**macro)
    assert out[0]["predicted_latency_ms"] == pytest.approx(predictor.predict_network(DARTS_V2, at, 1))
    assert out[0]["predicted_cells_ms"] == pytest.approx(predictor.predict_cells(DARTS_V2, at, 1))
    # Networks the network stage labelled, timed beside the found ones, calibrate the job where
    # they were timed: the stage's labels over their timings now, not the reference cell.
    stage = rows.assign(group="random", name=["n0", "n1"], latency_ms=rows["latency_ms"] / 0.8)
    anchors, labels = anchor_items(stage, at)
    assert {a.name for a in anchors} == {"anchor:n0", "anchor:n1"} and {a.group for a in anchors} == {
        "anchor"
    }
    timed = measure_found(
        items, anchors, target, "cpu", torch.device("cpu"), protocol, Reference(shape, DARTS.ops, DARTS.steps)
    )
    # timed with the anchors among the found networks, returned found first, anchors last
    assert list(timed["name"]) == [*(i.name for i in items), *(a.name for a in anchors)]
    # An anchor whose visits disagreed (a busy host) is left out of the job's speed.
    timed["status"] = ["ok", "ok", "ok", "unstable"]
    out = found_latencies(items, timed, nominal, predictor, target, "cpu", macro, labels)
    ratios = timed["latency_ms"].to_numpy()[2:3] / labels[:1]
    assert out[0]["speed_from"] == "anchors" and out[0]["anchor_speed_factors"] == pytest.approx(
        ratios, abs=1e-4
    )
    assert out[0]["speed_factor"] == pytest.approx(np.median(ratios))
    assert out[1]["latency_ms"] == pytest.approx(timed["latency_ms"].iloc[1] / np.median(ratios))
    assert out[0]["reference_speed_factor"] == pytest.approx(timed["reference_ms"].iloc[0] / nominal)
    assert [o["networks_in_job"] for o in out] == [4, 4]
    # Without calibration the labels stay as timed.
    plain = found_latencies(items, timed, None, predictor, target, "cpu", macro, labels)
    assert plain[1]["latency_ms"] == timed["latency_ms"].iloc[1] and plain[1]["speed_from"] == "none"
    rows.loc[1, ["status", "error"]] = ["failed", "out of memory"]
    with pytest.raises(RuntimeError, match="b/genotype.json: the found network could not be timed: out of"):
        found_latencies(items, rows, nominal, predictor, target, "cpu", macro)


def test_the_found_job_spaces_its_retiming_rounds_half_a_rounds_spacing_apart(monkeypatch):
    import lenna.search.found as found

    seen = {}

    def fake(visits, target, device_str, device, protocol, reference, span_s):
        seen.update(protocol=protocol, span_s=span_s)
        return pd.DataFrame({"name": [v.name for v in visits]})

    monkeypatch.setattr(found, "measure_networks", fake)
    items = [NetworkItem(f"n{i}", arch=None, macro_name="final", macro=None, group="found") for i in range(3)]
    protocol = TimingProtocol(rounds=3, retime_budget_s=60)
    rows = measure_found(items, [], Target("cpu", 1, 1), "cpu", None, protocol, None, span_s=90)
    assert list(rows["name"]) == ["n0", "n1", "n2"] and seen["span_s"] == 90
    assert seen["protocol"] == replace(protocol, retime_gap_s=22.5)  # re-timing at +22.5 s and +45 s


def test_the_anchors_are_random_networks_of_the_stage_at_the_final_macro_spread_over_its_range():
    final = Macro(init_channels=8, layers=8, input_size=8, input_channels=1)
    other = Macro(init_channels=4, layers=5, input_size=8, input_channels=1)
    arch = architecture_text(DARTS_V2)
    rows = [
        {"name": f"random-{k}", "group": "random", "genotype": arch, "latency_ms": 1.0 + k, "macro": final}
        for k in range(10)
    ]
    rows += [
        {"name": "random-0", "group": "random", "genotype": arch, "latency_ms": 50.0, "macro": other},
        {"name": "DARTS_V2", "group": "published", "genotype": arch, "latency_ms": 0.5, "macro": final},
    ]
    table = pd.DataFrame(
        [{**{f"macro_{k}": v for k, v in r.pop("macro").__dict__.items()}, **r} for r in rows]
    ).sample(frac=1.0, random_state=0)
    anchors, labels = anchor_items(table, final, n=4)
    assert labels.tolist() == [1.0, 4.0, 7.0, 10.0]  # evenly by rank, the cheapest and slowest among them
    assert [a.name for a in anchors] == [
        "anchor:random-0",
        "anchor:random-3",
        "anchor:random-6",
        "anchor:random-9",
    ]
    assert anchor_items(table, final)[1].tolist() == [1.0, 3.0, 5.0, 6.0, 8.0, 10.0]  # ANCHORS: 6
    assert all(a.macro == final and architecture_text(a.arch) == arch for a in anchors)
    assert anchor_items(table, final, n=20)[1].tolist() == [1.0 + k for k in range(10)]
    assert anchor_items(table, Macro(init_channels=16, layers=8, input_size=8, input_channels=1))[0] == []


def test_a_found_networks_job_visits_its_anchors_spread_among_the_found_networks():
    # 12 found networks (0-11) and 4 anchors (12-15): an anchor in every quarter of a round
    assert anchored_order(12, 4) == [0, 1, 12, 2, 3, 4, 13, 5, 6, 7, 14, 8, 9, 10, 15, 11]
    assert anchored_order(3, 0) == [0, 1, 2] and anchored_order(0, 2) == [0, 1]
    assert anchored_order(5, 2) == [0, 5, 1, 2, 3, 6, 4]
    assert anchored_order(2, 6) == [2, 0, 3, 4, 5, 1, 6, 7]  # more anchors than found networks


def test_no_network_is_priced_below_its_cells_and_parts(fitted, tmp_path):
    # A composition fitted for the median network can price the cheapest below the plain sum of
    # its cells and parts (a negative offset), which no timed network of ours took.
    predictor, table, _, model, inputs = fitted
    assert model.floored
    scored = score_networks(table, model, inputs)
    assert (scored["predicted_ms"] >= scored["predicted_sum_ms"] - 1e-12).all()
    macro = Macro(init_channels=8, layers=8, input_size=8, input_channels=1)
    parts = sum(model.parts_ms(macro).values())
    offset = {**model.description, "chosen": "affine", "macros": {}, "lending": {"used": False}}
    offset["candidates"] = {**model.description["candidates"], "affine": {"params": {"a": 1.2, "b": -1.0}}}
    cheap = NetworkModel(offset)
    assert cheap.predict(0.5, macro, 1) == pytest.approx(0.5 + parts)  # not 1.2 (0.5 + parts) - 1
    assert cheap.predict(50.0, macro, 1) == pytest.approx(1.2 * (50 + parts) - 1)  # above the floor
    unfloored = NetworkModel({**offset, "floor": "none"})  # as fitted where the networks deny it
    assert unfloored.predict(0.5, macro, 1) == pytest.approx(1.2 * (0.5 + parts) - 1)
    # The search's latency term is floored alike and stays differentiable in the cells.
    cells = torch.tensor([0.5, 50.0], dtype=torch.float64, requires_grad=True)
    latency = cheap.predict(cells, macro, 1)
    assert latency.tolist() == pytest.approx([0.5 + parts, 1.2 * (50 + parts) - 1])
    latency.sum().backward()
    assert cells.grad.tolist() == pytest.approx([1.0, 1.2])
