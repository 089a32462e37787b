"""Snakemake adapter: fit a predictor's network model on the timed networks and score it."""

from pathlib import Path

from lenna.io import read_parquet, write_json, write_parquet
from lenna.jobs import log_to_rule
from lenna.predictors.composition import fit_network_model, network_metrics, score_networks
from lenna.predictors.model import load_predictor

log = log_to_rule(snakemake)
predictor = load_predictor(Path(snakemake.input.model).parent)
table = read_parquet(snakemake.input.networks, ["name", "latency_ms", "split"])
model, inputs = fit_network_model(table, predictor, snakemake.input.networks)
scored = score_networks(table, model, inputs)
model.save(snakemake.output.model)
write_parquet(scored, snakemake.output.predictions)
metrics = {"model": snakemake.wildcards.model, **network_metrics(scored, model)}
write_json(metrics, snakemake.output.metrics)
log.info("chose %s: %s", model.name, metrics)
