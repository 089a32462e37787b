"""Snakemake adapter: one round of adaptive sampling: the specs a target times next, or the
decision to stop."""

import torch

from lenna.adaptive import plan_round
from lenna.io import read_parquet, write_json, write_parquet
from lenna.jobs import log_to_rule
from lenna.space.specs import SPEC_SCHEMA_VERSION

log = log_to_rule(snakemake)
torch.set_num_threads(1)
p = snakemake.params
pool = read_parquet(snakemake.input.pool, ["spec_id"])
round_ = int(snakemake.wildcards.round)
inputs = snakemake.input
chosen, decision = plan_round(
    round_, inputs.specs, inputs.latency, pool, p.adaptive, p.datasets, p.mlp, p.seed
)
write_parquet(
    chosen, snakemake.output.specs, metadata={"schema_version": SPEC_SCHEMA_VERSION, "round": decision}
)
write_json(decision, snakemake.output.decision)
log.info("%s", decision)
