"""Snakemake adapter: predict whole networks from their cells and score against their timing."""

from pathlib import Path

from lenna.io import read_parquet, write_json, write_parquet
from lenna.jobs import log_to_rule
from lenna.predictors.metrics import latency_metrics
from lenna.predictors.model import load_predictor
from lenna.predictors.network_check import predict_networks

log = log_to_rule(snakemake)
predictor = load_predictor(Path(snakemake.input.model).parent)
table = predict_networks(read_parquet(snakemake.input.measured, ["genotype", "latency_ms"]), predictor)
write_parquet(table, snakemake.output.predictions)
metrics = {"model": snakemake.wildcards.model, **latency_metrics(table["latency_ms"], table["predicted_ms"])}
for name, part in table.groupby("network"):
    metrics[f"network.{name}"] = latency_metrics(part["latency_ms"], part["predicted_ms"])
write_json(metrics, snakemake.output.metrics)
log.info("%s", metrics)
