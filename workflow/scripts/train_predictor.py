"""Snakemake adapter: fit the predictor named by the rule on a target's training split."""

import json
import time

from lenna.io import read_parquet, write_parquet
from lenna.jobs import log_to_rule
from lenna.predictors.baselines import fit_constant, fit_flops, fit_lut
from lenna.predictors.fitting import file_sha256, fit_elasticnet
from lenna.space.parts import LUT_COLUMNS
from lenna.space.specs import SHAPE_COLUMNS, macro_cell_shapes, spec_shape

log = log_to_rule(snakemake)
normaliser = json.loads(open(snakemake.input.normaliser).read())
train = read_parquet(snakemake.input.train, ["latency_ms", *normaliser["features"]])
training = {
    "target": snakemake.wildcards.target,
    "data_sha256": file_sha256(snakemake.input.train),
    "n_train": len(train),
    "normaliser": {"mean": normaliser["mean"], "std": normaliser["std"]},
}
model = snakemake.rule.removeprefix("train_")
start = time.perf_counter()


def shapes_with_batch():
    """Every (shape, batch) of the dataset, and of the macro range at a measured target's batch size."""
    table = read_parquet(snakemake.input.table, [*SHAPE_COLUMNS, "batch_size"])
    seen = {
        (spec_shape(r), int(r["batch_size"]))
        for _, r in table.drop_duplicates([*SHAPE_COLUMNS, "batch_size"]).iterrows()
    }
    shapes = macro_cell_shapes(
        {"op_set": normaliser["op_set"], "steps": normaliser["steps"]}, snakemake.params.macro
    )
    batch = snakemake.params.batch_size
    return sorted(seen | ({(s, batch) for s in shapes} if batch else set()), key=str)


if model == "constant":
    predictor = fit_constant(train, normaliser, training=training)
elif model == "lut":
    lut = read_parquet(snakemake.input.lut, LUT_COLUMNS)
    predictor = fit_lut(lut, shapes_with_batch(), normaliser, training=training)
elif model == "flops":
    predictor = fit_flops(train, shapes_with_batch(), normaliser, training=training)
elif model == "elasticnet":
    predictor = fit_elasticnet(train, normaliser, **snakemake.params.hyper, training=training)
else:
    import torch  # the MLP's alone: the other models' jobs load no torch

    from lenna.predictors.mlp import fit_mlp_choosing_transform

    torch.set_num_threads(1)  # one thread: identical results on any machine
    val = read_parquet(snakemake.input.val, ["latency_ms", *normaliser["features"]])
    hyper = dict(snakemake.params.hyper)
    transforms = hyper.pop("transforms")
    predictor, history = fit_mlp_choosing_transform(
        train, val, normaliser, transforms, **hyper, training={**training, "n_val": len(val)}
    )
    write_parquet(history, snakemake.output.history)
predictor.save(snakemake.output.model.rsplit("/", 1)[0])
log.info(
    "%s: %s; trained in %.1f s",
    model,
    {k: predictor.description.get(k) for k in ("transform", "hyperparameters")},
    time.perf_counter() - start,
)
