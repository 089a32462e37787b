"""Invalid configs are rejected before any job runs, with an error naming the key.

Every case is checked in-process (the JSON schema, then `lenna.config.check_config`, as the
workflow does when it builds the DAG); a few go through the snakemake command line as well, to
pin that the workflow runs those checks and writes nothing.
"""

import copy

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import ROOT, TINY, run_snakemake, write_config
from lenna import config as cfg
from lenna.config import ConfigError, check_config

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"

INVALID = [
    ({"search_space.op_set": "lenna_v3"}, "search_space.op_set"),
    ({"sampling.n_specs": -5}, "n_specs"),
    ({"sampling.specs_per_shard": 0}, "specs_per_shard"),
    ({"targets.cpu.devices": []}, "devices"),
    ({"targets.cpu.devices": ["tpu:0"]}, "targets.cpu.devices"),
    ({"targets.cpu.batch_size": "64"}, "batch_size"),
    ({"targets.cpu.hardware": "Xeon (R) 8280"}, "hardware"),
    ({"datasets.split": {"train": 0.6, "val": 0.3, "test": 0.3}}, "datasets.split"),
    ({"macro.search": {"init_channels": 64, "layers": 3, "input_size": 8}}, "macro.search.init_channels"),
    ({"sampling.samplers": {"discrete": 1.0, "uniform": 1.0}}, "samplers"),
    ({"macro.input_size": [10]}, "macro.input_size"),
    ({"sampling.soft_concentration": [5.0, 1.0]}, "sampling.soft_concentration"),
    ({"sampling.adaptive": {"rounds": 2, "batch": 50, "pool": 40}}, "sampling.adaptive.batch"),
    ({"sampling.adaptive": {"rounds": 2, "batch": 8, "pool": 40, "method": "uncertainty"}}, "method"),
    ({"sampling.adaptive": {"rounds": 0, "batch": 8, "pool": 40}}, "rounds"),
    ({"targets.cpu.devices": ["cpu", "cuda:0"]}, "targets.cpu.devices"),
    ({"targets.cpu.threads": 0}, "threads"),
    ({"targets.cpu.dtype": "float8"}, "dtype"),
    ({"measurement.reset_quantile": 1.5}, "reset_quantile"),
    ({"measurement.repeats": 2.5}, "repeats"),
    ({"predictors.models": ["constant", "xgboost"]}, "models"),
    ({"predictors.mlp.transforms": ["sqrt"]}, "transforms"),
    ({"predictors.mlp.activation": "swish"}, "activation"),
    ({"predictors.learning_curve": [0.5, 2.0]}, "learning_curve"),
    ({"networks.n_architectures": 0}, "n_architectures"),
    # Channels outside macro.init_channels: no spec covers its cells.
    (
        {"networks.held_out_macro": {"init_channels": 6, "layers": 3, "input_size": 8}},
        "networks.held_out_macro",
    ),
    ({"networks.held_out_macro": {"init_channels": 4, "layers": 3}}, "input_size"),
    ({"external_targets": {"phone": {"table": "/nonexistent/phone.csv"}}}, "external_targets.phone.table"),
    ({"external_targets": {"cpu": {"table": "tests/data/tiny.yaml.csv"}}}, "external_targets.cpu"),
    ({"search_space.steps": "four"}, "steps"),
    ({"sampling.seed": -1}, "seed"),
    ({"lambdas": [0.1]}, "lambdas"),
    ({"search.lambdas": ["a", 0.1]}, "lambdas"),
    ({"search.lambdas": [0.0, -0.5]}, "lambdas"),
    ({"search.seeds": [0, 0]}, "seeds"),
    ({"search.predictors": ["gbm"]}, "search.predictors"),
    ({"search.latency_form": "mul"}, "latency_form"),
    ({"search.order": "third"}, "order"),
    ({"search.epochs": 2, "search.warmup_epochs": 5}, "search.warmup_epochs"),
    ({"data.dataset": "mnist"}, "dataset"),
    ({"data.dataset": "cifar10"}, "data.cifar10_dir"),
    ({"data.dataset": "cifar10", "data.cifar10_dir": "/nonexistent/cifar-10-batches-py"}, "data.cifar10_dir"),
    ({"data.split": {"train": 0.6, "val": 0.3, "test": 0.3}}, "data.split"),
    ({"macro.input_channels": 3}, "macro.input_channels"),
    ({"train_final.epochs": 0}, "epochs"),
]


def apply(config: dict, changes: dict) -> dict:
    config = copy.deepcopy(config)
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    return config


def test_the_tiny_config_passes_the_checks():
    config = yaml.safe_load(TINY.read_text())
    validate(config, str(SCHEMA))
    check_config(config)


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_passes_the_checks(path):
    # config/gpu.yaml among them: it ran on a GPU machine only, so its checks run here.
    config = yaml.safe_load(path.read_text())
    validate(config, str(SCHEMA))
    check_config(config)


@pytest.mark.parametrize("changes, key", INVALID, ids=[k for _, k in INVALID])
def test_invalid_config_is_rejected_naming_the_key(changes, key):
    config = apply(yaml.safe_load(TINY.read_text()), changes)
    with pytest.raises((WorkflowError, ConfigError)) as error:
        validate(config, str(SCHEMA))
        check_config(config)
    assert key in str(error.value)


THROUGH_THE_CLI = [INVALID[0], INVALID[5], INVALID[-5]]


@pytest.mark.e2e
@pytest.mark.parametrize("changes, key", THROUGH_THE_CLI, ids=[k for _, k in THROUGH_THE_CLI])
def test_invalid_config_fails_before_any_job_naming_the_key(tmp_path, changes, key):
    config = write_config(tmp_path / "bad.yaml", **changes)
    proc = run_snakemake(tmp_path / "work", configfile=config, check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert key in message, message[-2000:]
    assert not (tmp_path / "work" / "results").exists()


def test_canonical_orders_keys_at_every_depth_and_keeps_list_order():
    got = cfg.canonical({"b": {"y": 1, "x": [{"q": 1, "p": 2}, 3]}, "a": [2, 1]})
    assert list(got) == ["a", "b"] and list(got["b"]) == ["x", "y"]
    assert list(got["b"]["x"][0]) == ["p", "q"] and got["a"] == [2, 1]
