"""Snakemake adapter: write one spec shard."""

import logging

from lenna.config import sampling_plan
from lenna.specs import SPEC_SCHEMA_VERSION, sample_specs
from lenna.tables import write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
p = snakemake.params
plan = sampling_plan({"search_space": p.search_space, "macro": p.macro, "sampling": p.sampling})
shard = p.shard
specs = sample_specs(plan, shard["seed"], shard["start"], shard["stop"])
write_parquet(specs, snakemake.output[0], metadata={"schema_version": SPEC_SCHEMA_VERSION, "shard": shard})
logging.info(
    "%d specs (%s) from %d shapes", len(specs), specs["sampler"].value_counts().to_dict(), len(plan.shapes)
)
