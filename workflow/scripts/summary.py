"""Snakemake adapter: the headline numbers of every target as Markdown and HTML."""

import json
from pathlib import Path

import pandas as pd

from lenna.io import atomic_write
from lenna.jobs import log_to_rule
from lenna.report.summary import to_html, to_markdown

log = log_to_rule(snakemake)
p = snakemake.params
comparisons = {t: pd.read_csv(f) for t, f in zip(p.targets, snakemake.input.comparisons, strict=True)}
pareto = {t: json.loads(Path(f).read_text()) for t, f in zip(p.measured, snakemake.input.pareto, strict=True)}
datasets = {
    t: json.loads(Path(f).read_text()) for t, f in zip(p.targets, snakemake.input.datasets, strict=True)
}
public = {t: pd.read_csv(f) for t, f in zip(p.public_targets, snakemake.input.public, strict=True)}
markdown = to_markdown(comparisons, pareto, datasets, public)
atomic_write(Path(snakemake.output.markdown), lambda tmp: Path(tmp).write_text(markdown))
page = to_html(comparisons, pareto, datasets, public)
atomic_write(Path(snakemake.output.html), lambda tmp: Path(tmp).write_text(page))
log.info("\n%s", markdown)
