"""Snakemake adapter: merge a target's latency shards with their specs."""

import json
from pathlib import Path

from lenna.datasets import describe_label_quality, merge_latency
from lenna.io import read_metadata, write_json, write_parquet
from lenna.jobs import log_to_rule

log = log_to_rule(snakemake)
table, summary = merge_latency(
    snakemake.input.specs, snakemake.input.latency, snakemake.params.calibrate, snakemake.params.quality
)
# Adaptive sampling's rounds (lenna.adaptive): each round's decision, the last one the stop if any.
rounds = [json.loads(Path(path).read_text()) for path in snakemake.input.rounds]
if rounds:
    # ... and the protocol that timed them (every shard's and round's is the config's one).
    protocol = read_metadata(snakemake.input.latency[0])["protocol"]
    summary["adaptive"] = [{**r, "protocol": protocol} for r in rounds]
write_parquet(table, snakemake.output.table, metadata={"schema_version": 1})
write_json(summary, snakemake.output.summary)
log.info("%s", summary)
for line in describe_label_quality(snakemake.wildcards.target, summary):
    (log.warning if summary["label_quality"]["poor"] else log.info)("%s", line)
for job, quality in summary["label_quality_by_job"].items():
    for warning in quality["warnings"]:
        log.warning("%s: %s", job, warning)
