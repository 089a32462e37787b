"""Snakemake adapter: time whole networks (random at every macro, published) by the cells' protocol."""

import time

from lenna.io import write_parquet
from lenna.jobs import log_to_rule
from lenna.space.cell import CellShape
from lenna.space.spaces import config_space
from lenna.timing.devices import device_lock, timing_job
from lenna.timing.network_plan import network_plan
from lenna.timing.networks import NETWORK_SCHEMA_VERSION, Reference, measure_networks
from lenna.timing.protocol import TimingProtocol

log = log_to_rule(snakemake)
p = snakemake.params
target, device_str, device = timing_job(snakemake)
space = config_space(p.search_space)
items = network_plan(space, p.macro, p.networks)
reference = Reference(CellShape(**p.reference), space.ops, space.steps)
with device_lock(device_str):
    start = time.perf_counter()
    protocol = TimingProtocol(**p.protocol)
    span_s = p.networks.get("span_s", 0)
    table = measure_networks(items, target, device_str, device, protocol, reference, span_s=span_s)
elapsed = time.perf_counter() - start  # recorded in the output: a cacheable rule has no benchmark
write_parquet(
    table,
    snakemake.output[0],
    metadata={"schema_version": NETWORK_SCHEMA_VERSION, "device": device_str, "elapsed_s": elapsed},
)
log.info(
    "%d networks timed on %s in %.1f s; status %s; median disagreement of a label's two best visits %.1f%%",
    len(table),
    device_str,
    elapsed,
    table["status"].value_counts().to_dict(),
    100 * table["uncertainty"].median(),
)
