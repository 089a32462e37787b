import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
TINY_NB201 = ROOT / "tests" / "data" / "tiny-nb201.yaml"
TINY_LENNA = ROOT / "tests" / "data" / "tiny-lenna.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(
    workdir: Path,
    *args: str,
    configfile: Path | None = TINY,
    check: bool = True,
    snakefile: Path = ROOT / "Snakefile",
    env: dict | None = None,
):
    """Run the workflow (of this checkout by default) in ``workdir`` through the snakemake CLI;
    ``env`` adds environment variables; ``configfile`` None passes none (the workflow's default)."""
    cmd = [
        *SNAKEMAKE,
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        *(["--configfile", str(configfile)] if configfile else []),
        "--cores",
        "2",
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{failed_jobs(proc.stderr, workdir)}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def failed_jobs(stderr: str, workdir: Path) -> str:
    """The "Error in rule" blocks of a snakemake run's output, each with the end of the job's log,
    so that a failure deep in a long run is shown rather than cut off."""
    blocks = []
    for block in re.findall(r"Error in rule .*?(?=\n\n|\Z)", stderr, flags=re.S):
        blocks.append(block)
        for log in re.findall(r"log: (\S+)", block):
            path = workdir / log.rstrip(",")
            if path.is_file():
                blocks.append(f"--- {log} (end) ---\n{path.read_text(errors='replace')[-4000:]}")
    return "\n".join(blocks) or "(no 'Error in rule' in the output)"


def apply_changes(config: dict, changes: dict) -> dict:
    """``config`` with ``changes`` applied in place; keys are dotted paths, e.g. ``sampling.seed``."""
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    return config


def write_config(path: Path, **changes) -> Path:
    """The tiny config with ``changes`` applied; keys are dotted paths, e.g. ``sampling.seed``."""
    config = apply_changes(yaml.safe_load(TINY.read_text()), changes)
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One complete run of the tiny config, shared by the end-to-end tests that only read its
    outputs or plan against it. It runs a copy of the workflow and the package (``repo/``, the
    work directory is ``repo/work``), so the re-run tests may edit package modules there and
    restore them without touching this checkout; re-run it with `tiny_snakefile(workdir)`."""
    repo = tmp_path_factory.mktemp("repo")
    for name in ("Snakefile", "workflow", "src", "profiles", "config", "envs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / name)
    workdir = repo / "work"
    first = run_snakemake(workdir, snakefile=repo / "Snakefile")
    return workdir, first


def tiny_snakefile(workdir: Path) -> Path:
    """The Snakefile of the copy that made the shared tiny run in ``workdir`` (or a copy of it)."""
    return workdir.parent / "Snakefile"


@pytest.fixture
def fresh_copy(tmp_path):
    def copy(src: Path) -> Path:
        dst = tmp_path / "copy"
        shutil.copytree(src, dst)
        return dst

    return copy


# Under pytest-xdist (`./run-tests` runs `-n 3 --dist loadgroup`): the tests that read the shared
# tiny run go to one worker, so that it runs once; the longest runs are handed out first. The
# SLURM run mostly waits on the cluster, so three workers keep two cores busy.
FIRST = ("test_slurm.py", "tiny_run", "test_transfer.py", "test_nb201.py", "test_lenna_space.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        for i, key in enumerate(FIRST):
            if key == item.path.name or key in getattr(item, "fixturenames", ()):
                return i
        return len(FIRST)

    for item in items:
        if "tiny_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("tiny_run"))
    items.sort(key=rank)
