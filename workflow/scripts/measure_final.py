"""Snakemake adapter: time a searched network on the target's device, beside its prediction."""

from pathlib import Path

from lenna.io import write_json
from lenna.jobs import log_to_rule
from lenna.predictors.model import load_predictor
from lenna.predictors.network_check import predict_networks
from lenna.space.network import Macro
from lenna.space.spaces import load_architecture
from lenna.timing.devices import device_lock, timing_job
from lenna.timing.networks import measure_networks
from lenna.timing.protocol import TimingProtocol

log = log_to_rule(snakemake)
p = snakemake.params
target, device_str, device = timing_job(snakemake)
genotype = load_architecture(snakemake.input.genotype)
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
    "blocks_ms": float(row["blocks_ms"]),
    "device": device_str,
    "batch_size": target.batch_size,
    "macro": p.macro,
}
write_json(result, snakemake.output[0])
log.info("%s", result)
