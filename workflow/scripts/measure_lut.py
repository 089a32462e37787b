"""Snakemake adapter: time every part of every cell shape alone (the lookup-table baseline)."""

import time

from lenna.io import write_parquet
from lenna.jobs import log_to_rule
from lenna.space.ops import op_set
from lenna.space.parts import all_parts
from lenna.space.specs import macro_cell_shapes
from lenna.timing.devices import device_lock, timing_job
from lenna.timing.parts import measure_lut
from lenna.timing.protocol import TimingProtocol

log = log_to_rule(snakemake)
p = snakemake.params
target, device_str, device = timing_job(snakemake)
space = p.search_space
parts = all_parts(macro_cell_shapes(space, p.macro), op_set(space["op_set"]), space["steps"])
with device_lock(device_str):
    start = time.perf_counter()
    table = measure_lut(parts, target, device, TimingProtocol(**p.protocol))
elapsed = time.perf_counter() - start  # recorded in the output: a cacheable rule has no benchmark
write_parquet(
    table, snakemake.output[0], metadata={"schema_version": 1, "device": device_str, "elapsed_s": elapsed}
)
log.info("%d parts timed on %s in %.1f s", len(table), device_str, elapsed)
