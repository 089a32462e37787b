"""Timing cells on one device: discrete labels and LENNA's expected labels.

Protocol (see BACKGROUND.md, "Measuring latency well"): threads fixed before any torch work,
warm-up passes, per-pass timing with ``perf_counter_ns`` on a CPU or CUDA events on a GPU, raw
replicates kept, a robust statistic with its dispersion.

*Discrete* label: the ``label_quantile`` (default: the minimum) of ``rounds`` x ``repeats`` timed
passes of the cell's single op per edge, taken in rounds over the whole shard so that one slow
spell of the machine cannot spoil all of a spec's passes.
*Expected* label: repeatedly reset the binary gates (one op per edge drawn from the spec's own
stored probabilities, with a generator seeded by the spec id), time ``runs_per_reset`` passes,
keep the ``reset_quantile`` of them; the label is the cumulative mean of those per-reset values
once its relative change stayed below ``rel_tol`` for ``patience`` consecutive resets (or after
``max_resets``). The gates drawn are stored with the row, so anyone can check what was timed.
"""

from __future__ import annotations

import contextlib
import gc
import socket
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import torch

from lenna.space.cell import Cell, CellShape, edge_list, sample_gates
from lenna.space.ops import NONE, op_set
from lenna.space.specs import spec_probs, spec_shape
from lenna.timing.devices import Target, device_name
from lenna.timing.interference import CpuMeter
from lenna.timing.protocol import TimingProtocol, label_of, rel_iqr, time_passes, timed_round

LATENCY_SCHEMA_VERSION = 1


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


