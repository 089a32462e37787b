"""A measurement kit for a device the pipeline cannot reach (lenna.kit): its architectures, its
files, its timing script run here as a user runs it on the device, and the table it writes fed
back into the few-shot path."""

import ast
import copy
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import ROOT, TINY_NB201, apply_changes, run_snakemake
from lenna.config import ConfigError, check_config, few_shot_source_path, table_targets
from lenna.io import DataError
from lenna.kit import timer
from lenna.kit.architectures import check_architectures, kit_architectures
from lenna.kit.export import SCRIPT, benchmark_network, build_kit
from lenna.predictors.metrics import latency_metrics
from lenna.predictors.transfer import fit_few_shot, fit_source_model
from lenna.space.nb201 import PUBLIC_TABLE
from lenna.tables import (
    Protocol,
    connected,
    few_shot_split,
    network_dataset,
    read_device_table,
    source_columns,
)

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
TINY_SOURCE = {"hidden": [16], "epochs": 5, "batch_size": 512, "seed": 0}
LIGHT = {"warmup": 1, "repeats": 3, "rounds": 2, "statistic": "median"}
N_LABELS, N_CHECK = 4, 6


@pytest.fixture(scope="module")
def table():
    return read_device_table(PUBLIC_TABLE)


@pytest.fixture(scope="module")
def kit(tmp_path_factory, table):
    """A kit of 4 diverse labels and 6 checks, its source model tiny, its protocol light."""
    archs = kit_architectures(
        table, N_LABELS, "diverse", N_CHECK, 0, 1, Protocol(), source_settings=TINY_SOURCE
    )
    directory = tmp_path_factory.mktemp("kit") / "kit"
    feedback = {"n": N_LABELS, "protocol": {}, "source_table": None}
    manifest = build_kit(archs, directory, "public", 1, ["torchscript", "onnx"], LIGHT, feedback)
    return directory, manifest


