"""Snakemake adapter: adaptive sampling's rounds of a target, drawn."""

import json
from pathlib import Path

from lenna.jobs import log_to_rule
from lenna.report.figures import plot_rounds

log = log_to_rule(snakemake)
# The merge keeps every round's decision (lenna.adaptive.plan_round) in the dataset's summary.
decisions = json.loads(Path(snakemake.input.summary).read_text())["adaptive"]
plot_rounds(decisions, f"adaptive sampling on {snakemake.wildcards.target}", snakemake.output.svg)
log.info("%d round decisions", len(decisions))
