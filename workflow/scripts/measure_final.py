"""Snakemake adapter: time a searched network on the target's device, beside its prediction."""

import logging
from pathlib import Path

from lenna.genotype import Genotype
from lenna.measure import Target, TimingProtocol, device_lock, pin_device
from lenna.network import Macro
from lenna.networks import measure_networks, predict_networks
from lenna.predictor import load_predictor
from lenna.tables import write_json

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
p = snakemake.params
target = Target(snakemake.wildcards.target, p.target["batch_size"], p.target["threads"], p.target["dtype"])
device_str = snakemake.resources.device
device = pin_device(device_str, target.threads)
genotype = Genotype.load(snakemake.input.genotype)
with device_lock(device_str):
    measured = measure_networks(
        [genotype], {"final": Macro(**p.macro)}, target, device, TimingProtocol(**p.protocol)
    )
row = predict_networks(measured, load_predictor(Path(snakemake.input.model).parent)).iloc[0]
result = {
    "latency_ms": float(row["latency_ms"]),
    "predicted_latency_ms": float(row["predicted_ms"]),
    "predicted_cells_ms": float(row["predicted_cells_ms"]),
    "stem_ms": float(row["stem_ms"]),
    "head_ms": float(row["head_ms"]),
    "device": device_str,
    "batch_size": target.batch_size,
    "macro": p.macro,
}
write_json(result, snakemake.output[0])
logging.info("%s", result)
