"""Timing cells on one device: discrete labels and LENNA's expected labels.

Protocol (see BACKGROUND.md, "Measuring latency well"): threads fixed before any torch work,
warm-up passes, per-pass timing with ``perf_counter_ns`` on a CPU or CUDA events on a GPU, raw
replicates kept, a robust statistic with its dispersion.

*Discrete* label: the median of ``repeats`` timed passes of the cell's single op per edge.
*Expected* label: repeatedly reset the binary gates (one op per edge drawn from the spec's own
stored probabilities, with a generator seeded by the spec id), time ``runs_per_reset`` passes,
keep the ``reset_quantile`` of them; the label is the cumulative mean of those per-reset values
once its relative change stayed below ``rel_tol`` for ``patience`` consecutive resets (or after
``max_resets``). The gates drawn are stored with the row, so anyone can check what was timed.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import platform
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lenna.cell import Cell, sample_gates
from lenna.ops import op_set
from lenna.specs import spec_probs, spec_shape

LATENCY_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TimingProtocol:
    warmup: int = 5  # untimed passes before timing a cell
    repeats: int = 21  # timed passes of a discrete cell
    runs_per_reset: int = 20  # timed passes after each gate reset (LENNA: 20)
    reset_quantile: float = 0.4  # statistic of the passes of one reset (LENNA: 0.4 quantile)
    rel_tol: float = 0.01  # convergence threshold on the cumulative mean (LENNA: 1%)
    patience: int = 10  # consecutive resets below rel_tol (LENNA: 10)
    max_resets: int = 200  # cap on resets per expected label
    reset_warmup: int = 1  # untimed passes after each reset (first call of a new op is slow)


@dataclass(frozen=True)
class Target:
    """The measuring settings of one hardware target."""

    name: str
    batch_size: int
    threads: int
    dtype: str = "float32"


# -- devices -------------------------------------------------------------------------------------
def pin_device(device: str, threads: int, env: dict | None = None) -> torch.device:
    """Prepare this process to time on ``device`` (``"cpu"`` or ``"cuda:N"``); call before torch work.

    A local job sees only its own GPU: ``CUDA_VISIBLE_DEVICES`` is set to N. Under a cluster
    scheduler that already assigned GPUs (``SLURM_JOB_ID`` with ``CUDA_VISIBLE_DEVICES`` set) the
    assignment is left alone and the first visible GPU is used.
    """
    env = os.environ if env is None else env
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # only settable before inter-op work started
        torch.set_num_interop_threads(1)
    if device == "cpu":
        return torch.device("cpu")
    if not device.startswith("cuda:") or not device[5:].isdigit():
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda:N'")
    if not ("SLURM_JOB_ID" in env and env.get("CUDA_VISIBLE_DEVICES")):
        env["CUDA_VISIBLE_DEVICES"] = device[5:]
    return torch.device("cuda:0")


@contextlib.contextmanager
def device_lock(device: str, lock_dir: str | None = None) -> Iterator[None]:
    """Hold an exclusive per-host lock on ``device`` so two timing jobs never share it."""
    directory = Path(lock_dir or tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"lenna-device-{device.replace(':', '')}.lock"
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def provenance(target: Target, device_str: str, device: torch.device) -> dict:
    """Columns that say where and how a label was measured."""
    return {
        "target": target.name,
        "device": device_str,
        "device_name": device_name(device),
        "host": socket.gethostname(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda or "",
        "cudnn_version": str(torch.backends.cudnn.version() or "") if device.type == "cuda" else "",
        "threads": torch.get_num_threads(),
        "batch_size": target.batch_size,
        "dtype": target.dtype,
        "timer": "cuda_event" if device.type == "cuda" else "perf_counter_ns",
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }


# -- timing ----------------------------------------------------------------------------------------
def time_passes(cell: Cell, inputs: tuple[torch.Tensor, torch.Tensor], n: int) -> np.ndarray:
    """Wall time (ms) of ``n`` forward passes, one value per pass."""
    s0, s1 = inputs
    if s1.device.type == "cuda":
        events = [
            (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(n)
        ]
        torch.cuda.synchronize(s1.device)
        for start, end in events:
            start.record()
            cell(s0, s1)
            end.record()
        torch.cuda.synchronize(s1.device)
        return np.array([start.elapsed_time(end) for start, end in events])
    out = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        cell(s0, s1)
        out[i] = (time.perf_counter_ns() - t0) / 1e6
    return out


def rel_iqr(values: np.ndarray) -> float:
    q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    return float((q75 - q25) / q50) if q50 > 0 else float("nan")


def measure_discrete(cell: Cell, inputs, protocol: TimingProtocol) -> dict:
    time_passes(cell, inputs, protocol.warmup)
    runs = time_passes(cell, inputs, protocol.repeats)
    return {
        "latency_ms": float(np.median(runs)),
        "dispersion": rel_iqr(runs),
        "n_timed": protocol.repeats,
        "n_resets": 0,
        "converged": True,
        "replicates_ms": runs.tolist(),
        "gates": [],
    }


def gate_seed(spec_id: str) -> int:
    """The seed of a spec's gate generator: re-timing a spec draws the same gates."""
    return int(spec_id, 16)


