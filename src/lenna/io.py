"""Reading and writing the pipeline's Parquet and JSON files: atomic writes, checked reads.

A file is written beside its destination under a temporary name and renamed into place, so a
killed job never leaves a truncated file under a name a later stage would read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class DataError(ValueError):
    """A file whose content the pipeline cannot trust; the message names the file."""


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp)`` on a temporary name beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(table: pd.DataFrame, path, metadata: dict | None = None) -> None:
    """Write ``table`` without its index; ``metadata`` goes into the schema as JSON strings."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        merged = dict(arrow.schema.metadata or {})
        merged.update(
            {f"lenna.{k}".encode(): json.dumps(v, sort_keys=True).encode() for k, v in metadata.items()}
        )
        arrow = arrow.replace_schema_metadata(merged)
    atomic_write(Path(path), lambda tmp: pq.write_table(arrow, tmp))


def write_json(data, path) -> None:
    def write(tmp):
        Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

    atomic_write(Path(path), write)


def read_description(path, fmt: str, version: int, error: type[Exception], missing: str = "") -> dict:
    """A versioned JSON description (a predictor's ``model.json``, a ``network.json``): its
    ``format`` must be ``fmt`` and its ``format_version`` at most ``version``; anything else is
    ``error`` naming the file (``missing`` adds a hint to a missing file's message)."""
    path = Path(path)
    try:
        description = json.loads(path.read_text())
    except FileNotFoundError:
        raise error(f"{path}: no such file{missing}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path}: not valid JSON ({err})") from None
    if not isinstance(description, dict) or description.get("format") != fmt:
        raise error(f"{path}: not a {fmt} description")
    if description.get("format_version", 0) > version:
        raise error(
            f"{path}: format version {description['format_version']} is newer than this "
            f"version of lenna reads ({version})"
        )
    return description


def read_parquet(path, required: Iterable[str] = ()) -> pd.DataFrame:
    """Read a table, failing with the file name if it is unreadable or lacks ``required`` columns."""
    try:
        table = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{path}: not a readable Parquet file ({err})") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")
    return table


def read_table(path) -> pd.DataFrame:
    """A CSV (by its ``.csv`` name) or Parquet table, failing with the file name if unreadable."""
    path = str(path)
    if path.endswith(".csv"):
        try:
            return pd.read_csv(path)
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: not a readable CSV file ({err})") from None
    return read_parquet(path)


def read_metadata(path) -> dict:
    """The ``lenna.*`` schema metadata of a Parquet file written by `write_parquet`."""
    raw = pq.read_schema(path).metadata or {}
    return {k.decode()[6:]: json.loads(v) for k, v in raw.items() if k.startswith(b"lenna.")}
