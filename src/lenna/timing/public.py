"""Does our timing agree with the world? NAS-Bench-201 networks timed here (`measure_public`), to
be ranked against the public latencies of the same networks on 21 devices
(`lenna.space.nb201.PUBLIC_TABLE`) by `lenna.tables.rank_agreement`.

A timer that is right ranks architectures much as other devices of its kind do: Spearman's rho
between our latencies and a public column says how alike the two rankings are.
"""

from __future__ import annotations

import pandas as pd
import torch

from lenna.space.build import build_network
from lenna.space.nb201 import Arch
from lenna.space.network import Macro
from lenna.timing.clock import timed_ms
from lenna.timing.devices import as_input, place
from lenna.timing.protocol import Target

# The benchmark's network: C=16, N=5 cells per stage, 32x32 RGB images, 10 classes (CIFAR-10).
BENCHMARK_MACRO = Macro(
    init_channels=16, layers=5, input_size=32, input_channels=3, num_classes=10, stem_multiplier=1
)


def measure_public(
    archs: pd.DataFrame, batch_sizes, target: Target, device: torch.device, protocol, log=lambda s: None
) -> pd.DataFrame:
    """The benchmark network of every architecture timed at every batch size (eval mode, the
    target's dtype and memory format, `timed_ms`): one row per (index, batch_size)."""
    rows = []
    for k, (index, text) in enumerate(zip(archs["index"], archs["arch"], strict=True)):
        net = place(target, build_network(Arch.parse(text), BENCHMARK_MACRO), device)
        for batch in batch_sizes:
            size = (
                batch,
                BENCHMARK_MACRO.input_channels,
                BENCHMARK_MACRO.input_size,
                BENCHMARK_MACRO.input_size,
            )
            noise = torch.randn(*size, generator=torch.Generator().manual_seed(int(index)))
            x = as_input(target, noise, device)
            rows.append(
                {
                    "index": int(index),
                    "arch": text,
                    "batch_size": batch,
                    "latency_ms": timed_ms(net, (x,), protocol),
                }
            )
        if k % 50 == 49:
            log(f"{k + 1} of {len(archs)} architectures timed")
    return pd.DataFrame(rows)
