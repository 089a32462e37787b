"""Timing cells on one device: discrete labels and LENNA's expected labels.

Protocol (see BACKGROUND.md, "Measuring latency well"): threads fixed before any torch work,
warm-up passes, per-pass timing with ``perf_counter_ns`` on a CPU or CUDA events on a GPU, raw
replicates kept, a robust statistic with its dispersion.

Every spec is *visited* ``rounds`` times (an expected one ``expected_rounds`` times), in rounds
over the whole shard, so that one slow spell of the machine cannot spoil all of its passes
(`label_specs`).
*Discrete* label: the ``label_quantile`` (default: the minimum) of the ``repeats`` timed passes
of every visit of the cell's single op per edge, pooled.
*Expected* label (LENNA): repeatedly reset the binary gates (one op per edge drawn from the
spec's own stored probabilities, with a generator seeded by the spec id) and time
``runs_per_reset`` passes, until the cumulative mean of the per-reset ``reset_quantile`` changed
by less than ``rel_tol`` for ``patience`` consecutive resets (or ``max_resets``). Later visits
time the same draws again; the label is the mean over resets of the ``reset_quantile`` of each
reset's passes pooled over the visits. The gates drawn are stored with the row.
A spec whose two best visits disagree by more than ``retime_tolerance`` is visited again within
a time budget, and labelled ``unstable`` if they still disagree.
"""

from __future__ import annotations

import contextlib
import gc
import math
import socket
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import torch

from lenna.space.build import gated_cell
from lenna.space.cell import CellShape, sample_gates
from lenna.space.layers import GatedCell
from lenna.space.ops import NONE, op_set
from lenna.space.spaces import get_space
from lenna.space.specs import spec_probs, spec_shape
from lenna.timing.clock import time_passes, timed_round
from lenna.timing.devices import as_input, device_name, place
from lenna.timing.hardware import gpu_driver
from lenna.timing.interference import CpuMeter
from lenna.timing.protocol import Target, TimingProtocol, label_of, rel_iqr

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
        "driver_version": gpu_driver() if device.type == "cuda" else "",
        "threads": torch.get_num_threads(),
        "batch_size": target.batch_size,
        "dtype": target.dtype,
        "memory_format": target.memory_format,
        "timer": "cuda_event" if device.type == "cuda" else "perf_counter_ns",
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }


def gate_seed(spec_id: str) -> int:
    """The seed of a spec's gate generator: re-timing a spec draws the same gates."""
    return int(spec_id, 16)


def visit_uncertainty(visit_labels) -> float:
    """How far a label's two best visits are apart (relative): a slow spell that spoiled all
    but one visit shows as a large value. NaN with fewer than two visits."""
    best = np.sort(np.asarray(visit_labels, dtype=np.float64))
    return float(best[1] / best[0] - 1) if len(best) > 1 else float("nan")


class SpecTiming:
    """The passes of one spec, visit by visit: a discrete spec's passes per visit, or an expected
    spec's gates (drawn at the first visit) and its passes per reset per visit."""

    def __init__(self, kind: str):
        self.kind = kind
        self.visits: list[np.ndarray] = []  # discrete: (repeats,); expected: (resets, runs_per_reset)
        self.gates: list[list[str]] = []
        self.converged = True
        self.error = ""

    def planned_visits(self, protocol: TimingProtocol) -> int:
        """Visits before any re-timing: ``rounds``, or ``expected_rounds`` of them (expected)."""
        return protocol.rounds if self.kind == "discrete" else min(protocol.rounds, protocol.expected_rounds)

    def visit_labels(self, protocol: TimingProtocol) -> list[float]:
        if self.kind == "discrete":
            return [label_of(v, protocol) for v in self.visits]
        return [float(np.quantile(v, protocol.reset_quantile, axis=1).mean()) for v in self.visits]

    def uncertainty(self, protocol: TimingProtocol) -> float:
        return visit_uncertainty(self.visit_labels(protocol))

    def label(self, protocol: TimingProtocol, op_names) -> dict:
        """The label from every visit's passes pooled, with how it was reached."""
        if self.error:
            return _failed(self.error)
        uncertainty = self.uncertainty(protocol)
        stable = not uncertainty > protocol.retime_tolerance  # NaN (one visit) counts as stable
        common = {
            "status": "ok" if stable else "unstable",
            "error": "" if stable else f"visits disagree by {uncertainty:.1%}",
            "uncertainty": uncertainty,
            "n_visits": len(self.visits),
            "retimed": len(self.visits) > self.planned_visits(protocol),
        }
        if self.kind == "discrete":
            runs = np.concatenate(self.visits)
            return {
                **common,
                "latency_ms": label_of(runs, protocol),
                "dispersion": rel_iqr(runs),
                "n_timed": len(runs),
                "n_resets": 0,
                "converged": True,
                "replicates_ms": runs.tolist(),
                "gates": [],
            }
        per_reset = np.quantile(np.concatenate(self.visits, axis=1), protocol.reset_quantile, axis=1)
        return {
            **common,
            "latency_ms": float(per_reset.mean()),
            "dispersion": rel_iqr(per_reset),
            "n_timed": int(sum(v.size for v in self.visits)),
            "n_resets": len(per_reset),
            "converged": self.converged,
            "replicates_ms": per_reset.tolist(),
            "gates": [[op_names.index(op) for op in ops] for ops in self.gates],
        }


