"""Snakemake adapter: split a merged table by spec id (or by its own split column) and fit the
normaliser on train."""

from lenna.datasets import check_splits, fit_normaliser, split_by_spec_id
from lenna.io import read_parquet, write_json, write_parquet
from lenna.jobs import log_to_rule

log = log_to_rule(snakemake)
space = snakemake.params.search_space
table = read_parquet(snakemake.input.table, ["spec_id", "latency_ms"])
if "split" in table:  # set by the import (a few-shot target of a device table, lenna.tables)
    splits = {name: table[table["split"] == name].reset_index(drop=True) for name in ("train", "val", "test")}
    if splits["val"].empty:  # a few-shot target: its n labels are all it has, to fit and to validate
        splits["val"] = splits["train"]
else:
    splits = split_by_spec_id(table, snakemake.params.split)
    check_splits(splits, snakemake.params.split, snakemake.input.table)
for name, part in splits.items():
    write_parquet(part, snakemake.output[name], metadata={"schema_version": 1, "split": name})
write_json(fit_normaliser(splits["train"], space["op_set"], space["steps"]), snakemake.output.normaliser)
log.info("split sizes %s", {k: len(v) for k, v in splits.items()})