@pytest.fixture(scope="module")
def measured(kit, tmp_path_factory):
    """The table the kit's script writes, run as on a device: from another directory, on the CPU."""
    directory, _ = kit
    out = tmp_path_factory.mktemp("device") / "latency.csv"
    cmd = [sys.executable, str(directory / SCRIPT), "--device", "cpu", "--threads", "1", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=out.parent, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


def test_the_kit_holds_labels_from_the_pool_and_checks_from_the_scoring_range(kit):
    directory, manifest = kit
    networks = pd.DataFrame(manifest["networks"])
    labels, checks = networks[networks["role"] == "label"], networks[networks["role"] == "check"]
    assert len(labels) == N_LABELS and labels["index"].between(0, 899).all()
    assert len(checks) == N_CHECK and checks["index"].between(900, 1899).all()
    assert networks["index"].is_unique and all(connected(a) for a in networks["arch"])
    assert manifest["input_shape"] == [1, 3, 32, 32] and manifest["protocol"] == LIGHT
    for files in networks["files"]:
        assert all((directory / path).is_file() for path in files.values())
    onnx = manifest["formats"]["onnx"]  # exported where torch can here; else no file, and why
    assert onnx["exported"] or (onnx["reason"] and not list(directory.glob("networks/*.onnx")))
    assert "python time_networks.py --device cpu --out latency.csv" in (directory / "README.md").read_text()


def test_the_kit_networks_are_the_benchmark_networks(kit):
    directory, manifest = kit
    entry = manifest["networks"][0]
    image = torch.randn(*manifest["input_shape"])
    with torch.no_grad():
        exported = torch.jit.load(str(directory / entry["files"]["torchscript"]))(image)
        expected = benchmark_network(entry["arch"], entry["index"])(image)
    torch.testing.assert_close(exported, expected)


def test_the_timing_script_imports_only_the_standard_library_and_torch(kit):
    directory, _ = kit
    source = (directory / SCRIPT).read_text()
    assert source == open(timer.__file__).read()
    tree = ast.parse(source)
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    tops = {name.split(".")[0] for name in names}
    assert tops - sys.stdlib_module_names == {"torch"}
    assert 'import_module("onnxruntime")' in source  # only where --format onnx needs it
    proc = subprocess.run([sys.executable, str(directory / SCRIPT), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--warmup" in proc.stdout and "arch,latency_ms" in proc.stdout


def test_the_measured_table_is_a_device_table_with_its_protocol_beside(kit, measured):
    _, manifest = kit
    mine = read_device_table(measured)
    assert list(mine.columns) == ["index", "arch", "latency_ms"] and len(mine) == len(manifest["networks"])
    assert set(mine["index"]) == {e["index"] for e in manifest["networks"]}
    sidecar = json.loads(measured.with_suffix(".json").read_text())
    assert (
        sidecar["protocol"] == LIGHT and sidecar["device"] == "cpu" and sidecar["host"]["torch_threads"] == 1
    )
    assert all(p["min"] <= p["median"] <= p["max"] for p in sidecar["passes_ms"].values())


def test_the_measured_table_gives_a_few_shot_predictor_scored_on_the_checks(table, measured):
    """As train_few_shot does for a table of one device: sources from the public table."""
    mine = read_device_table(measured)
    data = network_dataset(mine, "latency_ms", 1, source=str(measured))
    split = few_shot_split(data, mine, "latency_ms", N_LABELS, 0, Protocol())
    assert (split == "train").sum() == N_LABELS and (split == "test").sum() >= 3
    source = fit_source_model(source_columns(table), 1, TINY_SOURCE)
    predictor = fit_few_shot(source, data[split == "train"])
    test = data[split == "test"]
    scores = latency_metrics(test["latency_ms"], predictor.predict(test))
    assert np.isfinite(scores["spearman"]) and scores["n_test"] == len(test)


def test_a_table_without_checks_or_labels_says_what_it_lacks(tmp_path, measured):
    mine = read_device_table(measured)
    for part, lacking in ((mine["index"] < 900, "kit.check"), (mine["index"] >= 900, "few-shot labels")):
        path = tmp_path / "part.csv"
        mine[part][["arch", "latency_ms"]].to_csv(path, index=False)
        part_table = read_device_table(path)
        data = network_dataset(part_table, "latency_ms", 1, source=str(path))
        with pytest.raises(DataError, match=lacking) as err:
            few_shot_split(data, part_table, "latency_ms", N_LABELS, 0, Protocol(), what=f"{path} (key)")
        assert str(path) in str(err.value)


def kit_config(kit_settings: dict, **tables) -> dict:
    config = yaml.safe_load(TINY_NB201.read_text())
    public = {"devices": ["titanxp_1"], "few_shot": {"n": 10, "seed": 0}}
    return apply_changes(config, {"device_tables": {"public": public, **tables}, "kit": kit_settings})


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"table": "mine", "n": 4}, "kit.table"),
        ({"table": "public", "n": 1}, "kit.n"),
        ({"table": "public", "n": 901}, "kit.n"),
        ({"table": "public", "n": 4, "check": 2}, "kit.check"),
        ({"table": "public", "n": 4, "formats": ["onnx"]}, "kit.formats"),
        ({"table": "public", "n": 4, "choice": "best"}, "choice"),
        ({"table": "public", "n": 4, "protocol": {"statistic": "mean"}}, "statistic"),
    ],
)
def test_a_bad_kit_setting_is_an_error_naming_its_key(settings, key):
    config = kit_config(copy.deepcopy(settings))
    with pytest.raises((ConfigError, WorkflowError), match=key):
        validate(config, str(SCHEMA))
        check_config(config)


def test_too_many_check_architectures_is_an_error(table):
    with pytest.raises(ValueError, match="scoring range"):
        check_architectures(table, 1001, 0, Protocol())


def test_a_table_of_one_device_learns_from_the_public_table(measured):
    config = kit_config(
        {"table": "public", "n": 4}, mine={"table": str(measured), "few_shot": {"n": 4, "seed": 0}}
    )
    validate(config, str(SCHEMA))
    check_config(config)
    target = table_targets(config)["mine"]
    assert target["column"] == "latency_ms" and target["batch_size"] == 1
    assert few_shot_source_path(target["path"], target["few_shot"]) == str(PUBLIC_TABLE)
    config["device_tables"]["mine"]["few_shot"]["sources"] = ["latency_ms"]
    with pytest.raises(ConfigError, match="device_tables.mine.few_shot.sources"):
        check_config(config)


def test_a_kit_config_builds_the_kit_and_feeds_its_table_back(tmp_path, measured):
    """Dry run: the kit's rules are in the DAG, and the kit's table is a few-shot target whose
    source model learns from the public table."""
    config = kit_config(
        {"table": "public", "n": 4}, mine={"table": str(measured), "few_shot": {"n": 4, "seed": 0}}
    )
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake(tmp_path, "--dry-run", configfile=tmp_path / "c.yaml")
    for rule in ("kit_architectures", "export_kit", "train_few_shot"):
        assert f"rule {rule}:" in proc.stdout, rule
    assert (
        "results/kit/public/kit" in proc.stdout
        and "results/predictors/mine/few_shot/model.json" in proc.stdout
    )
    few_shot_jobs = proc.stdout.split("rule train_few_shot:")[1:]
    assert any(str(measured) in job and str(PUBLIC_TABLE) in job.split("output:")[0] for job in few_shot_jobs)