def first_expected_visit(
    cell: GatedCell, inputs, probs: np.ndarray, rng, protocol, timing: SpecTiming
) -> None:
    """LENNA's expected latency: reset the gates (one op per edge drawn from ``probs``), time
    ``runs_per_reset`` passes, until the cumulative mean of the per-reset ``reset_quantile``
    changed by less than ``rel_tol`` for ``patience`` resets in a row (or ``max_resets``)."""
    passes, per_reset, cum_means, calm = [], [], [], 0
    for reset in range(protocol.max_resets):
        ops = sample_gates(probs, cell.op_names, rng)
        timing.gates.append(ops)
        passes.append(_reset_passes(cell, inputs, ops, reset, protocol))
        per_reset.append(float(np.quantile(passes[-1], protocol.reset_quantile)))
        cum_means.append(float(np.mean(per_reset)))
        if reset > 0:
            change = abs(cum_means[-1] - cum_means[-2]) / cum_means[-2]
            calm = calm + 1 if change < protocol.rel_tol else 0
            if calm >= protocol.patience:
                break
    timing.converged = calm >= protocol.patience
    timing.visits.append(np.array(passes))


def replay_expected_visit(cell: GatedCell, inputs, protocol, timing: SpecTiming) -> None:
    """Time the gates of the first visit again, reset by reset: a later visit of the same draws."""
    passes = [_reset_passes(cell, inputs, ops, reset, protocol) for reset, ops in enumerate(timing.gates)]
    timing.visits.append(np.array(passes))


def _reset_passes(cell: GatedCell, inputs, ops, reset: int, protocol) -> np.ndarray:
    """Set the gates to ``ops``, warm up (``warmup`` passes at a visit's first reset, else
    ``reset_warmup``: the first call of a new op is slow) and time ``runs_per_reset`` passes."""
    cell.set_gates(ops)
    time_passes(cell, inputs, protocol.warmup if reset == 0 else protocol.reset_warmup)
    return time_passes(cell, inputs, protocol.runs_per_reset)


def build_cell(row, device: torch.device) -> tuple[GatedCell, np.ndarray]:
    """The timed cell of a spec row (eval mode, on ``device``) and its stored probabilities."""
    space = get_space(row["op_set"], int(row["steps"]))
    probs = spec_probs(row, space.ops, space.steps)
    cell = gated_cell(space, spec_shape(row), probs)
    return cell.to(device).eval(), probs


