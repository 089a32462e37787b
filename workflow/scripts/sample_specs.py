"""Snakemake adapter: write one spec shard."""

from lenna.io import write_parquet
from lenna.jobs import log_to_rule
from lenna.space.specs import SPEC_SCHEMA_VERSION, sample_specs, sampling_plan

log = log_to_rule(snakemake)
p = snakemake.params
plan = sampling_plan({"search_space": p.search_space, "macro": p.macro, "sampling": p.sampling})
shard = p.shard
specs = sample_specs(plan, shard["seed"], shard["start"], shard["stop"])
write_parquet(specs, snakemake.output[0], metadata={"schema_version": SPEC_SCHEMA_VERSION, "shard": shard})
log.info(
    "%d specs (%s) from %d shapes", len(specs), specs["sampler"].value_counts().to_dict(), len(plan.shapes)
)
