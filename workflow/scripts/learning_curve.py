"""Snakemake adapter: test error of the learned predictors against training-set size."""

import json
import logging

import torch

from lenna.plots import learning_curve as plot_learning_curve
from lenna.tables import read_parquet
from lenna.training import learning_curve

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
torch.set_num_threads(1)
normaliser = json.loads(open(snakemake.input.normaliser).read())
columns = ["spec_id", "latency_ms", *normaliser["features"]]
splits = {name: read_parquet(snakemake.input[name], columns) for name in ("train", "val", "test")}
p = snakemake.params
table = learning_curve(*splits.values(), normaliser, p.fractions, p.elasticnet, p.mlp)
table.to_csv(snakemake.output.csv, index=False, float_format="%.5g")
plot_learning_curve(table, f"learning curve on {snakemake.wildcards.target}", snakemake.output.svg)
logging.info("\n%s", table)
