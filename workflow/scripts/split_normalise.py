"""Snakemake adapter: split a merged table by spec id and fit the normaliser on train."""

from lenna.datasets import fit_normaliser, split_by_spec_id
from lenna.io import read_parquet, write_json, write_parquet
from lenna.jobs import log_to_rule

log = log_to_rule(snakemake)
space = snakemake.params.search_space
table = read_parquet(snakemake.input.table, ["spec_id", "latency_ms"])
splits = split_by_spec_id(table, snakemake.params.split)
for name, part in splits.items():
    write_parquet(part, snakemake.output[name], metadata={"schema_version": 1, "split": name})
write_json(fit_normaliser(splits["train"], space["op_set"], space["steps"]), snakemake.output.normaliser)
log.info("split sizes %s", {k: len(v) for k, v in splits.items()})
