"""Snakemake adapter: the timed networks as a calibrated, split dataset."""

import json
from pathlib import Path

from lenna.io import read_parquet, write_json, write_parquet
from lenna.jobs import log_to_rule
from lenna.predictors.composition import network_dataset
from lenna.space.spaces import config_space

log = log_to_rule(snakemake)
cells = json.loads(Path(snakemake.input.summary).read_text())
measured = read_parquet(snakemake.input.measured, ["name", "latency_ms"])
table, summary = network_dataset(
    measured,
    cells["reference_nominal_ms"],
    snakemake.params.calibrate,
    snakemake.params.split,
    snakemake.input.measured,
    config_space(snakemake.params.search_space),
)
write_parquet(table, snakemake.output.table)
write_json(summary, snakemake.output.summary)
log.info("%s", summary)
