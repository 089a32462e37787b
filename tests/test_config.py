import pytest

from conftest import run_snakemake, write_config

INVALID = [
    ({"search_space.op_set": "lenna_v3"}, "search_space.op_set"),
    ({"sampling.n_specs": -5}, "n_specs"),
    ({"sampling.specs_per_shard": 0}, "specs_per_shard"),
    ({"targets.cpu.devices": []}, "devices"),
    ({"targets.cpu.devices": ["tpu:0"]}, "targets.cpu.devices"),
    ({"targets.cpu.batch_size": "64"}, "batch_size"),
    ({"datasets.split": {"train": 0.6, "val": 0.3, "test": 0.3}}, "datasets.split"),
    ({"macro.search": {"init_channels": 64, "layers": 3, "input_size": 8}}, "macro.search.init_channels"),
    ({"sampling.samplers": {"discrete": 1.0, "uniform": 1.0}}, "samplers"),
    ({"macro.input_size": [10]}, "macro.input_size"),
]


@pytest.mark.parametrize("changes, key", INVALID, ids=[k for _, k in INVALID])
def test_invalid_config_fails_before_any_job_naming_the_key(tmp_path, changes, key):
    config = write_config(tmp_path / "bad.yaml", **changes)
    proc = run_snakemake(tmp_path / "work", configfile=config, check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert key in message, message[-2000:]
    assert not (tmp_path / "work" / "results").exists()
