"""Snakemake adapter: train a derived network from scratch and report its test accuracy."""

import torch

from lenna.io import write_json, write_parquet
from lenna.jobs import log_to_rule
from lenna.search.final import FinalSettings, train_final
from lenna.search.images import load_data
from lenna.space.network import Macro
from lenna.space.spaces import load_architecture

log = log_to_rule(snakemake)
p = snakemake.params
torch.set_num_threads(snakemake.threads)
genotype = load_architecture(snakemake.input.genotype)
history, metrics = train_final(
    genotype, Macro(**p.macro), load_data(p.data), FinalSettings(**p.settings), p.seed, log=log.info
)
write_parquet(history, snakemake.output.history)
write_json(metrics | {"genotype": str(genotype), "macro": p.macro}, snakemake.output.metrics)
log.info("test accuracy %.4f", metrics["test_accuracy"])
