"""Which modules a Python file runs: the package modules it imports, followed through the package,
and the third-party packages they import.

The workflow lists a rule's package modules as the rule's inputs (`code_inputs` in
workflow/rules/common.smk), so an edit re-runs exactly the rules whose scripts import the edited
module, directly or not; the tests derive each conda environment's packages the same way.
Standard library only, and imported by no workflow script: it is never a code input itself.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

PACKAGE = "lenna"


def _imported_names(path: Path) -> tuple[str, ...]:
    """Dotted names of everything ``path`` imports, anywhere in it (a function-level import runs
    too); ``from a.b import c`` gives both ``a.b`` and ``a.b.c`` (which may be a module). Parsed
    once per version of the file: building the DAG asks for every script's modules, and the
    scripts share most of them."""
    stat = Path(path).stat()
    return _parsed_names(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1024)
def _parsed_names(path: str, _mtime_ns: int, _size: int) -> tuple[str, ...]:
    names = []
    for node in ast.walk(ast.parse(Path(path).read_text(), path)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return tuple(names)


def _module_file(src: Path, dotted: str) -> Path | None:
    base = src.joinpath(*dotted.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _direct_modules(path: Path, src: Path) -> tuple[Path, ...]:
    """The files of the package modules (under ``src``) that ``path`` itself imports, with the
    ``__init__.py`` of every package on the way. Resolved once per version of the file: the
    scripts share most modules, and a walk per script resolved each of their names again (a
    third of a second of every `snakemake` call)."""
    stat = Path(path).stat()
    return _resolved(str(path), stat.st_mtime_ns, stat.st_size, str(src))


@functools.lru_cache(maxsize=1024)
def _resolved(path: str, mtime_ns: int, size: int, src: str) -> tuple[Path, ...]:
    found: dict[Path, None] = {}
    for name in _parsed_names(path, mtime_ns, size):  # the file's version is known: no second stat
        parts = name.split(".")
        if parts[0] != PACKAGE:
            continue
        for i in range(1, len(parts) + 1):
            module = _module_file(Path(src), ".".join(parts[:i]))
            if module is not None:
                found[module] = None
    return tuple(found)


def package_modules(path: Path, src: Path) -> list[Path]:
    """The files of the package modules (under ``src``) that ``path`` imports, transitively, with
    the ``__init__.py`` of every package on the way; sorted."""
    seen: set[Path] = set()
    todo = [Path(path)]
    while todo:
        for module in _direct_modules(todo.pop(), src):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return sorted(seen)


def third_party(paths) -> set[str]:
    """Top-level names of the imports of ``paths`` that are neither the standard library nor
    this package (``torch``, ``sklearn``, ...)."""
    found = set()
    for path in paths:
        for name in _imported_names(Path(path)):
            top = name.split(".")[0]
            if top != PACKAGE and top not in sys.stdlib_module_names and top != "__future__":
                found.add(top)
    return found
