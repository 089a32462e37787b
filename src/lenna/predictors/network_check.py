"""Whole-network check: networks predicted from their cells, beside their measured latency.

A network's predicted latency is the sum of its cells' predicted latencies plus the stem and the
head (pooling and classifier), timed on their own by `lenna.timing.networks`. Users of latency
predictors ask for exactly this model-level check.
"""

from __future__ import annotations

import json

import pandas as pd

from lenna.space.genotype import Genotype
from lenna.space.network import Macro


def predict_networks(measured: pd.DataFrame, predictor) -> pd.DataFrame:
    """The measured table with each network's predicted latency: sum of cells + stem + head."""
    cells = []
    for _, row in measured.iterrows():
        macro = Macro(**{f[6:]: row[f] for f in measured.columns if f.startswith("macro_")})
        genotype = Genotype.from_dict(json.loads(row["genotype"]))
        cells.append(predictor.predict_genotype(genotype, macro, int(row["batch_size"])))
    out = measured.drop(columns=["genotype"]).copy()
    out["predicted_cells_ms"] = cells
    out["predicted_ms"] = out["predicted_cells_ms"] + out["stem_ms"] + out["head_ms"]
    return out
