"""Snakemake adapter: one family of a table's devices held out whole (NASFLAT's harder split):
each device's few-shot predictor from the other families only, its MLP alone, and FLOPs."""

import time

import torch

from lenna.io import atomic_write
from lenna.jobs import log_to_rule
from lenna.predictors.transfer import leave_family_out
from lenna.tables import Protocol, read_device_table

log = log_to_rule(snakemake)
torch.set_num_threads(1)
p = snakemake.params
start = time.perf_counter()
scores = leave_family_out(
    read_device_table(snakemake.input.table),
    snakemake.wildcards.family,
    p.settings["n_labels"],
    p.settings["seeds"],
    Protocol.from_config(p.protocol),
    p.settings.get("source"),
    log=log.info,
)
atomic_write(snakemake.output[0], lambda tmp: scores.to_csv(tmp, index=False))
log.info("done in %.0f s", time.perf_counter() - start)
