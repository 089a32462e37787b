"""Snakemake adapter: one latency-aware DARTS search (target x predictor x lambda x seed), in the
config's search space."""

from pathlib import Path

from lenna.io import write_json, write_parquet
from lenna.jobs import log_to_rule
from lenna.predictors.model import load_predictor
from lenna.search.images import load_data
from lenna.search.loop import run_search
from lenna.search.settings import search_settings
from lenna.space.network import Macro
from lenna.space.ops import op_set
from lenna.timing.devices import compute_device

log = log_to_rule(snakemake)
p = snakemake.params
device = compute_device(snakemake.resources.device, snakemake.threads, "search.device")
predictor = load_predictor(Path(snakemake.input.model).parent)
macro = Macro(**p.macro)
data = load_data(p.data)
genotype, history, summary = run_search(
    data,
    macro,
    op_set(p.search_space["op_set"]),
    p.search_space["steps"],
    search_settings(p.settings),
    p.lam,
    p.seed,
    expected_latency=lambda a_normal, a_reduce=None: predictor.expected_network_latency(
        a_normal, a_reduce, macro, p.batch_size
    ),
    genotype_latency=lambda g: predictor.predict_network(g, macro, p.batch_size),
    log=log.info,
    device=device,
)
write_parquet(history, snakemake.output.history)
write_json(
    summary | {"predictor": snakemake.wildcards.model, "genotype": str(genotype)}, snakemake.output.summary
)
write_json(genotype.to_dict(), snakemake.output.genotype)
log.info("derived %s", genotype)
