"""Snakemake adapter: test error of the learned predictors against training-set size, drawn."""

import pandas as pd

from lenna.jobs import log_to_rule
from lenna.report.figures import plot_learning_curve

log = log_to_rule(snakemake)
table = pd.read_csv(snakemake.input.csv)
plot_learning_curve(table, f"learning curve on {snakemake.wildcards.target}", snakemake.output.svg)
log.info("learning curve of %d fits", len(table))