def make_inputs(cell: GatedCell, target: Target, device: torch.device):
    """Seeded random inputs of the cell at the target's batch size, dtype and memory format."""
    generator = torch.Generator().manual_seed(0)
    return tuple(
        as_input(target, torch.randn(target.batch_size, *size, generator=generator), device)
        for size in cell.input_sizes()
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
    cell = place(target, cell, device)
    return cell, probs, make_inputs(cell, target, device)


def visit(row, timing: SpecTiming, target, device, protocol) -> None:
    """One more visit of a spec: a round of passes (discrete), or its gate draws (expected: drawn
    at the first visit, replayed at later ones). Out of memory marks the timing failed."""
    try:
        with _out_of_memory_as_failure(device):
            cell, probs, inputs = _timed_cell(row, target, device)
            with torch.inference_mode():
                if timing.kind == "discrete":
                    timing.visits.append(timed_round(cell, inputs, protocol))
                elif not timing.visits:
                    rng = np.random.default_rng(gate_seed(row["spec_id"]))
                    first_expected_visit(cell, inputs, probs, rng, protocol, timing)
                else:
                    replay_expected_visit(cell, inputs, protocol, timing)
    except _OutOfMemory as err:
        timing.error = str(err)


def _failed(reason: str) -> dict:
    return {
        "status": "failed",
        "error": reason,
        "uncertainty": float("nan"),
        "n_visits": 0,
        "retimed": False,
        "latency_ms": float("nan"),
        "dispersion": float("nan"),
        "n_timed": 0,
        "n_resets": 0,
        "converged": False,
        "replicates_ms": [],
        "gates": [],
    }


def reference_cell(shape: CellShape, op_names, steps: int) -> GatedCell:
    """The fixed cell a timing job times again and again to track the machine's speed: edge k
    runs the k-th non-none op of the op set it may hold (cyclically), a mix of every op."""
    space = get_space(op_names, steps)
    mask = space.op_mask(shape)
    probs = np.zeros((space.n_edges, len(op_names)))
    for k in range(len(probs)):
        live = [i for i, op in enumerate(op_names) if op != NONE and mask[k, i]]
        probs[k, live[k % len(live)]] = 1.0
    return gated_cell(space, shape, probs)


def expected_minimum(values, k: int) -> float:
    """The expected minimum of ``k`` of ``values`` drawn at random without replacement (all of
    them where there are fewer): the i-th smallest of n is the minimum of C(n-1-i, k-1) of the
    C(n, k) draws."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    n, k = len(v), min(k, len(v))
    weights = np.array([math.comb(n - 1 - i, k - 1) for i in range(n)], dtype=np.float64)
    return float(v @ weights / math.comb(n, k))


def reference_label(ticks: list[np.ndarray], protocol: TimingProtocol) -> float:
    """The job's reference timing, by the statistic a label of the job has: a label is
    `label_of` the passes of ``rounds`` visits at scattered moments of the job, a tick is one
    such visit of the reference cell. With the median (or any inner quantile) of passes that is
    `label_of` all the ticks' passes. With the minimum it is not: the minimum over the job's many
    ticks finds the job's one fastest moment, which a label's few visits mostly miss, so under
    interference the reference comes out faster than the labels and calibration cannot correct
    them; the expected minimum over ``rounds`` random ticks is what a label would see."""
    if protocol.label_quantile > 0:
        return label_of(np.concatenate(ticks), protocol)
    return expected_minimum([tick.min() for tick in ticks], protocol.rounds)


class _ReferenceClock:
    """Times the reference cell between specs; `reference_label` of its ticks is the job's
    machine speed."""

    def __init__(self, shape: CellShape, op_names, steps, target: Target, device, protocol):
        self.cell = place(target, reference_cell(shape, op_names, steps), device)
        self.inputs = make_inputs(self.cell, target, device)
        self.protocol = protocol
        self.runs: list[np.ndarray] = []

    def tick(self) -> None:
        with torch.inference_mode():
            self.runs.append(timed_round(self.cell, self.inputs, self.protocol))

    def summary(self) -> dict:
        runs = np.concatenate(self.runs)
        ticks = [label_of(tick, self.protocol) for tick in self.runs]
        return {
            "reference_ms": reference_label(self.runs, self.protocol),
            "reference_dispersion": rel_iqr(runs),
            # How much the machine's speed changed during the job: slowest over fastest tick.
            "reference_spread": max(ticks) / min(ticks) - 1,
            # Every tick's `label_of`, in time order: another reference statistic can be
            # computed from the shard.
            "reference_ticks_ms": [float(t) for t in ticks],
        }


def visit_in_rounds(
    timings: list[SpecTiming], visit_one, clock: _ReferenceClock, protocol, span_s: float = 0.0
) -> dict:
    """Visit every item in ``protocol.rounds`` rounds (``visit_one(i)`` times item i once more;
    an item is visited in the rounds its `SpecTiming.planned_visits` asks for), the reference
    cell ticking at the start of every round and every ``reference_every`` items; then re-time
    the items whose two best visits disagree by more than ``retime_tolerance``, in up to
    ``retime_rounds`` further rounds within ``retime_budget_s`` seconds. Returns the re-timing's
    seconds and rounds run. Cells (`label_specs`) and whole networks
    (`lenna.timing.networks.label_networks`) are timed by this one protocol.

    ``span_s``: round r starts no earlier than ``r / (rounds - 1)`` of it after the first (the
    job waits, idle, where its rounds are quicker), so that a short job's visits do not all fall
    in one slow spell of the machine, which its reference cell need not see. Re-timing round k
    starts no earlier than ``k * protocol.retime_gap_s`` after the last round."""

    def visit_all(indices, deadline: float = float("inf")) -> None:
        for n, i in enumerate(indices):
            if time.perf_counter() > deadline:
                return
            if n % protocol.reference_every == 0:
                clock.tick()
            if not timings[i].error:
                visit_one(i)
            if n % 50 == 49:
                gc.collect()

    first = time.perf_counter()
    for round_ in range(protocol.rounds):
        if round_ and span_s > 0:
            time.sleep(max(0.0, first + span_s * round_ / (protocol.rounds - 1) - time.perf_counter()))
        visit_all([i for i, t in enumerate(timings) if round_ < t.planned_visits(protocol)])
    start, rounds_run = time.perf_counter(), 0
    gap = protocol.retime_gap_s
    for round_ in range(protocol.retime_rounds):
        unstable = [
            i
            for i, t in enumerate(timings)
            if not t.error and t.uncertainty(protocol) > protocol.retime_tolerance
        ]
        due = start + gap * (round_ + 1)
        if not unstable or max(due, time.perf_counter()) - start >= protocol.retime_budget_s:
            break
        time.sleep(max(0.0, due - time.perf_counter()))
        visit_all(unstable, deadline=start + protocol.retime_budget_s)
        rounds_run += 1
    return {"retime_s": time.perf_counter() - start, "retime_rounds_run": rounds_run}


def label_specs(
    specs: pd.DataFrame,
    target: Target,
    device: torch.device,
    protocol: TimingProtocol,
    reference: CellShape | None = None,
) -> tuple[list[dict], dict]:
    """One label per spec row, in order, and the reference timing and re-timing of the job.

    Every spec is visited in ``protocol.rounds`` rounds over the whole table (an expected spec
    in the first ``expected_rounds`` of them), so its passes are
    spread over the job's duration and one slow spell of the machine cannot spoil all of them:
    a discrete spec gets ``repeats`` passes per visit; an expected spec draws its gates at the
    first visit and times the same draws again at later ones. A spec whose two best visits still
    disagree by more than ``retime_tolerance`` (`visit_uncertainty`) is visited again, in up to
    ``retime_rounds`` further rounds over such specs within ``retime_budget_s`` seconds; one
    that still disagrees is labelled ``unstable``, an out-of-memory one ``failed``. The reference
    cell at ``reference`` (default: the first spec's shape) is timed at the start of every round
    and every ``reference_every`` specs: `label_of` its passes says how fast the machine ran.
    """
    records = [row for _, row in specs.iterrows()]
    timings = [SpecTiming(row["label_kind"]) for row in records]
    if not records:
        return [], {
            "reference_ms": float("nan"),
            "reference_dispersion": float("nan"),
            "reference_spread": float("nan"),
            "reference_ticks_ms": [],
            "retime_s": 0.0,
            "retime_rounds_run": 0,
        }
    first = records[0]
    clock = _ReferenceClock(
        reference or spec_shape(first), op_set(first["op_set"]), int(first["steps"]), target, device, protocol
    )
    retime = visit_in_rounds(
        timings, lambda i: visit(records[i], timings[i], target, device, protocol), clock, protocol
    )
    labels = [t.label(protocol, op_set(row["op_set"])) for t, row in zip(timings, records, strict=True)]
    return labels, {**clock.summary(), **retime}


def quiet_job(label_all) -> tuple[list[dict], dict]:
    """Run a timing job's ``label_all()`` (-> labels, the job's reference and re-timing) with
    the garbage collector off (a collection during a timed pass is noise, not latency) and the
    job's interference measured (`lenna.timing.interference.CpuMeter`), added to the job's
    columns."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    meter = CpuMeter()
    try:
        labels, clock = label_all()
    finally:
        if gc_was_enabled:
            gc.enable()
    return labels, {**clock, **meter.summary()}


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
    labels, clock = quiet_job(lambda: label_specs(specs, target, device, protocol, reference))
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    rows = [
        {"spec_id": spec_id, "label_kind": kind, **label, **clock, **prov, "measured_at": measured_at}
        for spec_id, kind, label in zip(specs["spec_id"], specs["label_kind"], labels, strict=True)
    ]
    return pd.DataFrame(rows)
