"""Snakemake adapter: one device of a table held out (wildcard ``device``; its sources every
other device), or one family held out whole (wildcard ``family``; its sources the other
families): the few-shot predictors, the same MLP trained alone, and FLOPs, for every n and seed."""

import time

import torch

from lenna.io import atomic_write
from lenna.jobs import log_to_rule
from lenna.predictors.transfer import leave_family_out, leave_one_device_out
from lenna.tables import Protocol, read_device_table

log = log_to_rule(snakemake)
torch.set_num_threads(1)
p = snakemake.params
start = time.perf_counter()
held_out = leave_family_out if "family" in snakemake.wildcards.keys() else leave_one_device_out
scores = held_out(
    read_device_table(snakemake.input.table),
    snakemake.wildcards.get("family") or snakemake.wildcards.device,
    p.settings["n_labels"],
    p.settings["seeds"],
    Protocol.from_config(p.protocol),
    p.settings.get("source"),
    log=log.info,
)
atomic_write(snakemake.output[0], lambda tmp: scores.to_csv(tmp, index=False))
log.info("done in %.0f s", time.perf_counter() - start)
