"""Snakemake adapter: predict whole networks from their cells and score against their timing."""

import logging
from pathlib import Path

from lenna.metrics import latency_metrics
from lenna.networks import predict_networks
from lenna.plots import predicted_vs_measured
from lenna.predictor import load_predictor
from lenna.tables import read_parquet, write_json, write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
predictor = load_predictor(Path(snakemake.input.model).parent)
table = predict_networks(read_parquet(snakemake.input.measured, ["genotype", "latency_ms"]), predictor)
write_parquet(table, snakemake.output.predictions)
metrics = {"model": snakemake.wildcards.model, **latency_metrics(table["latency_ms"], table["predicted_ms"])}
for name, part in table.groupby("network"):
    metrics[f"network.{name}"] = latency_metrics(part["latency_ms"], part["predicted_ms"])
write_json(metrics, snakemake.output.metrics)
title = f"whole networks: {snakemake.wildcards.model} on {snakemake.wildcards.target}"
predicted_vs_measured(
    table["latency_ms"], table["predicted_ms"], table["network"], title, snakemake.output.scatter
)
logging.info("%s", metrics)
