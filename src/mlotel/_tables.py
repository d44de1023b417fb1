"""Reading a data file (CSV, or Parquet with pyarrow) for the ``mlotel`` commands.

One reader, one set of error messages: every failure is a :class:`TableError`
whose text names the file and the problem in one line (the CLI prints it
without a traceback).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TableError", "read_csv_plain", "read_table"]

_PARQUET = (".parquet", ".pq")


class TableError(ValueError):
    """A data file that cannot be read; the message names the file and the problem."""


def read_table(path: str | Path, *, dataframe: bool = False) -> Any:
    """A pandas DataFrame of a CSV or Parquet file.

    Without ``dataframe=True`` a missing pandas is no error: CSV files come back as
    a dict of numpy columns and Parquet files as a pyarrow Table.

    >>> import tempfile, pathlib
    >>> data = pathlib.Path(tempfile.mkdtemp(), "d.csv")
    >>> _ = data.write_text("x,y\\n1,a\\n2,b\\n")
    >>> read_table(data, dataframe=True).shape
    (2, 2)
    >>> read_table(data.with_name("nope.csv"))
    Traceback (most recent call last):
    ...
    mlotel._tables.TableError: .../nope.csv: no such file
    """
    source = Path(path)
    if not source.is_file():
        raise TableError(f"{path}: no such file")
    try:
        import pandas as pd
    except ImportError:
        if dataframe:
            raise TableError(f"{path}: reading it needs pandas: pip install pandas") from None
        pd = None
    if source.suffix.lower() in _PARQUET:
        return _read_parquet(source, pd)
    if pd is None:
        return read_csv_plain(source)
    try:
        return pd.read_csv(source, low_memory=False)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: the file is empty (no header row)") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise TableError(f"{path}: not a readable CSV file ({detail})") from None
    except UnicodeDecodeError as exc:
        raise TableError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, ValueError) as exc:
        raise TableError(f"{path}: cannot read it ({exc})") from None


def _read_parquet(source: Path, pd: Any) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise TableError(
            f"{source}: reading Parquet needs pyarrow: pip install 'mlotel[parquet]'"
        ) from None
    try:
        table = pq.read_table(source)
    except Exception as exc:  # pyarrow raises several error types for a bad file
        raise TableError(f"{source}: not a readable Parquet file ({exc})") from None
    return table.to_pandas() if pd is not None else table


def read_csv_plain(source: Path) -> dict[str, Any]:
    """CSV without pandas: numeric columns become float (or int) arrays, the rest text."""
    try:
        with source.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise TableError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, csv.Error) as exc:
        raise TableError(f"{source}: not a readable CSV file ({exc})") from None
    if not rows:
        raise TableError(f"{source}: the file is empty (no header row)")
    header, body = rows[0], rows[1:]
    if any(len(r) != len(header) for r in body):
        bad = next(i for i, r in enumerate(body, start=2) if len(r) != len(header))
        raise TableError(
            f"{source}: not a readable CSV file (line {bad} has a different number of "
            "fields than the header)"
        )
    columns: dict[str, Any] = {}
    for i, name in enumerate(header):
        texts = [r[i] for r in body]
        try:
            values = np.array([float(t) if t.strip() else np.nan for t in texts])
        except ValueError:
            columns[name] = np.array([t if t else None for t in texts], dtype=object)
            continue
        finite = values[np.isfinite(values)]
        integral = finite.size == values.size and np.all(finite == np.round(finite))
        columns[name] = values.astype(np.int64) if integral else values
    return columns
