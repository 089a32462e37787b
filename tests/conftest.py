import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
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
    command: list[str] = SNAKEMAKE,
):
    """Run the workflow (of this checkout by default) in ``workdir`` through the snakemake CLI
    (``command``); ``env`` adds environment variables; ``configfile`` None passes none (the
    workflow's default)."""
    cmd = [
        *command,
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


def copy_workflow(repo: Path) -> Path:
    """A copy of this checkout's workflow and package in the existing directory ``repo``."""
    for name in ("Snakefile", "workflow", "src", "profiles", "config", "envs"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, repo / name)
    return repo


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One complete run of the tiny config, shared by the end-to-end tests that only read its
    outputs or plan against it. It runs a copy of the workflow and the package (``repo/``, the
    work directory is ``repo/work``), so the re-run tests may edit package modules there and
    restore them without touching this checkout; re-run it with `tiny_snakefile(workdir)`."""
    repo = copy_workflow(tmp_path_factory.mktemp("repo"))
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


# Under pytest-xdist (`./run-tests -n 3 --dist loadgroup`, faster but beside the tests that time
# cells: docs/development.md) the tests that read the shared tiny run go to one worker, so that it
# runs once, and the longest runs are handed out first (in one process too). xdist's own
# `xdist_group` marks are lost under pytest 9 (the node id it edits is no longer read back), so the
# workers write each test's group to a file that the controller's scheduler reads.
FIRST = ("test_slurm.py", "tiny_run", "test_transfer.py", "test_nb201.py", "test_lenna_space.py")
GROUPS = Path(
    os.environ.setdefault("LENNA_TEST_GROUPS", f"{tempfile.gettempdir()}/lenna-groups-{os.getpid()}.json")
)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        for i, key in enumerate(FIRST):
            if key == item.path.name or key in getattr(item, "fixturenames", ()):
                return i
        return len(FIRST)

    items.sort(key=rank)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        groups = {i.nodeid: "tiny_run" for i in items if "tiny_run" in getattr(i, "fixturenames", ())}
        part = GROUPS.with_suffix(f".{os.environ['PYTEST_XDIST_WORKER']}")
        part.write_text(json.dumps(groups))
        part.replace(GROUPS)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedRunScheduling(LoadScopeScheduling):
        """Work units: one per group of tests that share a run, one per other test."""

        groups: dict | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                self.groups = json.loads(GROUPS.read_text())
            return self.groups.get(nodeid, nodeid)

    return SharedRunScheduling(config, log)


def pytest_unconfigure(config):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        GROUPS.unlink(missing_ok=True)
