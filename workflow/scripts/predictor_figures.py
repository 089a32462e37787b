"""Snakemake adapter: predicted against measured latency and the relative errors of a predictor."""

from lenna.io import read_parquet
from lenna.jobs import log_to_rule
from lenna.report.figures import predicted_vs_measured, relative_errors

log = log_to_rule(snakemake)
table = read_parquet(snakemake.input.predictions, ["label_kind", "latency_ms", "predicted_ms"])
title = f"{snakemake.wildcards.model} on {snakemake.wildcards.target}"
predicted_vs_measured(
    table["latency_ms"], table["predicted_ms"], table["label_kind"], title, snakemake.output.scatter
)
relative_errors(table["latency_ms"], table["predicted_ms"], title, snakemake.output.errors)
log.info("figures of %d test predictions", len(table))
