import numpy as np
import pandas as pd
import pytest

from lenna.io import write_parquet
from lenna.space.cell import CellShape, edge_list
from lenna.space.nb201 import Arch
from lenna.space.network import Macro, cell_shapes
from lenna.space.ops import NONE, OP_SETS
from lenna.space.specs import (
    prob_columns,
    sample_specs,
    sampling_plan,
    spec_id,
    spec_ids,
    spec_probs,
    spec_shape,
)

OPS = OP_SETS["darts"]
CONFIG = {
    "search_space": {"op_set": "darts", "steps": 4},
    "macro": {
        "input_channels": 1,
        "stem_multiplier": 3,
        "input_size": [8, 16],
        "init_channels": [4, 8],
        "layers": [3, 5],
    },
    "sampling": {
        "samplers": {"discrete": 0.4, "derived": 0.2, "soft": 0.4},
        "soft_concentration": [0.01, 20.0],
    },
}


@pytest.fixture(scope="module")
def plan():
    return sampling_plan(CONFIG)


@pytest.fixture(scope="module")
def specs(plan):
    return sample_specs(plan, seed=7, start=0, stop=300)


def test_same_seed_and_config_give_byte_identical_shards(plan, tmp_path):
    write_parquet(sample_specs(plan, 3, 0, 50), tmp_path / "a.parquet")
    write_parquet(sample_specs(plan, 3, 0, 50), tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    write_parquet(sample_specs(plan, 4, 0, 50), tmp_path / "c.parquet")
    assert (tmp_path / "a.parquet").read_bytes() != (tmp_path / "c.parquet").read_bytes()


def test_a_spec_depends_on_seed_and_index_only_so_shards_can_grow(plan):
    whole = sample_specs(plan, 1, 0, 40)
    pieces = pd.concat([sample_specs(plan, 1, 0, 15), sample_specs(plan, 1, 15, 40)], ignore_index=True)
    pd.testing.assert_frame_equal(whole, pieces)


def test_spec_id_is_derived_from_content(specs):
    assert specs["spec_id"].is_unique
    row = specs.iloc[0]
    probs = spec_probs(row, OPS, 4)
    shape = spec_shape(row)
    assert spec_id("darts", 4, shape, probs, row["label_kind"]) == row["spec_id"]
    nudged = probs.copy()
    nudged[0, 0] = np.nextafter(nudged[0, 0], 2.0)
    assert spec_id("darts", 4, shape, nudged, row["label_kind"]) != row["spec_id"]


def test_spec_ids_stay_those_every_stored_timing_is_keyed_by():
    # A changed id would orphan every cached timing and move specs between splits.
    shape = CellShape(False, True, 8, 16, 16, 8, 8)
    uniform = np.full((14, 8), 1 / 8)
    assert spec_id("darts", 4, shape, uniform, "expected") == "b0d81fc6fabab7ee"
    assert spec_id("darts", 4, shape, uniform.astype(np.float32) * 0.7, "expected") == "0f021e15b7a20bd5"
    cell = Arch.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|")
    assert spec_id("nb201", 3, shape, cell.probs(), "discrete") == "550b96e68d07a3a7"
    many = np.stack([uniform, uniform * 0.5, np.eye(8)[np.arange(14) % 8]])
    one_by_one = [spec_id("darts", 4, shape, p, "discrete") for p in many]
    assert spec_ids("darts", 4, shape, many, "discrete") == one_by_one


def test_shapes_are_exactly_those_the_macro_range_produces(specs):
    expected = {
        s
        for c in (4, 8)
        for n in (3, 5)
        for size in (8, 16)
        for s in cell_shapes(Macro(c, n, size, input_channels=1))
    }
    seen = {spec_shape(row) for _, row in specs.iterrows()}
    assert seen <= expected
    assert len(seen) > 0.8 * len(expected)


def test_every_edge_holds_a_probability_distribution(specs):
    probs = specs[prob_columns(OPS, 4)].to_numpy().reshape(len(specs), 14, len(OPS))
    assert np.all(probs >= 0)
    assert np.allclose(probs.sum(axis=2), 1.0)


def test_discrete_cells_are_one_hot_and_derived_cells_keep_two_inputs_per_node(specs):
    pairs = edge_list(4)
    for _, row in specs[specs["label_kind"] == "discrete"].iterrows():
        probs = spec_probs(row, OPS, 4)
        assert set(np.unique(probs)) <= {0.0, 1.0}
        if row["sampler"] == "derived":
            live = probs[:, OPS.index(NONE)] == 0
            for node in range(4):
                assert sum(live[k] for k, (n, _) in enumerate(pairs) if n == node) == 2


def test_soft_cells_range_from_near_uniform_to_near_one_hot(specs):
    soft = specs[specs["sampler"] == "soft"]
    assert (soft["label_kind"] == "expected").all()
    peak = np.array([spec_probs(r, OPS, 4).max(axis=1).mean() for _, r in soft.iterrows()])
    assert peak.min() < 0.3  # near uniform (1/8 = 0.125)
    assert peak.max() > 0.9  # near one-hot


def test_sampler_shares_follow_the_config(specs):
    shares = specs["sampler"].value_counts(normalize=True)
    assert abs(shares["discrete"] - 0.4) < 0.1
    assert abs(shares["derived"] - 0.2) < 0.1
    assert abs(shares["soft"] - 0.4) < 0.1


def test_the_order_of_the_sampler_shares_in_the_config_does_not_change_the_specs(plan):
    reordered = {
        **CONFIG,
        "sampling": {**CONFIG["sampling"], "samplers": {"soft": 0.4, "derived": 0.2, "discrete": 0.4}},
    }
    pd.testing.assert_frame_equal(
        sample_specs(plan, 5, 0, 60), sample_specs(sampling_plan(reordered), 5, 0, 60)
    )


def test_skewed_cells_are_discrete_and_range_from_one_op_everywhere_to_mixed():
    nb201 = {
        "search_space": {"name": "nb201", "op_set": "nb201", "steps": 3},
        "macro": {**CONFIG["macro"], "stem_multiplier": 1},
        "sampling": {"samplers": {"skewed": 1.0}, "soft_concentration": [0.01, 20.0]},
    }
    ops = OP_SETS["nb201"]
    skewed = sample_specs(sampling_plan(nb201), seed=3, start=0, stop=300)
    assert (skewed["sampler"] == "skewed").all() and (skewed["label_kind"] == "discrete").all()
    probs = [spec_probs(r, ops, 3) for _, r in skewed.iterrows()]
    assert all(set(np.unique(p)) <= {0.0, 1.0} for p in probs)
    top = np.array([np.bincount(p.argmax(axis=1), minlength=len(ops)).max() / len(p) for p in probs])
    assert (top == 1.0).mean() > 0.3 and (top <= 0.5).any()  # one op on every edge, and mixed cells
    # All-none cells, the cheap extreme a search ends in, are among them; uniform draws give 1 in 15,625.
    assert sum((p[:, ops.index(NONE)] == 1).all() for p in probs) >= 10
