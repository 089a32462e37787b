"""Snakemake adapter: label distribution, dispersion, convergence and throughput of a target."""

from pathlib import Path

import pandas as pd

from lenna.io import read_metadata, read_parquet
from lenna.jobs import log_to_rule
from lenna.report.figures import convergence, label_dispersion, label_distribution, throughput_table

log = log_to_rule(snakemake)

target = snakemake.wildcards.target
table = read_parquet(snakemake.input.table, ["latency_ms", "label_kind", "dispersion", "replicates_ms"])
label_distribution(table, f"latency labels on {target}", snakemake.output.distribution)
label_dispersion(table, f"label noise on {target}", snakemake.output.dispersion)
convergence(table, f"expected-latency convergence on {target}", snakemake.output.convergence)
rows = []
for shard in snakemake.input.shards:
    labels = read_parquet(shard, ["label_kind", "status"])
    ok = labels[labels["status"] == "ok"]["label_kind"].value_counts()
    rows.append(
        {
            "job": Path(shard).stem,  # shard-N, or round-N of adaptive sampling
            "discrete": int(ok.get("discrete", 0)),
            "expected": int(ok.get("expected", 0)),
            "seconds": float(read_metadata(shard)["elapsed_s"]),
        }
    )
throughput_table(pd.DataFrame(rows), f"timing throughput on {target}", snakemake.output.throughput)
log.info("figures of %d labels and %d shards", len(table), len(rows))
