"""Snakemake adapter: one latency-aware DARTS search (target x predictor x lambda x seed)."""

import logging
from pathlib import Path

import torch

from lenna.data import load_data
from lenna.network import Macro
from lenna.ops import op_set
from lenna.predictor import load_predictor
from lenna.search import run_search
from lenna.search_config import search_settings
from lenna.tables import write_json, write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
p = snakemake.params
torch.set_num_threads(snakemake.threads)
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
    expected_latency=lambda a_normal, a_reduce: predictor.expected_network_latency(
        a_normal, a_reduce, macro, p.batch_size
    ),
    genotype_latency=lambda g: predictor.predict_genotype(g, macro, p.batch_size),
    log=logging.info,
)
write_parquet(history, snakemake.output.history)
write_json(
    summary | {"predictor": snakemake.wildcards.model, "genotype": str(genotype)}, snakemake.output.summary
)
write_json(genotype.to_dict(), snakemake.output.genotype)
logging.info("derived %s", genotype)
