import numpy as np
import pytest
import torch

from lenna.space.build import build_network
from lenna.space.cell import CellShape, edge_list
from lenna.space.genotype import DARTS_V2, Genotype, GenotypeError
from lenna.space.layers import OPS, Cell, Network, count_parameters, make_op
from lenna.space.network import Macro, cell_shapes, reduction_layers
from lenna.space.ops import CELL_OPS, NONE, OP_SETS

DARTS_OPS = OP_SETS["darts"]


def test_darts_v2_at_36_channels_20_layers_has_the_reference_parameter_count():
    # The DARTS reference reports 3.3M (3.349342 MB without the auxiliary head) for DARTS_V2.
    net = build_network(
        DARTS_V2, Macro(init_channels=36, layers=20, input_size=32, input_channels=3, num_classes=10)
    )
    assert count_parameters(net) == 3_349_342


def test_darts_v2_network_classifies_a_batch_at_any_macro_setting():
    for macro in [Macro(8, 5, 8, 1, 10), Macro(16, 8, 32, 3, 100), Macro(6, 3, 12, 3, 2)]:
        net = build_network(DARTS_V2, macro).eval()
        out = net(torch.randn(2, macro.input_channels, macro.input_size, macro.input_size))
        assert out.shape == (2, macro.num_classes)


def test_genotype_text_form_with_range_concat_round_trips_through_json():
    text = (
        "Genotype(normal=[('sep_conv_5x5', 1), ('sep_conv_5x5', 0), ('sep_conv_5x5', 2), ('sep_conv_5x5', 1),"
        " ('sep_conv_5x5', 3), ('sep_conv_5x5', 1), ('max_pool_3x3', 4), ('sep_conv_5x5', 2)],"
        " normal_concat=range(2, 6), reduce=[('max_pool_3x3', 1), ('sep_conv_5x5', 0), ('max_pool_3x3', 2),"
        " ('max_pool_3x3', 1), ('sep_conv_5x5', 3), ('sep_conv_3x3', 2), ('sep_conv_3x3', 3),"
        " ('dil_conv_3x3', 2)], reduce_concat=range(2, 6))"
    )
    genotype = Genotype.parse(text)
    assert genotype.normal_concat == (2, 3, 4, 5)
    assert Genotype.from_json(genotype.to_json()) == genotype
    assert Genotype.parse(str(genotype)) == genotype


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "Genotype(normal=[('conv_7x7', 0), ('skip_connect', 1)], normal_concat=[2], "
            "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2])",
            "conv_7x7",
        ),
        (
            "Genotype(normal=[('skip_connect', 3), ('skip_connect', 1)], normal_concat=[2], "
            "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2])",
            "input 3",
        ),
        (
            "Genotype(normal=[('skip_connect', 0)], normal_concat=[2], "
            "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2])",
            "two (op, input) pairs",
        ),
        ("__import__('os').system('true')", "not a genotype"),
        ('{"normal": [["skip_connect", 0], ["skip_connect", 1]]}', "lacks field"),
    ],
)
def test_invalid_genotypes_are_rejected_with_the_reason(text, message):
    with pytest.raises(GenotypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Genotype.parse(text)


def test_reductions_sit_at_a_third_and_two_thirds_and_double_channels():
    shapes = cell_shapes(Macro(init_channels=16, layers=8, input_size=32))
    assert reduction_layers(8) == (2, 5)
    assert [s.reduction for s in shapes] == [i in (2, 5) for i in range(8)]
    assert [s.reduction_prev for s in shapes] == [i in (3, 6) for i in range(8)]
    assert [s.c for s in shapes] == [16, 16, 32, 32, 32, 64, 64, 64]
    assert [s.height for s in shapes] == [32, 32, 32, 16, 16, 16, 8, 8]
    assert shapes[0].c_prev_prev == shapes[0].c_prev == 48  # stem multiplier 3
    assert shapes[3].c_prev_prev == 4 * 16 and shapes[3].c_prev == 4 * 32


def test_a_cell_has_fourteen_edges_in_darts_order():
    assert len(edge_list(4)) == 14
    assert edge_list(4)[:5] == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    assert len(edge_list(5)) == 20  # the node count is a parameter, not a constant


def test_every_op_keeps_channels_and_reduces_with_stride_two():
    # The op names the torch-free modules know (CELL_OPS) are exactly the ops the layers build.
    assert set(OPS) == CELL_OPS
    x = torch.randn(2, 8, 8, 8)
    for op in sorted(CELL_OPS):
        assert make_op(op, 8, 1).eval()(x).shape == (2, 8, 8, 8), op
        assert make_op(op, 8, 2).eval()(x).shape == (2, 8, 4, 4), op


def _one_hot(ops_per_edge):
    probs = np.zeros((14, len(DARTS_OPS)))
    for k, op in enumerate(ops_per_edge):
        probs[k, DARTS_OPS.index(op)] = 1.0
    return probs


def test_gated_cells_run_at_every_shape_a_network_produces():
    macro = Macro(init_channels=4, layers=5, input_size=8, input_channels=1)
    rng = np.random.default_rng(0)

    def random_cell(shape):
        ops = [DARTS_OPS[i] for i in rng.integers(0, len(DARTS_OPS), 14)]
        return Cell.from_probabilities(shape, DARTS_OPS, _one_hot(ops), steps=4)

    net = Network(macro, random_cell, cell_shapes(macro)).eval()
    assert net(torch.randn(1, 1, 8, 8)).shape == (1, 10)


def test_none_edges_hold_no_op_and_a_node_without_live_inputs_is_zero():
    shape = CellShape(True, False, 12, 12, 8, 8, 8)
    cell = Cell.from_probabilities(shape, DARTS_OPS, _one_hot([NONE] * 14), steps=4).eval()
    assert count_parameters(cell) == count_parameters(cell.preprocess0) + count_parameters(cell.preprocess1)
    out = cell(torch.randn(1, 12, 8, 8), torch.randn(1, 12, 8, 8))
    assert out.shape == (1, 32, 4, 4)
    assert torch.count_nonzero(out) == 0


def test_gates_choose_which_candidate_runs_and_reject_absent_ops():
    probs = np.full((14, len(DARTS_OPS)), 1 / len(DARTS_OPS))
    probs[0] = _one_hot(["skip_connect"] * 14)[0]
    cell = Cell.from_probabilities(CellShape(False, False, 8, 8, 8, 4, 4), DARTS_OPS, probs, steps=4)
    assert len(cell.edges[1].ops) == len(DARTS_OPS) - 1  # every op but none
    cell.set_gates(["skip_connect"] + ["sep_conv_3x3"] * 13)
    assert cell.active_ops()[1] == "sep_conv_3x3"
    with pytest.raises(ValueError, match="not a candidate"):
        cell.set_gates(["sep_conv_3x3"] * 14)  # edge 0 holds skip_connect only


def test_a_genotype_file_is_loaded_and_a_bad_one_named(tmp_path):
    path = tmp_path / "genotype.json"
    path.write_text(DARTS_V2.to_json())
    assert Genotype.load(path) == DARTS_V2
    path.write_text(str(DARTS_V2).replace("sep_conv_3x3", "conv_9x9", 1))
    with pytest.raises(GenotypeError, match=r"genotype.json: normal\[0\]: unknown op 'conv_9x9'"):
        Genotype.load(path)
    with pytest.raises(GenotypeError, match="missing.json: cannot read"):
        Genotype.load(tmp_path / "missing.json")
