"""Snakemake adapter: whole networks, the plain sum of cells and the network model against measured."""

from lenna.io import read_parquet
from lenna.jobs import log_to_rule
from lenna.report.figures import plot_networks

log = log_to_rule(snakemake)
columns = ["network", "split", "latency_ms", "predicted_ms", "predicted_sum_ms"]
table = read_parquet(snakemake.input.predictions, columns)
title = f"whole networks: {snakemake.wildcards.model} on {snakemake.wildcards.target}"
plot_networks(table, title, snakemake.output.scatter)
log.info("figure of %d networks", len(table))
