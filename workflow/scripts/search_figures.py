"""Snakemake adapter: history, alpha evolution and derived cells of one search run."""

from lenna.io import read_parquet
from lenna.jobs import log_to_rule
from lenna.report.figures import alpha_evolution, draw_genotype, search_history
from lenna.space.ops import op_set
from lenna.space.spaces import load_architecture

log = log_to_rule(snakemake)

w = snakemake.wildcards
run = f"{w.model}, lambda {w.lam}, seed {w.seed} on {w.target}"
history = read_parquet(snakemake.input.history, ["epoch", "alpha_updates", "genotype"])
search_history(history, f"search {run}", snakemake.output.history)
alpha_evolution(
    history, op_set(snakemake.params.op_set), f"architecture weights, {run}", snakemake.output.alphas
)
genotype = load_architecture(snakemake.input.genotype)
draw_genotype(genotype, f"derived cells, {run}", snakemake.output.cells)
log.info("figures of %d epochs; derived %s", len(history), genotype)
