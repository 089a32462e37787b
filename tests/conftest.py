import contextlib
import dataclasses
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
    cmd = snakemake_command(workdir, *args, configfile=configfile, snakefile=snakefile, command=command)
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check:
        check_snakemake(proc, workdir)
    return proc


def snakemake_command(
    workdir: Path, *args: str, configfile: Path | None, snakefile: Path, command: list[str]
) -> list[str]:
    """The command line `run_snakemake` runs."""
    return [
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


def check_snakemake(proc: subprocess.CompletedProcess, workdir: Path) -> None:
    """An AssertionError with the failed jobs' logs where the snakemake run ``proc`` failed."""
    if proc.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({proc.returncode}):\n{failed_jobs(proc.stderr, workdir)}\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )


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


# The SLURM test's run (tests/test_slurm.py) is the suite's longest, and part of it is waiting
# (sbatch, slurmd starting each job, the executor's status checks). So it starts with the session,
# in the background (`_start_slurm_run_early`), beside the first end-to-end runs, and the test
# checks it when its turn comes, after them (`FIRST`). The rest of it is CPU (its local jobs and
# every job's start-up), so the overlap saves about half a minute, not its whole length
# (docs/development.md). Under pytest-xdist it starts when the test asks for it.
SLURM_RUN_CHANGES = {
    # one search, one timing shard, two predictors (one fitted from the parts' table, one trained)
    # and no learning curve: each stage's jobs once, not the same jobs again
    "search.predictors": ["mlp"],
    "search.lambdas": [1.0],
    "sampling.specs_per_shard": 24,
    "predictors.models": ["lut", "mlp"],
    "predictors.learning_curve": [],
    # Its one shard is timed beside the shared tiny run: 18 of 24 labels came out unstable at a
    # 10% tolerance (2026-12-07), none in the test split. Where the jobs run is what it tests.
    "measurement.retime_tolerance": 0.3,
}
SLURM_RUN_TIMEOUT_S = 1200


@dataclasses.dataclass
class SlurmRun:
    """The tiny config on a one-node SLURM test cluster with the slurm profile, running in the
    background: ``skip`` says why there is none, ``error`` why it did not start."""

    tmp: Path
    stack: contextlib.ExitStack
    skip: str | None = None
    error: BaseException | None = None
    cluster: object = None
    proc: subprocess.Popen | None = None

    @property
    def workdir(self) -> Path:
        return self.tmp / "work"

    def result(self) -> subprocess.CompletedProcess:
        """Wait for the run (at most `SLURM_RUN_TIMEOUT_S`); its output, checked like
        `run_snakemake`'s."""
        if self.error is not None:
            raise self.error
        try:
            code = self.proc.wait(SLURM_RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"the SLURM run took over {SLURM_RUN_TIMEOUT_S} s") from None
        out = (self.tmp / "stdout").read_text(errors="replace")
        err = (self.tmp / "stderr").read_text(errors="replace")
        proc = subprocess.CompletedProcess(self.proc.args, code, out, err)
        check_snakemake(proc, self.workdir)
        return proc

    def stop(self) -> None:
        """Kill the run if it still runs, and stop the cluster's daemons."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stack.close()


def start_slurm_run(tmp: Path) -> SlurmRun:
    from slurm_cluster import slurm_cluster, unavailable_reason

    run = SlurmRun(tmp, contextlib.ExitStack(), skip=unavailable_reason())
    if run.skip is not None:
        return run
    try:
        run.cluster = run.stack.enter_context(slurm_cluster(tmp / "slurm"))
        cmd = snakemake_command(
            run.workdir,
            "--workflow-profile",
            str(ROOT / "profiles" / "slurm"),
            *run.cluster.snakemake_args(),
            configfile=write_config(tmp / "c.yaml", **SLURM_RUN_CHANGES),
            snakefile=ROOT / "Snakefile",
            command=[sys.executable, str(ROOT / "tests" / "slurm_snakemake.py")],  # checks every second
        )
        with open(tmp / "stdout", "w") as out, open(tmp / "stderr", "w") as err:
            run.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **run.cluster.env})
    except Exception as error:  # shown by the SLURM test, not as an error of every test
        run.error = error
    return run


@pytest.fixture(scope="session")
def slurm_run(tmp_path_factory):
    run = start_slurm_run(tmp_path_factory.mktemp("slurm-run"))
    yield run
    run.stop()


@pytest.fixture(scope="session", autouse=True)
def _start_slurm_run_early(request):
    """Start `slurm_run` with the session where the SLURM test is among its tests (one process)."""
    if not os.environ.get("PYTEST_XDIST_WORKER") and any(
        item.path.name == "test_slurm.py" for item in request.session.items
    ):
        request.getfixturevalue("slurm_run")


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
# The SLURM test comes after the longest runs, beside which its run started (`slurm_run`).
FIRST = ("tiny_run", "test_transfer.py", "test_nb201.py", "test_lenna_space.py", "test_slurm.py")
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
