"""The timing protocol and a target's measuring settings: how passes of a module are timed and
summarised.

Threads are fixed before any torch work (`lenna.timing.devices.pin_device`); every round has
untimed warm-up passes, then timed passes, each timed alone with ``perf_counter_ns`` on a CPU or
CUDA events on a GPU (`lenna.timing.clock`). A label is a low quantile of the raw replicates
(`label_of`), with their dispersion. This module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Target:
    """The measuring settings of one hardware target."""

    name: str
    batch_size: int
    threads: int
    dtype: str = "float32"
    # "channels_last" times modules and inputs in NHWC memory layout (PyTorch's default is NCHW).
    memory_format: str = "contiguous"


@dataclass(frozen=True)
class TimingProtocol:
    warmup: int = 3  # untimed passes before timing a cell (in every round)
    repeats: int = 7  # timed passes of a discrete cell per round
    rounds: int = 3  # rounds over the shard; a discrete label pools rounds x repeats passes
    expected_rounds: int = 3  # of these, the rounds that visit expected specs (LENNA: 1)
    # The statistic of a label's timed passes: their ``label_quantile`` (0: the minimum, 0.5: the
    # median). Interference only ever adds time, so a low quantile is the most reproducible.
    label_quantile: float = 0.0
    runs_per_reset: int = 20  # timed passes after each gate reset (LENNA: 20)
    reset_quantile: float = 0.4  # statistic of the passes of one reset (LENNA: 0.4 quantile)
    rel_tol: float = 0.01  # convergence threshold on the cumulative mean (LENNA: 1%)
    patience: int = 10  # consecutive resets below rel_tol (LENNA: 10)
    max_resets: int = 200  # cap on resets per expected label
    reset_warmup: int = 1  # untimed passes after each reset (first call of a new op is slow)
    reference_every: int = 20  # specs between two timings of the reference cell
    # Re-timing (lenna.timing.labels.label_specs): a spec whose two best visits disagree by more
    # than ``retime_tolerance`` is visited again, in up to ``retime_rounds`` more rounds within
    # ``retime_budget_s`` seconds per job; if they still disagree its status is "unstable".
    retime_tolerance: float = 0.1
    retime_rounds: int = 4
    retime_budget_s: float = 60.0
    # Seconds between the starts of the re-timing rounds, within the budget; 0: back to back. The
    # found networks' job spaces them (`lenna.search.found.measure_found`): its few unstable
    # networks re-visited back to back take under half a second, inside the spell that spoiled them.
    retime_gap_s: float = 0.0


# -- timing ----------------------------------------------------------------------------------------
def label_of(runs: np.ndarray, protocol: TimingProtocol) -> float:
    """The latency (ms) that timed passes ``runs`` stand for: their ``protocol.label_quantile``."""
    return float(np.quantile(runs, protocol.label_quantile))


def rel_iqr(values: np.ndarray) -> float:
    q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    return float((q75 - q25) / q50) if q50 > 0 else float("nan")
