"""Snakemake adapter: take an external latency table (bring your own hardware) as a dataset."""

from lenna.datasets import import_external_table
from lenna.io import write_json, write_parquet
from lenna.jobs import log_to_rule

log = log_to_rule(snakemake)
space = snakemake.params.search_space
table, summary = import_external_table(snakemake.input.table, space["op_set"], space["steps"])
write_parquet(table, snakemake.output.table, metadata={"schema_version": 1})
write_json(summary, snakemake.output.summary)
log.info("%s", summary)
