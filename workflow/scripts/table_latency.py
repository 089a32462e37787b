"""Snakemake adapter: the latency of a searched architecture on a device-table target, looked up
in the table (the device cannot be timed here), beside its prediction."""

from pathlib import Path

from lenna.io import DataError, write_json
from lenna.jobs import log_to_rule
from lenna.predictors.model import load_predictor
from lenna.space.spaces import load_architecture
from lenna.tables import read_device_table

log = log_to_rule(snakemake)
device = snakemake.params.device
arch = load_architecture(snakemake.input.genotype)
table = read_device_table(snakemake.input.table).set_index("arch")
if str(arch) not in table.index:
    raise DataError(f"{snakemake.input.table}: no row for the searched architecture {arch}")
predictor = load_predictor(Path(snakemake.input.model).parent)
result = {
    "latency_ms": float(table.loc[str(arch), device["column"]]),
    "predicted_latency_ms": predictor.predict_network(arch, None, device["batch_size"]),
    "source": "table",
    "table": snakemake.input.table,
    "column": device["column"],
    "batch_size": device["batch_size"],
    "index": int(table.loc[str(arch), "index"]),
}
write_json(result, snakemake.output[0])
log.info("%s", result)
