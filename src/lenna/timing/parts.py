"""The parts of a cell (`lenna.space.parts`) built as torch modules and timed alone for the
lookup-table baseline (ProxylessNAS): `measure_lut` times each on the target's device."""

from __future__ import annotations

import pandas as pd
import torch

from lenna.space import lenna_block
from lenna.space.layers import FactorizedReduce, ReLUConvBN, make_op
from lenna.space.lenna_layers import make_block_op
from lenna.space.parts import LUT_COLUMNS, Part
from lenna.timing.clock import timed_ms
from lenna.timing.devices import as_input, place
from lenna.timing.protocol import Target, TimingProtocol


def build_part(part: Part) -> torch.nn.Module:
    op, c_in, c_out, _, stride = part
    if op == "preprocess":
        return ReLUConvBN(c_in, c_out, 1, 1, 0)
    if op == "factorized_reduce":
        return FactorizedReduce(c_in, c_out)
    if op in lenna_block.OPS:
        return make_block_op(op, c_in, c_out, stride)
    return make_op(op, c_in, stride)


def measure_lut(
    parts: list[Part], target: Target, device: torch.device, protocol: TimingProtocol
) -> pd.DataFrame:
    """Each part timed alone (`label_of` its rounds x repeats passes) at the target's batch size."""
    rows = []
    for part in parts:
        module = place(target, build_part(part), device)
        x = as_input(target, torch.randn(target.batch_size, part[1], part[3], part[3]), device)
        rows.append([*part, target.batch_size, timed_ms(module, (x,), protocol)])
    return pd.DataFrame(rows, columns=LUT_COLUMNS)
