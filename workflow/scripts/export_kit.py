"""Snakemake adapter: a measurement kit's directory: the benchmark networks of its architectures,
the manifest, the timing script and the README (lenna.kit.export)."""

from pathlib import Path

import pandas as pd
import torch

from lenna.jobs import log_to_rule
from lenna.kit.export import build_kit

log = log_to_rule(snakemake)
torch.set_num_threads(1)
p = snakemake.params
manifest = build_kit(
    pd.read_csv(snakemake.input.architectures),
    Path(snakemake.output[0]),
    table=snakemake.wildcards.table,
    batch_size=p.batch_size,
    formats=p.formats,
    protocol=p.protocol,
    feedback=p.feedback,
    log=log.info,
)
log.info("%d networks exported; formats %s", len(manifest["networks"]), manifest["formats"])
