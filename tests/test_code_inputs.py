"""A rule's code inputs are the package modules its script runs, and its conda env lists every
third-party package they import.

The rules' inputs come from a dry run of the real workflow; what a script imports comes from
importing it for real in a child process (sys.modules; a package function's own imports
imported too), independently of the static walker the workflow uses (`lenna.imports`).
"""

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, TINY_NB201, apply_changes, run_snakemake, write_config
from lenna.imports import package_modules, third_party

SCRIPTS = ROOT / "workflow" / "scripts"
SRC = ROOT / "src"
TIMING_RULES = ("measure_latency", "measure_round", "measure_lut", "measure_networks")
# Import names whose conda package is named otherwise.
CONDA_NAMES = {"torch": "pytorch", "sklearn": "scikit-learn", "yaml": "pyyaml"}


def rule_blocks() -> dict[str, str]:
    rules = {}
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        rules.update(re.findall(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)+)", smk.read_text(), re.M))
    return rules


def rule_script(body: str) -> str | None:
    match = re.search(r'script:\n\s+"\.\./scripts/(\w+\.py)"', body)
    return match and match.group(1)


@pytest.fixture(scope="module")
def rule_inputs(tmp_path_factory) -> dict[str, set[str]]:
    """Rule -> the union of its jobs' inputs, from a dry run of every job of the tiny config with
    an external target (a dry run reads no table: an empty file stands in for one) and adaptive
    sampling (its first round asked for by name: a dry run cannot see past its checkpoint), and of
    the tiny NAS-Bench-201 config (its public-device check), the latter also with a device table, its
    few-shot target searched, its leave-one-device-out evaluation (with a family split) and a
    measurement kit."""
    workdir = tmp_path_factory.mktemp("dry")
    (workdir / "phone.csv").touch()
    config = write_config(
        workdir / "c.yaml",
        external_targets={"phone": {"table": str(workdir / "phone.csv")}},
        **{"sampling.adaptive": {"rounds": 1, "batch": 4, "pool": 20}},
    )
    tables = apply_changes(
        yaml.safe_load(TINY_NB201.read_text()),
        {
            "device_tables": {
                "public": {"devices": ["titanxp_1"], "few_shot": {"n": 10, "seed": 0}, "search": True}
            },
            "transfer": {"table": "public", "n_labels": [10], "seeds": [0], "families": ["cpu"]},
            "kit": {"table": "public", "n": 4},
            "search.predictors": ["mlp", "few_shot"],
        },
    )
    (workdir / "tables.yaml").write_text(yaml.safe_dump(tables))
    inputs: dict[str, set[str]] = {}
    first_round = ("all", "results/latency/cpu/round-1.parquet")
    runs = [(config, first_round), (TINY_NB201, ()), (workdir / "tables.yaml", ())]

    def dry_run(i: int):  # the three at once, each in a directory of its own (they wait on start-up)
        configfile, targets = runs[i]
        (workdir / str(i)).mkdir()
        return run_snakemake(workdir / str(i), "--dry-run", "--forceall", *targets, configfile=configfile)

    with ThreadPoolExecutor(len(runs)) as pool:
        procs = list(pool.map(dry_run, range(len(runs))))
    for proc in procs:
        for rule, listed in re.findall(
            r"^(?:local)?(?:rule|checkpoint) (\w+):\n\s+input: ([^\n]*)", proc.stdout, re.M
        ):
            inputs.setdefault(rule, set()).update(s.strip() for s in listed.split(","))
    return inputs


