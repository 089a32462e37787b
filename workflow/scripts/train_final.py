"""Snakemake adapter: train a derived network from scratch and report its test accuracy."""

import logging

import torch

from lenna.data import load_data
from lenna.genotype import Genotype
from lenna.network import Macro
from lenna.search import FinalSettings, train_final
from lenna.tables import write_json, write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
p = snakemake.params
torch.set_num_threads(snakemake.threads)
genotype = Genotype.load(snakemake.input.genotype)
history, metrics = train_final(
    genotype, Macro(**p.macro), load_data(p.data), FinalSettings(**p.settings), p.seed, log=logging.info
)
write_parquet(history, snakemake.output.history)
write_json(metrics | {"genotype": str(genotype), "macro": p.macro}, snakemake.output.metrics)
logging.info("test accuracy %.4f", metrics["test_accuracy"])
