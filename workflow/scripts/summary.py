"""Snakemake adapter: the headline numbers of every target as Markdown and HTML."""

import json
import logging
from pathlib import Path

import pandas as pd

from lenna.summary import to_html, to_markdown
from lenna.tables import atomic_write

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
p = snakemake.params
comparisons = {t: pd.read_csv(f) for t, f in zip(p.targets, snakemake.input.comparisons, strict=True)}
pareto = {t: json.loads(Path(f).read_text()) for t, f in zip(p.measured, snakemake.input.pareto, strict=True)}
markdown = to_markdown(comparisons, pareto)
atomic_write(Path(snakemake.output.markdown), lambda tmp: Path(tmp).write_text(markdown))
page = to_html(comparisons, pareto)
atomic_write(Path(snakemake.output.html), lambda tmp: Path(tmp).write_text(page))
logging.info("\n%s", markdown)
