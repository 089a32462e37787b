"""Snakemake adapter: the leave-one-device-out table of a device table, its summary and figure,
and the summary of the family splits (each family's devices and their mean)."""

from pathlib import Path

import pandas as pd

from lenna.io import atomic_write
from lenna.jobs import log_to_rule
from lenna.predictors.transfer import summarise
from lenna.report.figures import plot_transfer, transfer_table
from lenna.tables import Protocol, read_device_table

log = log_to_rule(snakemake)
name = snakemake.wildcards.table
table = read_device_table(snakemake.input.table)
protocol = Protocol.from_config(snakemake.params.protocol)
scores = pd.concat([pd.read_csv(f) for f in snakemake.input.devices], ignore_index=True)
summary = summarise(scores, table, protocol)
families = pd.concat(
    [summarise(pd.read_csv(f), table, protocol).assign(family=Path(f).stem) for f in snakemake.input.families]
    or [pd.DataFrame()],
    ignore_index=True,
)
atomic_write(snakemake.output.loo, lambda tmp: scores.to_csv(tmp, index=False))
atomic_write(snakemake.output.summary, lambda tmp: summary.to_csv(tmp, index=False))
atomic_write(snakemake.output.families, lambda tmp: families.to_csv(tmp, index=False))
title = f"{name}: predictors for a held-out device"
transfer_table(summary, title, snakemake.output.html)
plot_transfer(summary, title, snakemake.output.figure)
log.info("\n%s", summary[summary["device"] == "mean"].to_string(index=False))
