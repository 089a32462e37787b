"""Snakemake adapter: one table of every predictor's test metrics for a target."""

import json
from pathlib import Path

import pandas as pd

from lenna.jobs import log_to_rule
from lenna.predictors.metrics import METRIC_KEYS

log = log_to_rule(snakemake)
rows = [json.loads(Path(p).read_text()) for p in snakemake.input.metrics]
table = pd.DataFrame([{k: r[k] for k in ("model", *METRIC_KEYS)} for r in rows])
networks = [json.loads(Path(p).read_text()) for p in snakemake.input.networks]
for key in ("within_10pct", "median_ape", "spearman", "n_test"):
    if networks:  # external targets have no networks timed by the workflow
        table[f"network_{key}"] = [n[key] for n in networks]
if networks:  # the plain sum of cells and parts, beside the network model
    table["network_sum_within_10pct"] = [n["sum"]["within_10pct"] for n in networks]
    table["network_model"] = [n.get("name", n["chosen"]) for n in networks]
# What the learned models add: RMSE as a share of each baseline's that was trained.
baseline = table.set_index("model")["rmse_ms"]
for name in ("lut", "elasticnet"):
    if name in baseline:
        table[f"rmse_vs_{name}"] = table["rmse_ms"] / baseline[name]
table.to_csv(snakemake.output.csv, index=False, float_format="%.4g")
Path(snakemake.output.html).write_text(
    f"<h3>Latency predictors on target {snakemake.wildcards.target}</h3>\n"
    "<p>Cells of the held-out test split; <code>network_*</code>: whole networks no network "
    "model was fitted on (test split, held-out macro, published architectures), predicted by "
    "the chosen network model (<code>network_model</code>) and, in "
    "<code>network_sum_within_10pct</code>, as the plain sum of cells, stem and head.</p>\n"
    + table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
)
log.info("\n%s", table)
