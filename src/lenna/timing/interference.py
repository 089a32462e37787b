"""How much else ran on the machine while a job timed: cheap measures read from /proc.

Interference only ever adds time to a label, and a timing job cannot see it in its own passes
alone. `CpuMeter` reads the kernel's CPU counters (/proc/stat) and this process's own CPU time
at the start and end of a job: the share of the machine's CPU time that other processes used
(``other_cpu_share``), the share the hypervisor took for other guests (``steal_share``: a
shared virtual machine changing speed), and the load average at the end. Off Linux the values
are NaN. The reference cell's ticks add the spread of the machine's speed during the job
(`lenna.timing.labels`).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

PROC_STAT = Path("/proc/stat")
# Fields of the aggregate "cpu" line of /proc/stat, in order (man 5 proc).
_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_counters() -> dict[str, float] | None:
    """Seconds of CPU time per state, summed over all CPUs; None where /proc/stat is missing."""
    try:
        first = PROC_STAT.read_text().splitlines()[0].split()
    except OSError:
        return None
    return {name: int(value) / _TICKS for name, value in zip(_FIELDS, first[1:], strict=False)}


class CpuMeter:
    """Start it before a job's timing and call `summary` after."""

    def __init__(self) -> None:
        self.start = _cpu_counters()
        self.own_start = time.process_time()

    def summary(self) -> dict[str, float]:
        end, own = _cpu_counters(), time.process_time() - self.own_start
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
        if self.start is None or end is None:
            return {"other_cpu_share": math.nan, "steal_share": math.nan, "load_avg_1m": load}
        delta = {k: end[k] - self.start[k] for k in end}
        total = sum(delta.values())
        if total <= 0:
            return {"other_cpu_share": math.nan, "steal_share": math.nan, "load_avg_1m": load}
        busy = total - delta["idle"] - delta.get("iowait", 0.0) - delta.get("steal", 0.0)
        return {
            # Tick granularity can make busy - own slightly negative on an idle machine.
            "other_cpu_share": max(0.0, (busy - own) / total),
            "steal_share": delta.get("steal", 0.0) / total,
            "load_avg_1m": load,
        }


# Above these a job's labels are suspect: other processes took a tenth of the machine, or the
# reference cell's speed changed by a fifth during the job.
OTHER_CPU_WARN = 0.10
REFERENCE_SPREAD_WARN = 0.20


def interference_warnings(job: dict) -> list[str]:
    """Plain-words warnings for one job's interference measures (empty: nothing seen)."""
    said = []
    if job.get("other_cpu_share", 0.0) > OTHER_CPU_WARN:
        said.append(f"other processes used {job['other_cpu_share']:.0%} of the machine's CPU time")
    if job.get("steal_share", 0.0) > OTHER_CPU_WARN:
        said.append(f"the hypervisor took {job['steal_share']:.0%} of the CPU time (steal)")
    if job.get("reference_spread", 0.0) > REFERENCE_SPREAD_WARN:
        said.append(f"the reference cell's speed varied by {job['reference_spread']:.0%} during the job")
    return said


def describe_interference(job: dict) -> str:
    """One line of a job's interference measures, for its log."""
    nan = math.nan
    return (
        f"other processes {job.get('other_cpu_share', nan):.1%} of the CPU time, "
        f"steal {job.get('steal_share', nan):.1%}, load average {job.get('load_avg_1m', nan):.2f}, "
        f"reference speed spread {job.get('reference_spread', nan):.1%}"
    )
