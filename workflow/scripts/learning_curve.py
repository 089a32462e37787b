"""Snakemake adapter: test error of the learned predictors against training-set size."""

import json

import torch

from lenna.io import read_parquet
from lenna.jobs import log_to_rule
from lenna.predictors.mlp import learning_curve

log = log_to_rule(snakemake)
torch.set_num_threads(1)
normaliser = json.loads(open(snakemake.input.normaliser).read())
columns = ["spec_id", "latency_ms", *normaliser["features"]]
splits = {name: read_parquet(snakemake.input[name], columns) for name in ("train", "val", "test")}
p = snakemake.params
table = learning_curve(*splits.values(), normaliser, p.fractions, p.elasticnet, p.mlp)
table.to_csv(snakemake.output.csv, index=False, float_format="%.5g")
log.info("\n%s", table)
