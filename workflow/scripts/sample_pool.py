"""Snakemake adapter: the candidate pool of adaptive sampling: specs of the stream after the
random ones, those of the training split only (chosen specs only ever train)."""

from lenna.datasets import in_split
from lenna.io import write_parquet
from lenna.jobs import log_to_rule
from lenna.space.specs import SPEC_SCHEMA_VERSION, sample_specs, sampling_plan

log = log_to_rule(snakemake)
p = snakemake.params
plan = sampling_plan({"search_space": p.search_space, "macro": p.macro, "sampling": p.sampling})
drawn = sample_specs(plan, p.pool["seed"], p.pool["start"], p.pool["stop"])
pool = in_split(drawn, p.split, "train")
write_parquet(pool, snakemake.output[0], metadata={"schema_version": SPEC_SCHEMA_VERSION, "pool": p.pool})
log.info("%d candidates: the training-split specs of %d drawn (%s)", len(pool), len(drawn), p.pool)
