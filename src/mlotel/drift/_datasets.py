"""Reading data files: whole tables for small inputs, record batches for datasets.

A *dataset source* is a Parquet or CSV file, a directory of them (hive-partitioned
directories such as ``date=2024-01-01/`` add their keys as columns), a glob
(``data/*.parquet``, ``**`` included), or a list of any of these. :func:`open_dataset`
resolves it into files, checks that every file has the columns and types of the others,
and :meth:`Dataset.batches` yields pyarrow record batches of the requested columns only,
file after file, so memory is bounded by the batch size times the columns read, not by
the rows.

Every failure is a :class:`DatasetError` whose text names the file and the problem in one
line (the CLI prints it without a traceback).
"""

from __future__ import annotations

import csv
import glob
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import DatasetError

__all__ = [
    "BATCH_ROWS",
    "BATCH_VALUES",
    "CSV_BLOCK_BYTES",
    "Dataset",
    "SchemaChanged",
    "is_dataset_source",
    "open_dataset",
    "read_csv_plain",
    "read_table",
]

BATCH_ROWS = 65_536
"""Most rows per record batch read from a dataset."""
BATCH_VALUES = 1 << 23
"""Most values (rows x columns read) per batch: memory ~ 8 bytes each, a few times over."""
CSV_BLOCK_BYTES = 1 << 24
"""CSV bytes read at a time; column types are read from a file's first block (and widened
if later rows need it)."""
_PARQUET = (".parquet", ".pq")
_CSV = (".csv",)
_GLOB_CHARS = re.compile(r"[*?\[]")
_CSV_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+)")
_WIDER = {"int64": "double", "double": "string", "bool": "string"}


# --- whole tables (small inputs, no pyarrow needed for CSV) ----------------------------


def read_table(path: str | Path) -> Any:
    """A pandas DataFrame of a CSV file; without pandas, a dict of numpy columns.

    >>> import tempfile, pathlib
    >>> data = pathlib.Path(tempfile.mkdtemp(), "d.csv")
    >>> _ = data.write_text("x,y\\n1,a\\n2,b\\n")
    >>> [str(v) for v in read_table(data)["y"]]
    ['a', 'b']
    >>> read_table(data.with_name("nope.csv"))
    Traceback (most recent call last):
    ...
    mlotel.exceptions.DatasetError: .../nope.csv: no such file
    """
    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        import pandas as pd
    except ImportError:
        return read_csv_plain(source)
    try:
        return pd.read_csv(source, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"{path}: the file is empty (no header row)") from None
    except pd.errors.ParserError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DatasetError(f"{path}: not a readable CSV file ({detail})") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read it ({exc})") from None


