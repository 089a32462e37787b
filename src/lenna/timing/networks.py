"""Whole networks of random architectures, timed on the target's device.

The whole-network check compares these timings with the sum of the networks' predicted cell
latencies plus the parts no cell predictor covers, timed here on their own
(`lenna.predictors.network_check`): the stem, the head and, in NAS-Bench-201, the residual
reduction blocks between the stages.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from lenna.space import lenna_block, nb201
from lenna.space.genotype import Genotype
from lenna.space.nb201 import Arch, NB201Network, ResNetBasicBlock
from lenna.space.network import Macro
from lenna.space.ops import NONE, op_set
from lenna.space.spaces import get_space
from lenna.timing.devices import Target
from lenna.timing.protocol import timed_ms


def random_architecture(rng: np.random.Generator, op_set_name: str, steps: int):
    """A random discrete architecture of the space: a derived-style DARTS genotype, a
    NAS-Bench-201 cell with an op drawn uniformly on every edge (any of the 15,625), or LENNA
    blocks with an op drawn uniformly from those each edge may hold."""
    space = get_space(op_set_name, steps).name
    if space == "nb201":
        return Arch(tuple(nb201.OPS[k] for k in rng.integers(len(nb201.OPS), size=len(nb201.EDGES))))
    if space == "lenna":
        return lenna_block.random_arch(rng)
    return random_genotype(rng, op_set_name, steps)


def architecture_text(arch) -> str:
    """How an architecture is stored in a table: genotype JSON, the NAS-Bench-201 string, or the
    LENNA ``normal=... reduce=...`` text."""
    if isinstance(arch, Arch | lenna_block.Arch):
        return str(arch)
    return json.dumps(arch.to_dict(), sort_keys=True)


def random_genotype(rng: np.random.Generator, op_set_name: str, steps: int) -> Genotype:
    """A derived-style genotype: per node two distinct inputs, each with a non-none op."""
    ops = [op for op in op_set(op_set_name) if op != NONE]

    def cell():
        pairs = []
        for node in range(steps):
            for inp in sorted(rng.choice(node + 2, size=2, replace=False)):
                pairs.append((ops[rng.integers(len(ops))], int(inp)))
        return tuple(pairs)

    concat = tuple(range(2, steps + 2))
    return Genotype(normal=cell(), normal_concat=concat, reduce=cell(), reduce_concat=concat)


class _Head(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.pool, self.classifier = net.global_pooling, net.classifier
        self.lastact = getattr(net, "lastact", torch.nn.Identity())

    def forward(self, x):
        return self.classifier(self.pool(self.lastact(x)).flatten(1))


def _fixed_parts(net, x: torch.Tensor, protocol) -> dict[str, float]:
    """Run the network layer by layer and time the parts that are not searched cells."""
    stem_out = net.stem(x)
    blocks_ms = 0.0
    if isinstance(net, NB201Network):
        h = stem_out
        for layer in net.layers:
            if isinstance(layer, ResNetBasicBlock):
                blocks_ms += timed_ms(layer, (h,), protocol)
            h = layer(h)
    elif isinstance(net, lenna_block.LennaNetwork):
        h = stem_out
        for cell in net.cells:
            h = cell(h)
    else:
        s0 = h = stem_out
        for cell in net.cells:
            s0, h = h, cell(s0, h)
    return {
        "stem_ms": timed_ms(net.stem, (x,), protocol),
        "head_ms": timed_ms(_Head(net), (h,), protocol),
        "blocks_ms": blocks_ms,
    }


def measure_networks(
    genotypes: list, macros: dict[str, Macro], target: Target, device: torch.device, protocol
) -> pd.DataFrame:
    """Measured latency (ms) of every architecture's network (a `Genotype` or a NAS-Bench-201
    `Arch`) at every named macro setting, with the parts that are not cells timed alone
    (`_fixed_parts`). Networks are timed in eval mode at the target's batch size."""
    rows = []
    for name, macro in macros.items():
        for k, genotype in enumerate(genotypes):
            net = target.place(genotype.network(macro), device)
            size = (target.batch_size, macro.input_channels, macro.input_size, macro.input_size)
            x = target.input(torch.randn(*size, generator=torch.Generator().manual_seed(k)), device)
            with torch.inference_mode():
                row = {
                    "network": name,
                    "genotype_index": k,
                    "genotype": architecture_text(genotype),
                    **{f"macro_{f}": v for f, v in macro.__dict__.items()},
                    "batch_size": target.batch_size,
                    "latency_ms": timed_ms(net, (x,), protocol),
                    **_fixed_parts(net, x, protocol),
                }
            rows.append(row)
    return pd.DataFrame(rows)
