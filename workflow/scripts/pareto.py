"""Snakemake adapter: accuracy / measured-latency table, Pareto front and headline of a target."""

import json
import logging
import re
from pathlib import Path

from lenna.pareto import headline, pareto_table, plot_pareto
from lenna.tables import atomic_write, write_json

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
RUN = re.compile(r"/search/[^/]+/(?P<model>[^/]+)/lambda-(?P<lam>[^/]+)/seed-(?P<seed>\d+)/")
rows = []
for metrics, latency, summary in zip(
    snakemake.input.metrics, snakemake.input.latency, snakemake.input.summary, strict=True
):
    run = RUN.search(metrics)
    m, lat, s = (json.loads(open(f).read()) for f in (metrics, latency, summary))
    rows.append(
        {
            "model": run["model"],
            "lambda": float(run["lam"]),
            "seed": int(run["seed"]),
            "test_accuracy": m["test_accuracy"],
            "latency_ms": lat["latency_ms"],
            "predicted_latency_ms": lat["predicted_latency_ms"],
            "val_accuracy": m["val_accuracy"],
            "parameters": m["parameters"],
            "search_genotype_latency_ms": s["genotype_latency_ms"],
            "genotype": m["genotype"],
        }
    )
table = pareto_table(rows)
atomic_write(Path(snakemake.output.table), lambda tmp: table.to_csv(tmp, index=False))
page = table.drop(columns=["genotype"]).to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
atomic_write(Path(snakemake.output.html), lambda tmp: Path(tmp).write_text(page))
summary = headline(table)
write_json({"target": snakemake.wildcards.target, "models": summary}, snakemake.output.summary)
plot_pareto(table, f"searched networks on {snakemake.wildcards.target}", snakemake.output.plot)
logging.info("%s", summary)