def read_csv_plain(source: Path) -> dict[str, Any]:
    """CSV without pandas: numeric columns become float (or int) arrays, the rest text."""
    try:
        with source.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except (OSError, csv.Error) as exc:
        raise DatasetError(f"{source}: not a readable CSV file ({exc})") from None
    if not rows:
        raise DatasetError(f"{source}: the file is empty (no header row)")
    header, body = rows[0], rows[1:]
    if any(len(r) != len(header) for r in body):
        bad = next(i for i, r in enumerate(body, start=2) if len(r) != len(header))
        raise DatasetError(
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


# --- datasets ----------------------------------------------------------------------------


def _pyarrow(where: Any, what: str = "dataset") -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError(
            f"{where}: reading a {what} needs pyarrow: pip install 'mlotel[parquet]'"
        ) from None
    return pq


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    # pyarrow wraps the cause in "Error creating dataset. Could not read schema from ...".
    for marker in ("file?: ", "Invalid: "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return text if len(text) <= 300 else text[:297] + "..."


def _check_text(path: Path) -> None:
    """A CSV file must be UTF-8 and have a header row (pandas' messages, kept)."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    if not head.strip():
        raise DatasetError(f"{path}: the file is empty (no header row)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut = len(head) == 1 << 16 and exc.start >= len(head) - 4  # a character cut in two
        if not cut:
            raise DatasetError(
                f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from None


def is_dataset_source(data: Any) -> bool:
    """Whether ``data`` names files (a path, a glob, or a list of them) rather than holding data.

    >>> is_dataset_source("train.parquet"), is_dataset_source(["a.csv", "b.csv"])
    (True, True)
    >>> is_dataset_source({"x": [1.0]}), is_dataset_source([[1.0, 2.0]])
    (False, False)
    """
    if isinstance(data, (str, os.PathLike)):
        return True
    return (
        isinstance(data, (list, tuple))
        and bool(data)
        and all(isinstance(item, os.PathLike) or _looks_like_path(item) for item in data)
    )


def _looks_like_path(item: Any) -> bool:
    # A list of plain words is a column of text, not a list of files.
    if not isinstance(item, str):
        return False
    return (
        item.lower().endswith((*_PARQUET, *_CSV))
        or os.sep in item
        or bool(_GLOB_CHARS.search(item))
        or Path(item).exists()
    )


def _expand(source: str | os.PathLike[str]) -> tuple[list[Path], Path | None]:
    """(files, base directory for hive partitions or None) of one source."""
    text = os.fspath(source)
    if _GLOB_CHARS.search(text) and not Path(text).exists():
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
        files: list[Path] = []
        for match in matches:
            files.extend(_expand(match)[0] if match.is_dir() else [match])
        if not files:
            raise DatasetError(f"{text}: no file matches")
        return files, None
    path = Path(text)
    if path.is_dir():
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix.lower() in (*_PARQUET, *_CSV)
            # Spark and Hadoop leave _SUCCESS, _metadata, .crc files beside the data.
            and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
        )
        if not found:
            raise DatasetError(f"{text}: no Parquet or CSV file in this directory")
        return found, path
    if not path.exists():
        raise DatasetError(f"{text}: no such file or directory")
    return [path], None


def _format_of(files: Sequence[Path]) -> str:
    kinds = {"parquet" if f.suffix.lower() in _PARQUET else "csv" for f in files}
    if len(kinds) > 1:
        parquet = next(f for f in files if f.suffix.lower() in _PARQUET)
        text = next(f for f in files if f.suffix.lower() not in _PARQUET)
        raise DatasetError(
            f"{text}: a CSV file among Parquet files (e.g. {parquet}); read one format at a time"
        )
    return kinds.pop()


def _type_text(pa_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_integer(pa_type):
        return "int64"
    if pa.types.is_floating(pa_type):
        return "double"
    if pa.types.is_string(pa_type) or pa.types.is_large_string(pa_type):
        return "string"
    if pa.types.is_dictionary(pa_type):
        return "string" if pa.types.is_string(pa_type.value_type) else str(pa_type)
    return str(pa_type)


@dataclass
class Dataset:
    """Files of one dataset with their common schema; :meth:`batches` reads them.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.csv").write_text("x,c\\n1.5,a\\n2.5,b\\n")
    >>> _ = (folder / "b.csv").write_text("x,c\\n3.5,a\\n")
    >>> data = open_dataset(folder)
    >>> data.column_names, sum(batch.num_rows for batch in data.batches(["x"]))
    (['x', 'c'], 3)
    """

    files: list[Path]
    format: str
    schema: Any
    partition_base: Path | None = None
    batch_rows: int = BATCH_ROWS
    partition_columns: tuple[str, ...] = ()
    _dataset: Any = field(default=None, repr=False)

    @property
    def column_names(self) -> list[str]:
        """Column names, in file order (then hive partition keys)."""
        return [str(n) for n in self.schema.names]

    @property
    def label(self) -> str:
        """The files in a few words, for messages."""
        if len(self.files) == 1:
            return str(self.files[0])
        return f"{self.files[0].parent if self.partition_base is None else self.partition_base}"\
            f" ({len(self.files)} files)"

    def count_rows(self) -> int | None:
        """Rows in all files (from Parquet footers); None for CSV (unknown before reading)."""
        if self.format != "parquet":
            return None
        total = 0
        for fragment in self._dataset.get_fragments():
            try:
                total += fragment.count_rows()
            except Exception as exc:  # pyarrow's error types vary with the fault
                raise DatasetError(
                    f"{fragment.path}: not a readable Parquet file ({_one_line(exc)})"
                ) from None
        return total

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[Any]:
        """Record batches of ``columns`` (all by default), file after file.

        A CSV column whose later rows do not fit the type read from its first rows
        (integers, then ``1.5``; numbers, then text) is widened (integer, float, text) and
        the batches start again from the first file: :class:`SchemaChanged` tells the
        caller to discard what it read.
        """
        import pyarrow.dataset as ds

        names = list(self.column_names if columns is None else columns)
        rows = max(1_024, min(self.batch_rows, BATCH_VALUES // max(1, len(names))))
        for fragment in self._dataset.get_fragments():
            scanner = ds.Scanner.from_fragment(
                fragment,
                schema=self.schema,
                columns=names,
                batch_size=rows,
                batch_readahead=1,
                fragment_readahead=1,
                use_threads=True,
            )
            try:
                yield from scanner.to_batches()
            except Exception as exc:  # ArrowInvalid, OSError... with the file's fault
                text = _one_line(exc)
                widened = self._widen_csv(text)
                if widened:
                    raise SchemaChanged(widened) from None
                kind = "Parquet" if self.format == "parquet" else "CSV"
                raise DatasetError(f"{fragment.path}: not a readable {kind} file ({text})")\
                    from None

    def _widen_csv(self, message: str) -> str | None:
        match = _CSV_CONVERSION.search(message)
        if self.format != "csv" or match is None:
            return None
        import pyarrow as pa

        index = int(match.group(1))
        data_fields = [f for f in self.schema if f.name not in self.partition_columns]
        if index >= len(data_fields):
            return None
        old = data_fields[index]
        wider = _WIDER.get(_type_text(old.type))
        if wider is None:
            return None
        self.schema = self.schema.set(
            self.schema.get_field_index(old.name), pa.field(old.name, _arrow_type(wider))
        )
        self._dataset = _make_dataset(self.files, self.format, self.schema, self.partition_base)
        return f"column {old.name!r} widened to {wider}"


class SchemaChanged(Exception):
    """A CSV column's type was widened while reading: start the pass again."""


def _arrow_type(text: str) -> Any:
    import pyarrow as pa

    return {"int64": pa.int64(), "double": pa.float64(), "string": pa.string()}[text]


def _make_dataset(files: Sequence[Path], fmt: str, schema: Any, base: Path | None) -> Any:
    import pyarrow.dataset as ds

    # pyarrow's default pre-buffering reads ahead many row groups at once (GBs on wide
    # files); without it a scan holds about one row group of the columns read.
    file_format: Any = ds.ParquetFileFormat(
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False)
    )
    if fmt == "csv":
        import pyarrow.csv as pacsv

        file_format = ds.CsvFileFormat(
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            # Empty fields are missing values, as pandas reads them.
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
        )
    return ds.dataset(
        [str(f) for f in files],
        schema=schema,
        format=file_format,
        partitioning="hive" if base is not None else None,
        partition_base_dir=str(base) if base is not None else None,
    )


def _as_pandas_reads_csv(schema: Any) -> Any:
    """Dates and times stay text, as ``pandas.read_csv`` leaves them (pyarrow parses them)."""
    import pyarrow as pa

    for index, column in enumerate(schema):
        if pa.types.is_temporal(column.type):
            schema = schema.set(index, pa.field(column.name, pa.string()))
    return schema


def _merge_type(a: Any, b: Any) -> Any | None:
    """The type both files' columns read as, or None when they do not mix."""
    import pyarrow as pa

    if a == b:
        return a
    ta, tb = _type_text(a), _type_text(b)
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if ta == tb and ta in ("int64", "double", "string"):
        return _arrow_type(ta)
    if {ta, tb} == {"int64", "double"}:
        return pa.float64()
    return None


def open_dataset(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    batch_rows: int = BATCH_ROWS,
) -> Dataset:
    """Resolve a dataset source (file, directory, glob, or a list) and check its files.

    Every file must hold the columns of the first one with types that mix (integers and
    floats read as floats); otherwise :class:`DatasetError` names the file and the column.

    >>> open_dataset("/nonexistent/x.parquet")
    Traceback (most recent call last):
    ...
    mlotel.exceptions.DatasetError: /nonexistent/x.parquet: no such file or directory
    """
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not sources:
        raise DatasetError("no data files given")
    files: list[Path] = []
    base: Path | None = None
    for item in sources:
        found, found_base = _expand(item)
        files.extend(found)
        if found_base is not None and len(sources) == 1:
            base = found_base
    fmt = _format_of(files)
    _pyarrow(files[0], fmt)
    import pyarrow as pa
    import pyarrow.dataset as ds

    schema: Any = None
    first: Path = files[0]
    for path in files:
        try:
            if path.stat().st_size == 0:
                raise DatasetError(f"{path}: the file is empty")
            if fmt == "csv":
                _check_text(path)
            single = _make_dataset([path], fmt, None, None)
            physical = single.schema
        except DatasetError:
            raise
        except Exception as exc:  # pyarrow: ArrowInvalid and friends for a damaged file
            kind = "Parquet" if fmt == "parquet" else "CSV"
            raise DatasetError(f"{path}: not a readable {kind} file ({_one_line(exc)})") from None
        if fmt == "csv":
            physical = _as_pandas_reads_csv(physical)
        if schema is None:
            schema = physical
            continue
        mine = {f.name: f.type for f in physical}
        for column in schema:
            if column.name not in mine:
                raise DatasetError(
                    f"{path}: has no column {column.name!r} (the first file, {first}, has it)"
                )
            merged = _merge_type(column.type, mine[column.name])
            if merged is None:
                raise DatasetError(
                    f"{path}: column {column.name!r} is {mine[column.name]} here but "
                    f"{column.type} in {first}"
                )
            if merged != column.type:
                schema = schema.set(schema.get_field_index(column.name), pa.field(column.name,
                                                                                     merged))
        extra = [n for n in mine if n not in schema.names]
        if extra:
            raise DatasetError(
                f"{path}: has column {extra[0]!r} that the first file, {first}, lacks"
            )
    partition_columns: tuple[str, ...] = ()
    if base is not None:
        discovered = ds.dataset(
            [str(f) for f in files],
            format="parquet" if fmt == "parquet" else "csv",
            partitioning="hive",
            partition_base_dir=str(base),
        )
        keys = [f for f in discovered.schema if f.name not in schema.names]
        # Hive keys read as text (what pandas and Spark show as categories).
        for key in keys:
            schema = schema.append(pa.field(key.name, pa.string()))
        partition_columns = tuple(k.name for k in keys)
    dataset = Dataset(files, fmt, schema, base, batch_rows, partition_columns)
    dataset._dataset = _make_dataset(files, fmt, schema, base)
    return dataset
