"""Whole networks of random derived genotypes, timed on the target's device.

The whole-network check compares these timings with the sum of the networks' predicted cell
latencies plus the stem and the head, which are timed here on their own since no cell predictor
covers them (`lenna.predictors.network_check`).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from lenna.space.genotype import Genotype
from lenna.space.network import Macro, Network
from lenna.space.ops import NONE, op_set
from lenna.timing.devices import Target
from lenna.timing.protocol import timed_ms


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
    def __init__(self, net: Network):
        super().__init__()
        self.pool, self.classifier = net.global_pooling, net.classifier

    def forward(self, x):
        return self.classifier(self.pool(x).flatten(1))


def measure_networks(
    genotypes: list[Genotype], macros: dict[str, Macro], target: Target, device: torch.device, protocol
) -> pd.DataFrame:
    """Measured latency (ms) of every genotype's network at every named macro setting, with the
    stem and head timed alone. Networks are timed in eval mode at the target's batch size."""
    rows = []
    dtype = getattr(torch, target.dtype)
    for name, macro in macros.items():
        for k, genotype in enumerate(genotypes):
            net = genotype.network(macro).to(device=device, dtype=dtype).eval()
            size = (target.batch_size, macro.input_channels, macro.input_size, macro.input_size)
            x = torch.randn(*size, generator=torch.Generator().manual_seed(k), dtype=dtype).to(device)
            with torch.inference_mode():
                stem_out = net.stem(x)
                s0 = s1 = stem_out
                for cell in net.cells:
                    s0, s1 = s1, cell(s0, s1)
                row = {
                    "network": name,
                    "genotype_index": k,
                    "genotype": json.dumps(genotype.to_dict(), sort_keys=True),
                    **{f"macro_{f}": v for f, v in macro.__dict__.items()},
                    "batch_size": target.batch_size,
                    "latency_ms": timed_ms(net, (x,), protocol),
                    "stem_ms": timed_ms(net.stem, (x,), protocol),
                    "head_ms": timed_ms(_Head(net), (s1,), protocol),
                }
            rows.append(row)
    return pd.DataFrame(rows)
