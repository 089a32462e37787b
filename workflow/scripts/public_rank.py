"""Snakemake adapter: Spearman's rho of our NAS-Bench-201 timings against every public device."""

from lenna.io import read_parquet
from lenna.jobs import log_to_rule
from lenna.report.figures import rank_table
from lenna.tables import rank_agreement

log = log_to_rule(snakemake)
table = rank_agreement(read_parquet(snakemake.input.measured), read_parquet(snakemake.input.table))
table.to_csv(snakemake.output.csv, index=False, float_format="%.4f")
rank_table(
    table, f"Rank agreement of {snakemake.wildcards.target} with public devices", snakemake.output.html
)
log.info("\n%s", table.to_string(index=False))
