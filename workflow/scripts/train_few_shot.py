"""Snakemake adapter: the few-shot predictor of a device-table target from its training split
and the source devices: the table's other devices, or another table's (lenna.predictors.transfer)."""

import time
from pathlib import Path

import torch

from lenna.io import read_parquet
from lenna.jobs import log_to_rule
from lenna.predictors.fitting import file_sha256
from lenna.predictors.transfer import fit_few_shot, fit_source_model, source_table
from lenna.tables import read_device_table, source_columns

log = log_to_rule(snakemake)
torch.set_num_threads(1)  # one thread: identical results on any machine
device = snakemake.params.device
start = time.perf_counter()
train = read_parquet(snakemake.input.train)
chosen = device["few_shot"].get("sources")
if snakemake.input.sources == snakemake.input.table:  # the table's other devices
    sources = source_table(read_device_table(snakemake.input.table), device["column"], chosen)
else:  # another table's (a device timed alone, with a measurement kit, learns from the public table)
    sources = source_columns(read_device_table(snakemake.input.sources), chosen)
source = fit_source_model(sources, device["batch_size"], device["few_shot"].get("source"), log.info)
training = {
    "target": snakemake.wildcards.target,
    "data_sha256": file_sha256(snakemake.input.train),
    "n_train": len(train),
}
predictor = fit_few_shot(source, train, training=training)
predictor.save(Path(snakemake.output.model).parent)
log.info(
    "few-shot predictor: %s; trained in %.1f s",
    predictor.description["transfer"],
    time.perf_counter() - start,
)
