"""Snakemake adapter: accuracy / measured-latency table, Pareto front and headline of a target."""

import json
from pathlib import Path

from lenna.io import atomic_write, write_json
from lenna.jobs import log_to_rule
from lenna.search.pareto import headline, pareto_table
from lenna.space.spaces import connected, parse_architecture

log = log_to_rule(snakemake)


def load(path):
    return json.loads(Path(path).read_text())


rows = []
for metrics, latency, summary in zip(
    snakemake.input.metrics, snakemake.input.latency, snakemake.input.summary, strict=True
):
    m, lat, s = load(metrics), load(latency), load(summary)
    rows.append(
        {
            "model": s["predictor"],
            "lambda": s["lambda"],
            "seed": s["seed"],
            "test_accuracy": m["test_accuracy"],
            "latency_ms": lat["latency_ms"],
            "predicted_latency_ms": lat["predicted_latency_ms"],
            # The plain sum of cells and parts beside the network model's prediction (measured
            # targets; a device table's latency is its own network's).
            "predicted_sum_ms": lat.get("predicted_sum_ms", float("nan")),
            # the timing protocol's verdict on the label (a device table's latency has none)
            "latency_status": lat.get("status", "ok"),
            "val_accuracy": m["val_accuracy"],
            "parameters": m["parameters"],
            "search_genotype_latency_ms": s["genotype_latency_ms"],
            "genotype": m["genotype"],
            # what `degenerate_reason` tests: a network that ignores its input, or learned nothing
            "disconnected": not connected(parse_architecture(m["genotype"])),
            "num_classes": m["macro"]["num_classes"],
        }
    )
table = pareto_table(rows)
atomic_write(Path(snakemake.output.table), lambda tmp: table.to_csv(tmp, index=False))
page = table.drop(columns=["genotype"]).to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
atomic_write(Path(snakemake.output.html), lambda tmp: Path(tmp).write_text(page))
summary = headline(table)
write_json({"target": snakemake.wildcards.target, "models": summary}, snakemake.output.summary)
log.info("%s", summary)
