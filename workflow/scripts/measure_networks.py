"""Snakemake adapter: time whole networks of random architectures at the search and final settings."""

import time

import numpy as np

from lenna.io import write_parquet
from lenna.jobs import log_to_rule
from lenna.space.network import Macro, network_macro
from lenna.timing.devices import device_lock, timing_job
from lenna.timing.networks import measure_networks, random_architecture
from lenna.timing.protocol import TimingProtocol

log = log_to_rule(snakemake)
p = snakemake.params
target, device_str, device = timing_job(snakemake)
rng = np.random.default_rng(p.check["seed"])
genotypes = [
    random_architecture(rng, p.search_space["op_set"], p.search_space["steps"])
    for _ in range(p.check["n_genotypes"])
]
macros = {name: Macro(**network_macro(p.macro, name)) for name in ("search", "final")}
with device_lock(device_str):
    start = time.perf_counter()
    table = measure_networks(genotypes, macros, target, device, TimingProtocol(**p.protocol))
elapsed = time.perf_counter() - start  # recorded in the output: a cacheable rule has no benchmark
write_parquet(
    table, snakemake.output[0], metadata={"schema_version": 1, "device": device_str, "elapsed_s": elapsed}
)
log.info("%d networks timed on %s in %.1f s", len(table), device_str, elapsed)
