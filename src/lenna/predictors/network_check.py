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


def network_factor(checked: pd.DataFrame, network: str = "final") -> float:
    """Median measured / predicted latency of the checked networks at ``network`` (`predict_networks`
    of the random genotypes `measure_networks` timed): what a sum of cells, stem and head misses
    of a whole network at that macro (the work between cells, caches warmed by one cell for the
    next), as one factor that scales a prediction at the same macro. NaN without such networks."""
    rows = checked[checked["network"] == network]
    if not len(rows):
        return float("nan")
    return float((rows["latency_ms"] / rows["predicted_ms"]).median())
