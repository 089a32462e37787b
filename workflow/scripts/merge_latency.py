"""Snakemake adapter: merge a target's latency shards with their specs."""

import logging

from lenna.datasets import merge_latency
from lenna.tables import write_json, write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
table, summary = merge_latency(snakemake.input.specs, snakemake.input.latency, snakemake.params.calibrate)
write_parquet(table, snakemake.output.table, metadata={"schema_version": 1})
write_json(summary, snakemake.output.summary)
logging.info("%s", summary)
