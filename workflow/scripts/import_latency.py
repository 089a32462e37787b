"""Snakemake adapter: take an external latency table (bring your own hardware) as a dataset."""

import logging

from lenna.datasets import import_external_table
from lenna.tables import write_json, write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
space = snakemake.params.search_space
table, summary = import_external_table(snakemake.input.table, space["op_set"], space["steps"])
write_parquet(table, snakemake.output.table, metadata={"schema_version": 1})
write_json(summary, snakemake.output.summary)
logging.info("%s", summary)
