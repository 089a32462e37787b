"""Snakemake adapter: score a trained predictor on the held-out test split."""

from pathlib import Path

from lenna.io import read_parquet, write_json, write_parquet
from lenna.jobs import log_to_rule
from lenna.predictors.metrics import latency_metrics
from lenna.predictors.model import load_predictor

log = log_to_rule(snakemake)
predictor = load_predictor(Path(snakemake.input.model).parent)
test = read_parquet(snakemake.input.test, ["spec_id", "label_kind", "latency_ms", *predictor.features])
pred = predictor.predict(test)
metrics = {"model": snakemake.wildcards.model, **latency_metrics(test["latency_ms"], pred)}
for kind, part in test.assign(pred=pred).groupby("label_kind"):
    metrics[f"by_label_kind.{kind}"] = latency_metrics(part["latency_ms"], part["pred"])
write_json(metrics, snakemake.output.metrics)
predictions = test[["spec_id", "label_kind", "latency_ms"]].assign(predicted_ms=pred)
write_parquet(predictions, snakemake.output.predictions)
log.info("%s", metrics)