def measure_expected(cell: Cell, inputs, probs: np.ndarray, rng: np.random.Generator, protocol) -> dict:
    op_names = cell.op_names
    per_reset, gates, cum_means = [], [], []
    calm = 0
    for reset in range(protocol.max_resets):
        ops = sample_gates(probs, op_names, rng)
        cell.set_gates(ops)
        gates.append([op_names.index(op) for op in ops])
        time_passes(cell, inputs, protocol.warmup if reset == 0 else protocol.reset_warmup)
        runs = time_passes(cell, inputs, protocol.runs_per_reset)
        per_reset.append(float(np.quantile(runs, protocol.reset_quantile)))
        cum_means.append(float(np.mean(per_reset)))
        if reset > 0:
            change = abs(cum_means[-1] - cum_means[-2]) / cum_means[-2]
            calm = calm + 1 if change < protocol.rel_tol else 0
            if calm >= protocol.patience:
                break
    values = np.array(per_reset)
    return {
        "latency_ms": cum_means[-1],
        "dispersion": rel_iqr(values),
        "n_timed": len(per_reset) * protocol.runs_per_reset,
        "n_resets": len(per_reset),
        "converged": calm >= protocol.patience,
        "replicates_ms": per_reset,
        "gates": gates,
    }


def build_cell(row, device: torch.device) -> tuple[Cell, np.ndarray]:
    """The timed cell of a spec row (eval mode, on ``device``) and its stored probabilities."""
    op_names = op_set(row["op_set"])
    steps = int(row["steps"])
    probs = spec_probs(row, op_names, steps)
    cell = Cell.from_probabilities(spec_shape(row), op_names, probs, steps)
    return cell.to(device).eval(), probs


def make_inputs(cell: Cell, batch_size: int, device: torch.device, dtype: torch.dtype):
    generator = torch.Generator().manual_seed(0)
    return tuple(
        torch.randn(batch_size, *size, generator=generator, dtype=dtype).to(device)
        for size in cell.shape.input_sizes()
    )


def measure_spec(row, target: Target, device: torch.device, protocol: TimingProtocol) -> dict:
    """Label one spec row; an out-of-memory spec is returned as failed with its reason."""
    try:
        cell, probs = build_cell(row, device)
        dtype = getattr(torch, target.dtype)
        cell = cell.to(dtype)
        inputs = make_inputs(cell, target.batch_size, device, dtype)
        with torch.inference_mode():
            if row["label_kind"] == "discrete":
                result = measure_discrete(cell, inputs, protocol)
            else:
                rng = np.random.default_rng(gate_seed(row["spec_id"]))
                result = measure_expected(cell, inputs, probs, rng, protocol)
        return {"status": "ok", "error": "", **result}
    except torch.OutOfMemoryError as err:
        reason = f"out of memory: {str(err).splitlines()[0]}"
    except RuntimeError as err:
        if "out of memory" not in str(err).lower() and "not enough memory" not in str(err).lower():
            raise
        reason = f"out of memory: {str(err).splitlines()[0]}"
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {
        "status": "failed",
        "error": reason,
        "latency_ms": float("nan"),
        "dispersion": float("nan"),
        "n_timed": 0,
        "n_resets": 0,
        "converged": False,
        "replicates_ms": [],
        "gates": [],
    }


def measure_specs(
    specs: pd.DataFrame, target: Target, device_str: str, device: torch.device, protocol: TimingProtocol
) -> pd.DataFrame:
    """Latency rows for every spec of a spec table, with provenance; rows keep the spec order."""
    prov = provenance(target, device_str, device)
    rows = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection during a timed pass is noise, not latency
    try:
        for _, spec in specs.iterrows():
            result = measure_spec(spec, target, device, protocol)
            rows.append(
                {
                    "spec_id": spec["spec_id"],
                    "label_kind": spec["label_kind"],
                    **result,
                    **prov,
                    "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            )
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    return pd.DataFrame(rows)


def protocol_dict(protocol: TimingProtocol) -> dict:
    return asdict(protocol)
