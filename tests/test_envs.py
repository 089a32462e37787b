"""Rule scripts import the workflow's own `lenna`, whatever interpreter runs them: one without
it (a conda env of `envs/` has the third-party packages only, as has the interpreter made here),
and one with another checkout's installed."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, SNAKEMAKE, TINY, copy_workflow


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A virtual environment that sees this one's third-party packages (torch, pandas, snakemake)
    through a path entry, so not its editable install of `lenna` (a ``.pth`` file there)."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "third_party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_the_bare_interpreter_has_the_third_party_packages_but_not_lenna(bare_python):
    ok = subprocess.run([bare_python, "-c", "import torch, pandas, snakemake"], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([bare_python, "-c", "import lenna"], capture_output=True, text=True)
    assert "No module named 'lenna'" in missing.stderr


@pytest.fixture(scope="module")
def runs(bare_python, tmp_path_factory) -> dict:
    """The two runs the tests below read, started at once (each a snakemake of a few seconds, most
    of it start-up): ``bare``, the workflow with the interpreter that has no `lenna`; ``copy``, a
    copy of the workflow elsewhere with this interpreter, its `lenna` marked to say where it is
    imported from. Each: (work directory, finished process, and for ``copy`` its probe and init)."""
    bare_dir = tmp_path_factory.mktemp("bare-run")
    bare = [bare_python, *SNAKEMAKE[1:], "--snakefile", ROOT / "Snakefile", "--directory", bare_dir]
    bare += ["--configfile", TINY, "--cores", "1", "results/specs/shard-0.parquet"]
    tmp = tmp_path_factory.mktemp("copy-run")
    repo = tmp / "repo"
    repo.mkdir()
    copy_workflow(repo)
    probe = tmp / "imported-from"
    init = repo / "src" / "lenna" / "__init__.py"
    init.write_text(
        init.read_text() + f"\nwith open({str(probe)!r}, 'a') as f:\n    print(__file__, file=f)\n"
    )
    copy = [*SNAKEMAKE, "--snakefile", repo / "Snakefile", "--directory", repo / "work", "--configfile"]
    copy += [TINY, "--cores", "1", "results/specs/shard-0.parquet"]
    started = {
        name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, cmd in (("bare", bare), ("copy", copy))
    }
    done = {name: (proc, *proc.communicate()) for name, proc in started.items()}
    return {"bare": (bare_dir, done["bare"]), "copy": (repo / "work", done["copy"], probe, init)}


def test_a_rule_script_imports_the_workflows_lenna_without_an_installed_one(runs):
    workdir, (proc, _, stderr) = runs["bare"]
    assert proc.returncode == 0, stderr[-3000:]
    assert len(pd.read_parquet(workdir / "results/specs/shard-0.parquet")) > 0


def test_a_copy_of_the_workflow_runs_its_own_lenna_not_the_installed_one(runs):
    """This interpreter has this checkout's `lenna` installed (editable); a copy of the workflow
    elsewhere, as a user's fork or the tests' shared run, must still run the copy's package."""
    _, (proc, _, stderr), probe, init = runs["copy"]
    assert proc.returncode == 0, stderr[-3000:]
    # Imported by snakemake (the Snakefile's checks) and by the rule's script, each time the copy's.
    assert probe.read_text().splitlines() == [str(init)] * 2
