"""Snakemake adapter: time the benchmark networks of NAS-Bench-201 architectures of the public table."""

import time

from lenna.io import read_parquet, write_parquet
from lenna.jobs import log_to_rule
from lenna.tables import sample_public
from lenna.timing.devices import device_lock, timing_job
from lenna.timing.protocol import TimingProtocol
from lenna.timing.public import measure_public

log = log_to_rule(snakemake)
p = snakemake.params
target, device_str, device = timing_job(snakemake)
archs = sample_public(read_parquet(snakemake.input.table), p.check["n_archs"], p.check["seed"])
protocol = TimingProtocol(**{**p.protocol, **p.check["protocol"]})
with device_lock(device_str):
    start = time.perf_counter()
    table = measure_public(archs, p.check["batch_sizes"], target, device, protocol, log.info)
elapsed = time.perf_counter() - start  # recorded in the output: a cacheable rule has no benchmark
write_parquet(
    table, snakemake.output[0], metadata={"schema_version": 1, "device": device_str, "elapsed_s": elapsed}
)
log.info("%d networks timed on %s in %.1f s", len(table), device_str, elapsed)
