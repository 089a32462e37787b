"""The clock of the timing protocol (`lenna.timing.protocol`): forward passes timed alone, with
``perf_counter_ns`` on a CPU or CUDA events on a GPU, in rounds of warm-up and timed passes."""

from __future__ import annotations

import time

import numpy as np
import torch

from lenna.timing.protocol import TimingProtocol, label_of


def time_passes(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], n: int) -> np.ndarray:
    """Wall time (ms) of ``n`` forward passes ``module(*inputs)``, one value per pass."""
    device = inputs[0].device
    if device.type == "cuda":
        events = [
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)
        ]
        torch.cuda.synchronize(device)
        for start, end in events:
            start.record()
            module(*inputs)
            end.record()
        torch.cuda.synchronize(device)
        return np.array([start.elapsed_time(end) for start, end in events])
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        module(*inputs)
        out[i] = (time.perf_counter_ns() - t0) / 1e6
    return out


def timed_round(
    module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], protocol: TimingProtocol
) -> np.ndarray:
    """One round: ``warmup`` untimed passes, then ``repeats`` timed passes (ms)."""
    time_passes(module, inputs, protocol.warmup)
    return time_passes(module, inputs, protocol.repeats)


def timed_ms(module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], protocol: TimingProtocol) -> float:
    """`label_of` ``rounds`` rounds back to back (ms): a module timed alone (op, network)."""
    with torch.inference_mode():
        return label_of(
            np.concatenate([timed_round(module, inputs, protocol) for _ in range(protocol.rounds)]), protocol
        )
