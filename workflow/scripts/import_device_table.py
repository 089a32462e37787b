"""Snakemake adapter: one device column of a device table as a network-unit dataset; for a
few-shot target, with the split of the published protocol (lenna.tables)."""

from lenna.io import write_json, write_parquet
from lenna.jobs import log_to_rule
from lenna.tables import Protocol, few_shot_split, network_dataset, read_device_table

log = log_to_rule(snakemake)
device = snakemake.params.device
table = read_device_table(snakemake.input.table)
data = network_dataset(table, device["column"], device["batch_size"], source=snakemake.input.table)
few_shot = device["few_shot"]
if few_shot:
    protocol = Protocol.from_config(device["protocol"])
    what = f"{snakemake.input.table} (device_tables.{device['table']}.few_shot)"
    data["split"] = few_shot_split(
        data, table, device["column"], few_shot["n"], few_shot["seed"], protocol, what
    )
write_parquet(data, snakemake.output.table, metadata={"schema_version": 1})
summary = {
    "n_rows": int(len(data)),
    "n_ok": int(len(data)),
    "n_failed": 0,
    "failure_reasons": {},
    "n_duplicates_dropped": 0,
    "n_resampled_dropped": 0,
    "n_disconnected_dropped": int(len(table) - len(data)),
    "by_label_kind": {"discrete": int(len(data))},
    "unit": "network",
    "source": snakemake.input.table,
    "column": device["column"],
    "batch_size": device["batch_size"],
    **({"split": data["split"].value_counts().to_dict()} if few_shot else {}),
}
write_json(summary, snakemake.output.summary)
log.info("%s", summary)
