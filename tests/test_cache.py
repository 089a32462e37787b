"""Between-workflow caching: a second working directory reuses timings and trained predictors from
Snakemake's output cache (`--cache`) instead of re-timing, and only for the same hardware model."""

import pytest

from conftest import run_snakemake, write_config

pytestmark = pytest.mark.e2e

# A predictor fitted from the lookup table and one trained on the dataset: together they need every
# timing shard and the table (the other models' rules are cached alike).
MODELS = [f"results/predictors/cpu/{m}/model.json" for m in ("lut", "mlp")]
CACHED = [f"results/latency/cpu/shard-{s}.parquet" for s in range(3)] + ["results/lut/cpu/lut.parquet"]


def run_cached(workdir, cache, configfile, *targets):
    env = {"SNAKEMAKE_OUTPUT_CACHE": str(cache)}
    # Targets first: `--cache` takes the words after it as names of rules to cache.
    return run_snakemake(workdir, *targets, "--cache", configfile=configfile, env=env)


def timed_here(workdir):
    """Timing jobs that ran in ``workdir``: their logs say what they timed (fetched ones are empty)."""
    logs = sorted((workdir / "logs" / "measure_latency" / "cpu").glob("*.log"))
    return [log.name for log in logs if "specs on cpu" in log.read_text()]


def test_a_second_working_directory_reuses_timings_and_predictors_and_other_hardware_does_not(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    config = write_config(tmp_path / "config.yaml")
    first, second, other = (tmp_path / name for name in ("first", "second", "other"))

    run_cached(first, cache, config, *MODELS)
    assert timed_here(first) == ["shard-0.log", "shard-1.log", "shard-2.log"]
    # Every cacheable output went into the cache; the working directory links to it.
    for path in CACHED + MODELS:
        assert (first / path).is_symlink() and (first / path).resolve().parent == cache, path

    proc = run_cached(second, cache, config, *MODELS)
    assert timed_here(second) == []
    log = proc.stdout + proc.stderr
    for path in CACHED + MODELS:
        assert f"Symlinking output file {path} from cache" in log, path
        assert (second / path).read_bytes() == (first / path).read_bytes(), path
    # Downstream of the cache the directory is complete: a further run has nothing to do.
    again = run_cached(second, cache, config, *MODELS)
    assert "Nothing to be done" in again.stdout + again.stderr

    # The same experiment on another hardware model is not served someone else's timings.
    elsewhere = write_config(tmp_path / "elsewhere.yaml", **{"targets.cpu.hardware": "another_cpu_model"})
    run_cached(other, cache, elsewhere, CACHED[0])
    assert timed_here(other) == ["shard-0.log"]
