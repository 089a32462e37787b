"""Snakemake adapter: time whole networks of random genotypes at the search and final settings."""

import logging
import time

import numpy as np

from lenna.config import network_macro
from lenna.measure import Target, TimingProtocol, device_lock, pin_device
from lenna.network import Macro
from lenna.networks import measure_networks, random_genotype
from lenna.tables import write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
p = snakemake.params
target = Target(snakemake.wildcards.target, p.target["batch_size"], p.target["threads"], p.target["dtype"])
device_str = snakemake.resources.device
device = pin_device(device_str, target.threads)
rng = np.random.default_rng(p.check["seed"])
genotypes = [
    random_genotype(rng, p.search_space["op_set"], p.search_space["steps"])
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
logging.info("%d networks timed on %s in %.1f s", len(table), device_str, elapsed)