IMPORTED = """
import ast, importlib, json, os, sys
# Third-party modules shared by the scripts: loaded once, before forking (a child loads only lenna's).
import torch, numpy, pandas, pyarrow.parquet, scipy, yaml, matplotlib.pyplot
import sklearn.cluster, sklearn.decomposition, sklearn.linear_model, sklearn.model_selection
results = {}
for script in sys.argv[1:]:
    read, write = os.pipe()
    if os.fork() == 0:
        # Every import of the script, also those in a branch it may take (train_predictor
        # imports the MLP's torch half for the MLP alone).
        tree = ast.parse(open(script).read())
        imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(imports, []), script, "exec"), {})
        # A package function may import a module when it runs (torch's halves, for the jobs that
        # only predict to load none): import those too, and what they load, until none is new.
        done = set()
        while new := [m for n, m in list(sys.modules.items()) if n.startswith("lenna") and n not in done]:
            for module in new:
                done.add(module.__name__)
                inner = [
                    node
                    for f in ast.walk(ast.parse(open(module.__file__).read()))
                    if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                    for node in ast.walk(f)
                    if isinstance(node, ast.Import) or isinstance(node, ast.ImportFrom) and node.level == 0
                ]
                for node in inner:
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                    for name in names:
                        if name.split(".")[0] == "lenna":
                            importlib.import_module(name)
        files = [m.__file__ for name, m in list(sys.modules.items()) if name.split(".")[0] == "lenna"]
        os.write(write, json.dumps(files).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        results[os.path.basename(script)] = json.loads(pipe.read() or "null")
    os.wait()
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def imported() -> dict[str, set[str]]:
    """Script -> package module files that importing it loads, in a real interpreter, with those
    that the package's functions import when they run (imported for real too)."""
    scripts = sorted(str(p) for p in SCRIPTS.glob("*.py"))
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTED, *scripts], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return {name: {str(Path(f).resolve()) for f in files} for name, files in json.loads(proc.stdout).items()}


def test_every_module_a_script_imports_is_an_input_of_its_rules(rule_inputs, imported):
    checked = 0
    for rule, body in rule_blocks().items():
        script = rule_script(body)
        if script is None:
            continue
        assert imported[script], f"{script}: importing it loaded no package module"
        listed = {str(Path(p).resolve()) for p in rule_inputs[rule] if p.endswith(".py")}
        missing = imported[script] - listed
        assert not missing, f"rule {rule}: {sorted(missing)} run but are not inputs"
        # and nothing more: a module the script never runs must not re-run the rule
        assert listed <= imported[script] | {str(SCRIPTS / script)}, f"rule {rule}: extra {listed}"
        checked += 1
    assert checked >= 20


def test_timing_rules_run_nothing_from_predictors_search_or_report(rule_inputs):
    for rule in TIMING_RULES:
        code = [p for p in rule_inputs[rule] if p.endswith(".py")]
        assert any("/timing/" in p for p in code), rule
        for stage in ("predictors", "search", "report"):
            assert not [p for p in code if f"/lenna/{stage}/" in p], f"{rule} runs {stage} code"


def test_config_checks_are_no_code_input(rule_inputs):
    """Validation that cannot change an output (lenna.config) never re-runs a stage."""
    for rule, paths in rule_inputs.items():
        assert not [p for p in paths if p.endswith("lenna/config.py")], rule


def test_final_training_and_the_search_share_no_search_module():
    search = {p.name for p in package_modules(SCRIPTS / "darts_search.py", SRC) if p.parent.name == "search"}
    final = {p.name for p in package_modules(SCRIPTS / "train_final.py", SRC) if p.parent.name == "search"}
    assert "final.py" in final and "final.py" not in search
    assert {"loop.py", "architect.py", "supernet.py"} <= search and not final & {"loop.py", "architect.py"}


def conda_packages(env: Path) -> set[str]:
    deps = yaml.safe_load(env.read_text())["dependencies"]
    return {re.split(r"[<>=! ]", d, maxsplit=1)[0] for d in deps if isinstance(d, str)}


def test_every_conda_env_lists_the_packages_its_rules_import():
    checked = set()
    for rule, body in rule_blocks().items():
        script = rule_script(body)
        env = re.search(r'conda:\n\s+"\.\./\.\./(envs/\w+\.yaml)"', body)
        assert env, f"rule {rule} has no conda env"
        if script is None:
            continue
        files = [SCRIPTS / script, *package_modules(SCRIPTS / script, SRC)]
        needed = {CONDA_NAMES.get(name, name) for name in third_party(files)}
        missing = needed - conda_packages(ROOT / env.group(1))
        assert not missing, f"rule {rule}: {env.group(1)} lacks {sorted(missing)}"
        checked.add(env.group(1))
    assert len(checked) >= 3
