"""Snakemake adapter: time every spec of one shard on the job's device."""

import logging
import time

from lenna.cell import CellShape
from lenna.measure import (
    LATENCY_SCHEMA_VERSION,
    Target,
    TimingProtocol,
    device_lock,
    measure_specs,
    pin_device,
)
from lenna.tables import read_parquet, write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
settings = snakemake.params.target
target = Target(snakemake.wildcards.target, settings["batch_size"], settings["threads"], settings["dtype"])
protocol = TimingProtocol(**snakemake.params.protocol)
device_str = snakemake.resources.device
device = pin_device(device_str, target.threads)
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
logging.info(
    "%d specs on %s in %.1f s (%.1f labels/min); status %s",
    len(rows),
    device_str,
    elapsed,
    60 * len(rows) / elapsed,
    rows["status"].value_counts().to_dict(),
)
