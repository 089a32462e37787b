"""Snakemake adapter: score a trained predictor on the held-out test split."""

import logging
from pathlib import Path

from lenna.metrics import latency_metrics
from lenna.plots import predicted_vs_measured, relative_errors
from lenna.predictor import load_predictor
from lenna.tables import read_parquet, write_json, write_parquet

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
predictor = load_predictor(Path(snakemake.input.model).parent)
test = read_parquet(snakemake.input.test, ["spec_id", "label_kind", "latency_ms", *predictor.features])
pred = predictor.predict(test)
metrics = {"model": snakemake.wildcards.model, **latency_metrics(test["latency_ms"], pred)}
for kind, part in test.assign(pred=pred).groupby("label_kind"):
    metrics[f"by_label_kind.{kind}"] = latency_metrics(part["latency_ms"], part["pred"])
write_json(metrics, snakemake.output.metrics)
predictions = test[["spec_id", "label_kind", "latency_ms"]].assign(predicted_ms=pred)
write_parquet(predictions, snakemake.output.predictions)
title = f"{snakemake.wildcards.model} on {snakemake.wildcards.target}"
predicted_vs_measured(test["latency_ms"], pred, test["label_kind"], title, snakemake.output.scatter)
relative_errors(test["latency_ms"], pred, title, snakemake.output.errors)
logging.info("%s", metrics)
