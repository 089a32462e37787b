"""Snakemake adapter: time the found networks of a predictor's sweep together, beside their predictions."""

import json
from pathlib import Path

from lenna.io import read_parquet, write_json
from lenna.jobs import log_to_rule
from lenna.predictors.model import load_predictor
from lenna.search.found import anchor_items, found_items, found_latencies, measure_found
from lenna.space.cell import CellShape
from lenna.space.network import Macro
from lenna.space.spaces import config_space, load_architecture
from lenna.timing.devices import device_lock, timing_job
from lenna.timing.networks import Reference
from lenna.timing.protocol import TimingProtocol

log = log_to_rule(snakemake)
p = snakemake.params
target, device_str, device = timing_job(snakemake)
space = config_space(p.search_space)
macro = Macro(**p.macro)
archs = {path: load_architecture(path) for path in snakemake.input.genotypes}
items, item_of = found_items(archs, macro)
# Networks the network stage labelled, timed beside the found ones to calibrate the job.
anchors, labels = anchor_items(read_parquet(snakemake.input.networks), macro) if p.calibrate else ([], None)
log.info("%d found networks, %d distinct, %d anchors", len(archs), len(items), len(anchors))
reference = Reference(CellShape(**p.reference), space.ops, space.steps)
with device_lock(device_str):
    protocol = TimingProtocol(**p.protocol)
    rows = measure_found(items, anchors, target, device_str, device, protocol, reference, span_s=p.span_s)
cells = json.loads(Path(snakemake.input.cells).read_text())
nominal = cells["reference_nominal_ms"] if p.calibrate else None
predictor = load_predictor(Path(snakemake.input.model).parent)
results = found_latencies(items, rows, nominal, predictor, target, device_str, p.macro, labels)
for path in archs:
    output = str(Path(path).parent / "final" / "latency.json")
    if output not in snakemake.output:
        raise RuntimeError(f"{path}: no output {output} of this job")
    write_json(results[item_of[path]], output)
    log.info("%s: %s", path, results[item_of[path]])
