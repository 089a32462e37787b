"""Snakemake adapter: time every part of every cell shape alone (the lookup-table baseline)."""

import logging
import time

from lenna.config import macro_cell_shapes
from lenna.lut import all_parts, measure_lut
from lenna.measure import Target, TimingProtocol, device_lock, pin_device
from lenna.ops import op_set
from lenna.tables import write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
p = snakemake.params
target = Target(snakemake.wildcards.target, p.target["batch_size"], p.target["threads"], p.target["dtype"])
device_str = snakemake.resources.device
device = pin_device(device_str, target.threads)
space = p.search_space
parts = all_parts(macro_cell_shapes(space, p.macro), op_set(space["op_set"]), space["steps"])
with device_lock(device_str):
    start = time.perf_counter()
    table = measure_lut(parts, target, device, TimingProtocol(**p.protocol))
elapsed = time.perf_counter() - start  # recorded in the output: a cacheable rule has no benchmark
write_parquet(
    table, snakemake.output[0], metadata={"schema_version": 1, "device": device_str, "elapsed_s": elapsed}
)
logging.info("%d parts timed on %s in %.1f s", len(table), device_str, elapsed)
