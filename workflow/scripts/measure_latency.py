"""Snakemake adapter: time every spec of one shard on the job's device."""

import time

from lenna.io import read_parquet, write_parquet
from lenna.jobs import log_to_rule
from lenna.space.cell import CellShape
from lenna.timing.devices import device_lock, timing_job
from lenna.timing.interference import describe_interference, interference_warnings
from lenna.timing.labels import LATENCY_SCHEMA_VERSION, measure_specs
from lenna.timing.protocol import TimingProtocol

log = log_to_rule(snakemake)
target, device_str, device = timing_job(snakemake)
protocol = TimingProtocol(**snakemake.params.protocol)
specs = read_parquet(snakemake.input.specs, ["spec_id", "label_kind"])
with device_lock(device_str):
    start = time.perf_counter()
    reference = CellShape(**snakemake.params.reference)
    rows = measure_specs(specs, target, device_str, device, protocol, reference)
    elapsed = time.perf_counter() - start
write_parquet(
    rows,
    snakemake.output[0],
    # The job's timing wall time travels with the shard (also when it comes from the cache).
    metadata={
        "schema_version": LATENCY_SCHEMA_VERSION,
        "protocol": snakemake.params.protocol,
        "elapsed_s": elapsed,
    },
)
log.info(
    "%d specs on %s in %.1f s (%.1f labels/min); status %s",
    len(rows),
    device_str,
    elapsed,
    60 * len(rows) / elapsed,
    rows["status"].value_counts().to_dict(),
)
job = rows.iloc[0].to_dict() if len(rows) else {}
if len(rows):
    log.info(
        "re-timing: %d specs visited again in %d extra round(s), %.1f s; %d left unstable; "
        "median disagreement of a label's two best visits %.1f%%",
        int(rows["retimed"].sum()),
        int(job["retime_rounds_run"]),
        job["retime_s"],
        int((rows["status"] == "unstable").sum()),
        100 * rows["uncertainty"].median(),
    )
log.info("interference: %s", describe_interference(job))
for warning in interference_warnings(job):
    log.warning("%s: its labels may be too slow", warning)
