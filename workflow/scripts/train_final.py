"""Snakemake adapter: train a derived network from scratch and report its test accuracy."""

from lenna.io import write_json, write_parquet
from lenna.jobs import log_to_rule
from lenna.search.final import FinalSettings, train_final
from lenna.search.images import load_data
from lenna.space.network import Macro
from lenna.space.spaces import load_architecture
from lenna.timing.devices import compute_device

log = log_to_rule(snakemake)
p = snakemake.params
device = compute_device(snakemake.resources.device, snakemake.threads, "train_final.device")
genotype = load_architecture(snakemake.input.genotype)
history, metrics = train_final(
    genotype,
    Macro(**p.macro),
    load_data(p.data),
    FinalSettings(**p.settings),
    p.seed,
    log=log.info,
    device=device,
)
write_parquet(history, snakemake.output.history)
write_json(metrics | {"genotype": str(genotype), "macro": p.macro}, snakemake.output.metrics)
log.info("test accuracy %.4f", metrics["test_accuracy"])
