"""Snakemake adapter: whole networks, predicted from their cells against measured."""

from lenna.io import read_parquet
from lenna.jobs import log_to_rule
from lenna.report.figures import predicted_vs_measured

log = log_to_rule(snakemake)
table = read_parquet(snakemake.input.predictions, ["network", "latency_ms", "predicted_ms"])
title = f"whole networks: {snakemake.wildcards.model} on {snakemake.wildcards.target}"
predicted_vs_measured(
    table["latency_ms"], table["predicted_ms"], table["network"], title, snakemake.output.scatter
)
log.info("figure of %d networks", len(table))
