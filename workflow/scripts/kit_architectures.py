"""Snakemake adapter: a measurement kit's architectures, n labels chosen for the few-shot
predictor and check architectures to score it (lenna.kit.architectures)."""

import time

import torch

from lenna.io import atomic_write
from lenna.jobs import log_to_rule
from lenna.kit.architectures import kit_architectures
from lenna.tables import Protocol, read_device_table

log = log_to_rule(snakemake)
torch.set_num_threads(1)  # one thread: the same choice on any machine
settings = snakemake.params.settings
start = time.perf_counter()
archs = kit_architectures(
    read_device_table(snakemake.input.table),
    n=settings["n"],
    choice=settings["choice"],
    check=settings["check"],
    seed=settings["seed"],
    batch_size=settings["batch_size"],
    protocol=Protocol.from_config(snakemake.params.protocol),
    source_settings=settings.get("source"),
    log=log.info,
)
atomic_write(snakemake.output[0], lambda tmp: archs.to_csv(tmp, index=False))
log.info("%d architectures in %.1f s", len(archs), time.perf_counter() - start)
