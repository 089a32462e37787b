"""Snakemake adapter: the accuracy / measured-latency plane of a target's searched networks."""

import pandas as pd

from lenna.jobs import log_to_rule
from lenna.report.figures import plot_pareto

log = log_to_rule(snakemake)
table = pd.read_csv(snakemake.input.table)
plot_pareto(table, f"searched networks on {snakemake.wildcards.target}", snakemake.output.plot)
log.info("%d searched networks drawn", len(table))
