"""End-to-end runs of the workflow on the tiny config through the snakemake command line."""

import json

import pandas as pd
import pytest

from conftest import run_snakemake, tiny_snakefile
from lenna.datasets import LATENCY_COLUMNS
from lenna.space.genotype import Genotype

pytestmark = pytest.mark.e2e


def test_tiny_config_builds_the_datasets(tiny_run):
    workdir, first = tiny_run
    # The end of the run states the label quality (onsuccess).
    assert "labels of cpu: 24 timed, noise floor" in first.stdout + first.stderr
    data = workdir / "results" / "datasets" / "cpu"
    table = pd.read_parquet(data / "latency.parquet")
    for column in ("spec_id", "latency_ms", "label_kind", *LATENCY_COLUMNS):
        assert column in table.columns, column
    assert set(table["label_kind"]) == {"discrete", "expected"}
    assert (table["latency_ms"] > 0).all()
    summary = json.loads((data / "summary.json").read_text())
    # A label whose visits still disagree after re-timing is left out, and counted.
    assert summary["n_ok"] == len(table) and summary["n_ok"] + summary["n_unstable"] == 24
    quality = summary["label_quality"]
    assert quality["n_labels"] == 24 and 0.0 <= quality["noise_floor"] < 1.0
    jobs = {f"results/latency/cpu/shard-{s}.parquet" for s in range(3)}
    assert set(summary["label_quality_by_job"]) == jobs
    parts = {name: pd.read_parquet(data / f"{name}.parquet") for name in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == len(table)
    assert set.intersection(*(set(p["spec_id"]) for p in parts.values())) == set()
    normaliser = json.loads((data / "normaliser.json").read_text())
    assert normaliser["n_train"] == len(parts["train"])


def test_a_second_run_has_nothing_to_do(tiny_run):
    workdir, _ = tiny_run
    proc = run_snakemake(workdir, snakefile=tiny_snakefile(workdir))
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_spec_shards_are_byte_identical_in_a_second_working_directory(tiny_run, tmp_path):
    workdir, _ = tiny_run
    run_snakemake(tmp_path, "--until", "sample_specs")
    for shard in sorted((workdir / "results" / "specs").glob("*.parquet")):
        assert shard.read_bytes() == (tmp_path / "results" / "specs" / shard.name).read_bytes()


def test_tiny_config_trains_scores_and_compares_every_predictor(tiny_run):
    workdir, _ = tiny_run
    root = workdir / "results" / "predictors" / "cpu"
    models = ["constant", "flops", "lut", "elasticnet", "mlp"]
    networks = pd.read_parquet(workdir / "results" / "networks" / "cpu" / "networks.parquet")
    for model in models:
        metrics = json.loads((root / model / "metrics.json").read_text())
        for key in ("rmse_ms", "mape", "within_5pct", "within_10pct", "spearman", "n_test"):
            assert key in metrics, (model, key)
        assert (root / model / "predicted_vs_measured.svg").stat().st_size > 0
        assert len(pd.read_parquet(root / model / "predictions.parquet")) == metrics["n_test"]
        network = json.loads((workdir / "results" / "networks" / "cpu" / model / "metrics.json").read_text())
        unseen = networks["split"].isin(["test", "held_out", "published"]).sum()
        assert network["n_test"] == (unseen or len(networks))  # the networks no model was fitted on
    comparison = pd.read_csv(root / "comparison.csv")
    assert list(comparison["model"]) == models
    assert "network_within_10pct" in comparison.columns
    curve = pd.read_csv(root / "learning_curve.csv")
    assert set(curve["model"]) == {"elasticnet", "mlp"} and set(curve["fraction"]) == {0.5, 1.0}


def test_an_external_latency_table_trains_its_own_predictors(tiny_run, tmp_path):
    workdir, _ = tiny_run
    from conftest import write_config
    from lenna.datasets import feature_columns

    measured = pd.read_parquet(workdir / "results" / "datasets" / "cpu" / "latency.parquet")
    phone = measured[[*feature_columns("darts", 4), "latency_ms"]].assign(
        latency_ms=lambda t: 3 * t["latency_ms"]
    )
    phone.to_csv(tmp_path / "phone.csv", index=False)
    config = write_config(
        tmp_path / "c.yaml", external_targets={"phone": {"table": str(tmp_path / "phone.csv")}}
    )
    run_snakemake(tmp_path / "w", "results/predictors/phone/comparison.csv", configfile=config)
    comparison = pd.read_csv(tmp_path / "w" / "results" / "predictors" / "phone" / "comparison.csv")
    assert list(comparison["model"]) == ["constant", "flops", "elasticnet", "mlp"]  # no device: no LUT
    assert not (tmp_path / "w" / "results" / "latency").exists()  # nothing was timed

    phone.assign(battery_temp=30.0).to_csv(tmp_path / "bad.csv", index=False)
    bad = write_config(
        tmp_path / "bad.yaml", external_targets={"phone": {"table": str(tmp_path / "bad.csv")}}
    )
    proc = run_snakemake(
        tmp_path / "w2", "results/predictors/phone/comparison.csv", configfile=bad, check=False
    )
    assert proc.returncode != 0
    assert "battery_temp" in proc.stdout + proc.stderr and "bad.csv" in proc.stdout + proc.stderr
    assert not (tmp_path / "w2" / "results" / "datasets" / "phone" / "latency.parquet").exists()


def test_tiny_config_searches_and_draws_the_pareto_front(tiny_run):
    workdir, _ = tiny_run
    table = pd.read_csv(workdir / "results" / "pareto" / "cpu" / "pareto.csv")
    columns = ["model", "lambda", "seed", "test_accuracy", "latency_ms", "predicted_latency_ms", "on_front"]
    assert list(table.columns[: len(columns)]) == columns
    assert len(table) == 4  # {mlp, elasticnet} x lambdas {0, 1} x seed 0
    assert (table["latency_ms"] > 0).all()
    # two epochs on 128 digits can end at chance: such a network is flagged, never on the front
    assert table["on_front"].any() or table["degenerate"].all()
    assert not (table["on_front"] & table["degenerate"]).any()
    summary = json.loads((workdir / "results" / "pareto" / "cpu" / "summary.json").read_text())
    assert set(summary["models"]) == {"mlp", "elasticnet"}
    run = workdir / "results" / "search" / "cpu" / "mlp" / "lambda-1" / "seed-0"
    history = pd.read_parquet(run / "history.parquet")
    assert len(history) == 2 and history["alpha_updates"].tolist() == [False, True]
    Genotype.from_json((run / "genotype.json").read_text())
    latency = json.loads((run / "final" / "latency.json").read_text())
    assert latency["latency_ms"] > 0 and latency["predicted_latency_ms"] > 0
    assert (workdir / "results" / "pareto" / "cpu" / "pareto.svg").read_text().startswith("<?xml")


def test_every_job_writes_its_declared_log(tiny_run):
    workdir, _ = tiny_run
    logs = sorted((workdir / "logs").rglob("*.log"))
    rules = {path.relative_to(workdir / "logs").parts[0] for path in logs}
    assert {
        "data_figures",
        "search_figures",
        "predictor_figures",
        "pareto_figure",
        "measure_latency",
    } <= rules
    assert [str(p) for p in logs if p.stat().st_size == 0] == []


def test_the_tiny_run_fits_a_network_model_per_predictor_and_uses_it_for_the_found_networks(tiny_run):
    from lenna.predictors.model import load_predictor
    from lenna.space.genotype import DARTS_V2
    from lenna.space.network import Macro

    workdir, _ = tiny_run
    results = workdir / "results"
    measured = pd.read_parquet(results / "networks" / "cpu" / "measured.parquet")
    # 8 random architectures at the one macro of the ranges, 3 published: timed like the cells.
    assert len(measured) == 8 + 3 and set(measured["group"]) == {"random", "published"}
    assert (measured["reference_ms"] > 0).all() and (measured["n_visits"] >= 2).all()
    for model in ("constant", "flops", "lut", "elasticnet", "mlp"):
        network = json.loads((results / "predictors" / "cpu" / model / "network.json").read_text())
        assert set(network["candidates"]) == {"sum", "affine", "overhead", "features"}
        assert network["chosen"] in network["candidates"]
        predictions = pd.read_parquet(results / "networks" / "cpu" / model / "predictions.parquet")
        assert {"predicted_ms", "predicted_sum_ms", "split"} <= set(predictions.columns)
    predictor = load_predictor(results / "predictors" / "cpu" / "mlp")
    macro = Macro(init_channels=4, layers=3, input_size=8, input_channels=1)
    assert predictor.predict_network(DARTS_V2, macro, 1) > 0
    pareto = pd.read_csv(results / "pareto" / "cpu" / "pareto.csv")
    # A tiny run's MLP is no predictor (it may even price cells below zero): the columns are there.
    assert "network_factor" not in pareto.columns and pareto["predicted_sum_ms"].notna().all()
    assert set(pareto["latency_status"]) <= {"ok", "unstable"}  # the protocol's verdict on each label
    for path in (results / "search" / "cpu").glob("*/lambda-*/seed-*/final/latency.json"):
        found = json.loads(path.read_text())
        assert found["status"] in ("ok", "unstable") and found["predicted_latency_ms"] > 0
        assert found["network_model"].split(",")[0] in network["candidates"]
