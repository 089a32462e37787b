"""The workflow's own conventions, enforced: lint clean, formatted, every rule logged, the
package's functions short and its modules free of import circles."""

import ast
import re
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from conftest import ROOT, SNAKEMAKE

PACKAGE = ROOT / "src" / "lenna"
MAX_FUNCTION_LINES = 60


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
        for name, body in re.findall(
            r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)+)", smk.read_text(), re.M
        ):
            assert "log:" in body, f"{smk.name}: rule {name} has no log"
            assert "conda:" in body, f"{smk.name}: rule {name} has no conda env"


# Rules that take minutes at scale: timing, predictor training with many epochs, the search.
HEAVY = {
    "measure_latency",
    "measure_round",
    "choose_specs",
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
        rules.update(re.findall(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)+)", smk.read_text(), re.M))
    assert HEAVY <= rules.keys()
    for name in HEAVY:
        body = rules[name]
        assert ("benchmark:" in body) != ("cache: CACHE" in body), f"rule {name}"
        if "cache: CACHE" in body:
            script = re.search(r'script:\n\s+"\.\./scripts/(\w+\.py)"', body).group(1)
            source = (ROOT / "workflow" / "scripts" / script).read_text()
            assert "time.perf_counter()" in source, f"rule {name}: {script} records no run time"


def long_functions(package: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``file:line name (n lines)`` of every function (methods and nested ones too) of the
    modules under ``package`` longer than ``limit`` lines, its def line and docstring included."""
    return [
        f"{path.relative_to(package.parents[1])}:{node.lineno} {node.name} ({length} lines)"
        for path in sorted(package.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (length := node.end_lineno - node.lineno + 1) > limit
    ]


def test_no_function_of_the_package_is_over_60_lines():
    long = long_functions(PACKAGE)
    assert not long, f"over {MAX_FUNCTION_LINES} lines (split by what each part does): " + "; ".join(long)


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports: every import statement, at module level, in a
    function or under TYPE_CHECKING; ``from a.b import c`` imports ``a.b.c`` where that is a
    module, and ``a.b`` where that is one (a package's ``__init__``)."""
    files = {path: path.relative_to(package.parent).with_suffix("").parts for path in package.rglob("*.py")}
    modules = {".".join(p[:-1] if p[-1] == "__init__" else p) for p in files.values()}
    graph = {}
    for path, parts in files.items():
        name = ".".join(p for p in parts if p != "__init__")
        named = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                named |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, its parts less the last
                    base = ".".join([*parts[: len(parts) - node.level], *([base] if base else [])])
                named |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        graph[name] = (named & modules) - {name}
    return graph


def import_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports of ``graph`` (module -> modules it imports), each module importing
    the next, the first repeated at the end; None when there is none."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as err:
        return list(reversed(err.args[1]))
    return None


def test_the_package_has_no_import_circle():
    graph = import_graph(PACKAGE)
    assert {"lenna.config", "lenna.search.loop", "lenna.search.architect"} <= graph.keys()
    assert "lenna.search.supernet" in graph["lenna.search.loop"]
    circle = import_circle(graph)
    assert circle is None, "import circle: " + " imports ".join(circle)
