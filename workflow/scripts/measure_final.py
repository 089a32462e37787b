"""Snakemake adapter: time a found network by the network stage's protocol, beside its prediction."""

import json
from pathlib import Path

from lenna.io import write_json
from lenna.jobs import log_to_rule
from lenna.predictors.model import load_predictor
from lenna.space.cell import CellShape
from lenna.space.network import Macro
from lenna.space.spaces import config_space, load_architecture
from lenna.timing.devices import device_lock, timing_job
from lenna.timing.networks import PARTS, NetworkItem, Reference, measure_networks
from lenna.timing.protocol import TimingProtocol

log = log_to_rule(snakemake)
p = snakemake.params
target, device_str, device = timing_job(snakemake)
space = config_space(p.search_space)
macro = Macro(**p.macro)
item = NetworkItem("found", load_architecture(snakemake.input.genotype), "final", macro, "found")
reference = Reference(CellShape(**p.reference), space.ops, space.steps)
with device_lock(device_str):
    rows = measure_networks([item], target, device_str, device, TimingProtocol(**p.protocol), reference)
row = rows.iloc[0]
if row["status"] == "failed":
    raise RuntimeError(f"{snakemake.input.genotype}: the found network could not be timed: {row['error']}")
# Calibrated as the cells and the network stage's networks are: to the cell jobs' median speed.
nominal = json.loads(Path(snakemake.input.cells).read_text())["reference_nominal_ms"]
speed = float(row["reference_ms"]) / nominal if p.calibrate else 1.0
predictor = load_predictor(Path(snakemake.input.model).parent)
cells = predictor.predict_cells(item.arch, macro, target.batch_size)
parts = predictor.network_model().parts_ms(macro)
result = {
    "latency_ms": float(row["latency_ms"]) / speed,
    "latency_ms_raw": float(row["latency_ms"]),
    "speed_factor": speed,
    "status": row["status"],
    "uncertainty": float(row["uncertainty"]),
    "predicted_latency_ms": predictor.predict_network(item.arch, macro, target.batch_size),
    "predicted_sum_ms": cells + sum(parts.values()),
    "predicted_cells_ms": cells,
    **{f"{part}_ms": float(row[f"{part}_ms"]) / speed for part in PARTS},
    "network_model": predictor.network_model().chosen,
    "device": device_str,
    "batch_size": target.batch_size,
    "macro": p.macro,
}
write_json(result, snakemake.output[0])
log.info("%s", result)
