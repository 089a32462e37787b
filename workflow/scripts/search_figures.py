"""Snakemake adapter: history, alpha evolution and derived cells of one search run."""

from lenna.figures import alpha_evolution, draw_genotype, search_history
from lenna.genotype import Genotype
from lenna.ops import op_set
from lenna.tables import read_parquet

w = snakemake.wildcards
run = f"{w.model}, lambda {w.lam}, seed {w.seed} on {w.target}"
history = read_parquet(snakemake.input.history, ["epoch", "alpha_updates", "genotype"])
search_history(history, f"search {run}", snakemake.output.history)
alpha_evolution(
    history, op_set(snakemake.params.op_set), f"architecture weights, {run}", snakemake.output.alphas
)
genotype = Genotype.load(snakemake.input.genotype)
draw_genotype(genotype, f"derived cells, {run}", snakemake.output.cells)
