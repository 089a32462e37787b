"""Re-run semantics on the tiny config: a change re-runs exactly the stages it touches.

They plan against the shared tiny run, which ran a copy of the workflow: editing package
modules there (and restoring them) leaves this checkout alone.
"""

import re

import pytest

from conftest import TINY, run_snakemake, write_config

pytestmark = pytest.mark.e2e

MEASURING = {"measure_latency", "measure_lut", "measure_networks"}


@pytest.fixture(scope="module")
def copy_run(tiny_run):
    """The shared tiny run, in its own copy of the workflow (conftest.tiny_run)."""
    workdir, _ = tiny_run
    return workdir.parent, workdir, TINY


def planned(repo, workdir, config) -> dict[str, int]:
    """Rule -> number of jobs a dry run would execute."""
    proc = run_snakemake(workdir, "--dry-run", configfile=config, snakefile=repo / "Snakefile")
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)}


def test_a_second_run_has_nothing_to_do(copy_run):
    assert planned(*copy_run) == {}


def test_changing_a_predictor_hyperparameter_never_remeasures(copy_run, tmp_path):
    repo, workdir, _ = copy_run
    config = write_config(tmp_path / "c.yaml", **{"predictors.mlp.lr": 0.02})
    jobs = planned(repo, workdir, config)
    assert jobs.get("train_mlp") == 1 and jobs.get("learning_curve") == 1
    assert not MEASURING & set(jobs) and "sample_specs" not in jobs
    assert "train_elasticnet" not in jobs and "train_lut" not in jobs


def test_adding_specs_samples_and_measures_only_the_new_shard(copy_run, tmp_path):
    repo, workdir, _ = copy_run
    config = write_config(tmp_path / "c.yaml", **{"sampling.n_specs": 32})  # shards of 8: one more
    jobs = planned(repo, workdir, config)
    assert jobs["sample_specs"] == 1 and jobs["measure_latency"] == 1
    assert "measure_lut" not in jobs and "measure_networks" not in jobs


PARETO = {"pareto", "pareto_figure", "summary", "all"}
SEARCH_STAGES = {"darts_search", "train_final", "measure_final", "search_figures"} | PARETO


def test_adding_a_lambda_runs_only_its_searches_evaluations_and_the_pareto_table(copy_run, tmp_path):
    repo, workdir, _ = copy_run
    config = write_config(tmp_path / "c.yaml", **{"search.lambdas": [0.0, 1.0, 2.0]})
    jobs = planned(repo, workdir, config)
    # one new lambda x two predictors x one seed; each predictor's found networks are timed
    # again together, in one job
    new_runs = {"darts_search": 2, "train_final": 2, "measure_final": 2, "search_figures": 2}
    assert jobs == new_runs | dict.fromkeys(PARETO, 1)


def test_changing_a_search_setting_reruns_search_and_downstream_never_predictors(copy_run, tmp_path):
    repo, workdir, _ = copy_run
    config = write_config(tmp_path / "c.yaml", **{"search.alpha_lr": 0.01})
    jobs = planned(repo, workdir, config)
    assert set(jobs) == SEARCH_STAGES and jobs["darts_search"] == 4


def edited(repo, workdir, config, module: str) -> dict[str, int]:
    """Jobs planned after appending a comment to package module ``module`` (restored after)."""
    path = repo / "src" / "lenna" / module
    original = path.read_text()
    path.write_text(original + "\n# an edit\n")
    try:
        return planned(repo, workdir, config)
    finally:
        path.write_text(original)


def test_editing_the_search_loop_reruns_search_and_downstream_only(copy_run):
    jobs = edited(*copy_run, "search/loop.py")
    assert set(jobs) == SEARCH_STAGES and jobs["train_final"] == 4


def test_editing_the_final_training_module_reruns_final_training_and_downstream_no_search(copy_run):
    jobs = edited(*copy_run, "search/final.py")
    assert set(jobs) == {"train_final"} | PARETO and jobs["train_final"] == 4


def test_editing_a_figure_reruns_only_figures_and_the_report_summary(copy_run):
    jobs = edited(*copy_run, "report/figures.py")
    figures = {"data_figures", "search_figures", "predictor_figures", "network_figure"}
    assert figures | {"learning_curve_figure", "pareto_figure", "all"} == set(jobs)


def test_editing_the_timing_protocol_reruns_timing_and_downstream_only(copy_run):
    jobs = edited(*copy_run, "timing/protocol.py")
    assert jobs["measure_latency"] == 3 and MEASURING <= set(jobs)
    assert "sample_specs" not in jobs
    assert jobs.get("merge_latency") == 1 and jobs.get("compare_predictors") == 1


def test_editing_the_labels_protocol_retimes_the_spec_shards_and_the_networks_only(copy_run):
    # Cells, whole networks and found networks share the visits, reference and re-timing.
    jobs = edited(*copy_run, "timing/labels.py")
    assert jobs["measure_latency"] == 3 and jobs["measure_networks"] == 1
    assert not {"measure_lut", "sample_specs"} & set(jobs)


def test_editing_the_network_model_reruns_the_network_stage_and_the_searches_never_timing(copy_run):
    jobs = edited(*copy_run, "predictors/composition.py")
    assert jobs["network_model"] == 5 and jobs["darts_search"] == 4 and jobs["measure_final"] == 2
    assert not MEASURING & set(jobs) and "merge_latency" not in jobs
    assert not {"train_mlp", "train_elasticnet", "evaluate_predictor"} & set(jobs)


def test_editing_a_config_check_reruns_nothing(copy_run):
    assert edited(*copy_run, "config.py") == {}