def discrete_label(runs: np.ndarray, protocol: TimingProtocol) -> dict:
    """A discrete label from all its timed passes (every round pooled)."""
    return {
        "latency_ms": label_of(runs, protocol),
        "dispersion": rel_iqr(runs),
        "n_timed": len(runs),
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


class _OutOfMemory(Exception):
    pass


@contextlib.contextmanager
def _out_of_memory_as_failure(device: torch.device):
    """Turn a device out-of-memory error into `_OutOfMemory`; anything else is a bug and raises."""
    try:
        yield
    except torch.OutOfMemoryError as err:
        raise _OutOfMemory(f"out of memory: {str(err).splitlines()[0]}") from None
    except RuntimeError as err:
        text = str(err).lower()
        # CUDA: "out of memory"; the CPU allocator: "can't allocate memory" (ENOMEM).
        if not any(s in text for s in ("out of memory", "not enough memory", "can't allocate memory")):
            raise
        raise _OutOfMemory(f"out of memory: {str(err).splitlines()[0]}") from None
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _timed_cell(row, target: Target, device: torch.device):
    cell, probs = build_cell(row, device)
    dtype = getattr(torch, target.dtype)
    cell = cell.to(dtype)
    return cell, probs, make_inputs(cell, target.batch_size, device, dtype)


def _discrete_round(row, target, device, protocol) -> np.ndarray:
    cell, _, inputs = _timed_cell(row, target, device)
    with torch.inference_mode():
        return timed_round(cell, inputs, protocol)


def _expected(row, target, device, protocol) -> dict:
    cell, probs, inputs = _timed_cell(row, target, device)
    rng = np.random.default_rng(gate_seed(row["spec_id"]))
    with torch.inference_mode():
        return measure_expected(cell, inputs, probs, rng, protocol)


def _failed(reason: str) -> dict:
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


def reference_cell(shape: CellShape, op_names, steps: int) -> Cell:
    """The fixed cell a timing job times again and again to track the machine's speed: edge k
    runs the k-th non-none op of the op set (cyclically), a mix of every op."""
    live = [i for i, op in enumerate(op_names) if op != NONE]
    probs = np.zeros((len(edge_list(steps)), len(op_names)))
    for k in range(len(probs)):
        probs[k, live[k % len(live)]] = 1.0
    return Cell.from_probabilities(shape, op_names, probs, steps)


class _ReferenceClock:
    """Times the reference cell between specs; `label_of` its passes is the job's machine speed."""

    def __init__(self, shape: CellShape, op_names, steps, target: Target, device, protocol):
        self.cell = reference_cell(shape, op_names, steps).to(
            device=device, dtype=getattr(torch, target.dtype)
        )
        self.cell.eval()
        self.inputs = make_inputs(self.cell, target.batch_size, device, getattr(torch, target.dtype))
        self.protocol = protocol
        self.runs: list[np.ndarray] = []

    def tick(self) -> None:
        with torch.inference_mode():
            self.runs.append(timed_round(self.cell, self.inputs, self.protocol))

    def summary(self) -> dict:
        runs = np.concatenate(self.runs)
        ticks = [label_of(tick, self.protocol) for tick in self.runs]
        return {
            "reference_ms": label_of(runs, self.protocol),
            "reference_dispersion": rel_iqr(runs),
            # How much the machine's speed changed during the job: slowest over fastest tick.
            "reference_spread": max(ticks) / min(ticks) - 1,
        }


def label_specs(
    specs: pd.DataFrame,
    target: Target,
    device: torch.device,
    protocol: TimingProtocol,
    reference: CellShape | None = None,
) -> tuple[list[dict], dict]:
    """One label per spec row, in order, and the reference timing of the job.

    An out-of-memory spec is labelled failed with its reason. Discrete specs are timed in
    ``protocol.rounds`` rounds over the whole table, so a spec's passes are spread over the
    job's duration and a slow spell of the machine does not bias one spec's label. Expected
    labels are taken in the first round. The reference cell at ``reference`` (default: the
    first spec's shape) is timed at the start of every round and every ``reference_every``
    specs: `label_of` its passes says how fast the machine ran during this job.
    """
    records = [row for _, row in specs.iterrows()]
    labels: list[dict | None] = [None] * len(records)
    runs: list[list[np.ndarray]] = [[] for _ in records]
    first = records[0] if records else None
    clock = None
    if first is not None:
        shape = reference or spec_shape(first)
        clock = _ReferenceClock(shape, op_set(first["op_set"]), int(first["steps"]), target, device, protocol)
    for round_ in range(protocol.rounds):
        for i, row in enumerate(records):
            if i % protocol.reference_every == 0:
                clock.tick()
            if labels[i] is not None or (round_ > 0 and row["label_kind"] != "discrete"):
                continue
            try:
                with _out_of_memory_as_failure(device):
                    if row["label_kind"] == "discrete":
                        runs[i].append(_discrete_round(row, target, device, protocol))
                    else:
                        labels[i] = {"status": "ok", "error": "", **_expected(row, target, device, protocol)}
            except _OutOfMemory as err:
                labels[i] = _failed(str(err))
            if i % 50 == 49:
                gc.collect()
    labels = [
        label
        if label is not None
        else {"status": "ok", "error": "", **discrete_label(np.concatenate(parts), protocol)}
        for label, parts in zip(labels, runs, strict=True)
    ]
    return labels, (
        clock.summary()
        if clock
        else {
            "reference_ms": float("nan"),
            "reference_dispersion": float("nan"),
            "reference_spread": float("nan"),
        }
    )


def measure_specs(
    specs: pd.DataFrame,
    target: Target,
    device_str: str,
    device: torch.device,
    protocol: TimingProtocol,
    reference: CellShape | None = None,
) -> pd.DataFrame:
    """Latency rows for every spec of a spec table, with provenance, the job's reference timing
    (`label_specs`) and what else ran meanwhile (`lenna.timing.interference`); rows keep the
    spec order."""
    prov = provenance(target, device_str, device)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection during a timed pass is noise, not latency
    meter = CpuMeter()
    try:
        labels, clock = label_specs(specs, target, device, protocol, reference)
    finally:
        if gc_was_enabled:
            gc.enable()
    clock = {**clock, **meter.summary()}
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    rows = [
        {"spec_id": spec_id, "label_kind": kind, **label, **clock, **prov, "measured_at": measured_at}
        for spec_id, kind, label in zip(specs["spec_id"], specs["label_kind"], labels, strict=True)
    ]
    return pd.DataFrame(rows)
