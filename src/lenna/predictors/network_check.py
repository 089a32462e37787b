"""Whole-network check: networks predicted from their cells, beside their measured latency.

A network's predicted latency is the sum of its cells' predicted latencies plus the stem, the
head (pooling and classifier) and any reduction blocks, timed on their own by
`lenna.timing.networks`. Users of latency predictors ask for exactly this model-level check.
"""

from __future__ import annotations

import json

import pandas as pd

from lenna.space import lenna_block
from lenna.space.genotype import Genotype
from lenna.space.nb201 import Arch
from lenna.space.network import Macro


def read_architecture(text: str):
    """An architecture as `lenna.timing.networks.architecture_text` stored it."""
    if text.lstrip().startswith("|"):
        return Arch.parse(text)
    if text.lstrip().startswith("normal="):
        return lenna_block.Arch.parse(text)
    return Genotype.from_dict(json.loads(text))


def predict_networks(measured: pd.DataFrame, predictor) -> pd.DataFrame:
    """The measured table with each network's predicted latency: sum of cells + the parts
    timed alone (stem, head, and reduction blocks where the network has them)."""
    cells = []
    for _, row in measured.iterrows():
        macro = Macro(**{f[6:]: row[f] for f in measured.columns if f.startswith("macro_")})
        arch = read_architecture(row["genotype"])
        cells.append(predictor.predict_genotype(arch, macro, int(row["batch_size"])))
    out = measured.drop(columns=["genotype"]).copy()
    out["predicted_cells_ms"] = cells
    blocks = out["blocks_ms"] if "blocks_ms" in out else 0.0
    out["predicted_ms"] = out["predicted_cells_ms"] + out["stem_ms"] + out["head_ms"] + blocks
    return out
