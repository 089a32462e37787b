"""The workflow's own conventions, enforced: lint clean, formatted, every rule logged."""

import re
import subprocess
import sys

from conftest import ROOT, SNAKEMAKE


def run(*cmd):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)


def test_snakemake_lint_is_clean():
    proc = run(*SNAKEMAKE, "--lint", "--cores", "1")
    assert proc.returncode == 0 and "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_snakefiles_are_snakefmt_formatted():
    proc = run(sys.executable, "-m", "snakefmt", "--check", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_python_is_ruff_clean_and_formatted():
    check = run(sys.executable, "-m", "ruff", "check", ".")
    fmt = run(sys.executable, "-m", "ruff", "format", "--check", ".")
    assert check.returncode == 0, check.stdout
    assert fmt.returncode == 0, fmt.stdout


def test_every_rule_but_all_has_a_log_and_a_conda_env():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", smk.read_text(), re.M):
            assert "log:" in body, f"{smk.name}: rule {name} has no log"
            assert "conda:" in body, f"{smk.name}: rule {name} has no conda env"


# Rules that take minutes at scale: timing, predictor training with many epochs, the search.
HEAVY = {
    "measure_latency",
    "measure_lut",
    "measure_networks",
    "measure_final",
    "train_mlp",
    "learning_curve",
    "darts_search",
    "train_final",
}


def test_every_heavy_rule_has_a_benchmark_or_is_cacheable_and_records_its_run_time():
    """Snakemake refuses a benchmark file on a rule eligible for the between-workflow cache; those
    record their run time in their output or log instead (checked where the script says so)."""
    rules = {}
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        rules.update(re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", smk.read_text(), re.M))
    assert HEAVY <= rules.keys()
    for name in HEAVY:
        body = rules[name]
        assert ("benchmark:" in body) != ("cache: CACHE" in body), f"rule {name}"
        if "cache: CACHE" in body:
            script = re.search(r'script:\n\s+"\.\./scripts/(\w+\.py)"', body).group(1)
            source = (ROOT / "workflow" / "scripts" / script).read_text()
            assert "time.perf_counter()" in source, f"rule {name}: {script} records no run time"
