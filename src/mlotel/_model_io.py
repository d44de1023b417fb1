"""Understanding model inputs and outputs without importing the libraries they come from.

Inputs: Python scalars, lists, dicts, numpy arrays (1-D = one row, 2-D = rows),
pandas DataFrames/Series, torch tensors (recognised by type, never by importing
torch). Outputs: labels, regression values and ``predict_proba``-style score
matrices.
"""

from __future__ import annotations

import functools
import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from . import semconv

__all__ = [
    "MAX_STRING",
    "DeferredArray",
    "batch_size",
    "classes_and_scores",
    "clean_value",
    "columnar_rows",
    "default_names",
    "features_payload",
    "input_snapshot",
    "interpret_output",
    "is_sparse",
    "is_dataframe",
    "is_torch",
    "output_array",
    "output_rows",
    "payload_rows",
    "reduce_rows",
    "row_fits",
    "torch_to_numpy",
]

MAX_STRING = 256
"""Longest string value kept in a payload; longer ones are cut and marked with '…'."""

_NAME_CACHE: dict[int, tuple[str, ...]] = {}
_MAX_STRING_BYTES = 4 * MAX_STRING  # enough UTF-8 for MAX_STRING characters
_MAX_ITEMS_SHOWN = 64
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlist = _SHORT_REPR.maxtuple = _SHORT_REPR.maxdict = _MAX_ITEMS_SHOWN
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = MAX_STRING


class DeferredArray:
    """An array whose values are read at flush time, not when the call ends.

    Integrations hand one to the call path for what cannot be read without waiting,
    e.g. a CUDA tensor copied to pinned host memory without blocking: ``resolve``
    (run once, on the flushing thread) waits for that copy and returns the values.

    >>> deferred = DeferredArray(lambda: np.arange(6.0).reshape(3, 2), (3, 2))
    >>> deferred.shape, len(deferred), float(output_array(deferred).sum()), deferred[:1].tolist()
    ((3, 2), 3, 15.0, [[0.0, 1.0]])
    """

    __slots__ = ("_resolve", "_value", "shape")

    def __init__(self, resolve: Any, shape: tuple[int, ...]) -> None:
        self._resolve = resolve
        self._value: np.ndarray | None = None
        self.shape = shape

    def resolved(self) -> np.ndarray:
        """The values (resolved on the first call)."""
        value = self._value
        if value is None:
            value = self._value = np.asarray(self._resolve())
            self._resolve = None
        return value

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self.resolved()
        return value if dtype is None else value.astype(dtype)

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    def __getitem__(self, key: Any) -> Any:
        return self.resolved()[key]


def default_names(count: int) -> tuple[str, ...]:
    """``f0 … f{count-1}``, cached per width."""
    names = _NAME_CACHE.get(count)
    if names is None:
        names = tuple(f"f{i}" for i in range(count))
        if len(_NAME_CACHE) < 64:
            _NAME_CACHE[count] = names
    return names


def _module(obj: Any) -> str:
    return type(obj).__module__.partition(".")[0]


def is_torch(obj: Any) -> bool:
    return _module(obj) == "torch" and hasattr(obj, "detach")


def is_dataframe(obj: Any) -> bool:
    return _module(obj) == "pandas" and hasattr(obj, "columns") and hasattr(obj, "iloc")


def _is_series(obj: Any) -> bool:
    return _module(obj) == "pandas" and hasattr(obj, "index") and not hasattr(obj, "columns")


def torch_to_numpy(tensor: Any) -> np.ndarray:
    host = tensor.detach().cpu()
    try:
        return np.asarray(host.numpy())
    except TypeError:  # dtypes numpy lacks (bfloat16, float8): widen to float32 first
        return np.asarray(host.float().numpy())


_ROW_ITEMS = (list, tuple, Mapping, np.ndarray, str, bytes)
_CONTAINERS = (Mapping, list, tuple)


def _all_text(values: Any) -> bool:
    """Every sampled element is a str/bytes (documents); checks at most 33 elements."""
    n = len(values)
    if n == 0:
        return False
    sample = values if n <= 33 else [*values[:32], values[-1]]
    return all(isinstance(v, (str, bytes)) for v in sample)


def _is_document_vector(x: Any) -> bool:
    """A 1-D array/Series of strings: one row per element (text models). Object arrays
    count only when their elements are strings; mixed values are one row of features."""
    kind = getattr(getattr(x, "dtype", None), "kind", "")
    if len(getattr(x, "shape", ())) != 1 or kind not in "USO":
        return False
    if kind in "US":
        return True
    return _all_text(x if isinstance(x, np.ndarray) else x.array)


def columnar_rows(x: Mapping[Any, Any]) -> int | None:
    """Rows of a dict whose values are all columns (ragged ones padded with None); None
    when any value is a scalar: then the dict is one record (a list value is one feature)."""
    length = None
    for value in x.values():
        if not isinstance(value, (list, tuple, np.ndarray)):
            return None
        length = len(value) if length is None else max(length, len(value))
    return length


def batch_size(x: Any) -> int:
    """Rows in one model input.

    A 1-D numeric vector is one row of features; a sequence of rows, records or
    documents (strings) is one row each; a dict is columns only when every value
    is a sequence.

    >>> batch_size(np.zeros((32, 4))), batch_size([1.0, 2.0]), batch_size({"a": [1, 2, 3]})
    (32, 1, 3)
    >>> batch_size(["good movie", "bad plot"]), batch_size(["red", 3.0])
    (2, 1)
    """
    if isinstance(x, np.ndarray):
        if x.ndim >= 2:
            return int(x.shape[0])
        return int(x.shape[0]) if x.ndim == 1 and _is_document_vector(x) else 1
    if is_torch(x):
        shape = tuple(x.shape)
        return int(shape[0]) if len(shape) >= 2 else 1
    if is_dataframe(x):
        return len(x)
    if _is_series(x):
        return len(x) if _is_document_vector(x) else 1
    if isinstance(x, Mapping):
        columns = columnar_rows(x)
        return 1 if columns is None else columns
    if isinstance(x, (list, tuple)):
        if not x:
            return 1
        first = x[0]
        if isinstance(first, (str, bytes)):
            return len(x) if _all_text(x) else 1
        if isinstance(first, _ROW_ITEMS):
            return len(x)
        return 1
    sparse_shape = getattr(x, "shape", None)  # scipy sparse matrices and other array-likes
    if (
        isinstance(sparse_shape, tuple)
        and len(sparse_shape) >= 2
        and isinstance(sparse_shape[0], int)
    ):
        return sparse_shape[0]
    return 1


def clean_value(value: Any) -> Any:
    """A value safe for an OTel attribute: bool/int/float/str/None, long strings cut."""
    if isinstance(value, np.generic):  # numpy scalars (np.float64 is also a float)
        value = value.item()
    if value is None or isinstance(value, (bool, int, float)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
            return str(value)
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING else value[: MAX_STRING - 1] + "…"
    if isinstance(value, np.generic):  # e.g. longdouble, whose item() stays numpy
        return float(value) if value.dtype.kind == "f" else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        # Cut before decoding: an image or audio clip is not decoded whole for 256 characters.
        head = bytes(value[:_MAX_STRING_BYTES])
        text = head.decode("utf-8", "replace")
        if len(value) > len(head):
            text = text[: MAX_STRING - 1] + "…"
        return clean_value(text)
    if isinstance(value, (list, tuple, Mapping)) and len(value) > _MAX_ITEMS_SHOWN:
        text = _SHORT_REPR.repr(value)  # a few items, not the text of every one
    else:
        try:
            text = str(value)  # the same text the class counter uses for labels
        except Exception:
            text = f"<{type(value).__name__}>"
    return clean_value(text)


# Approximate OTLP protobuf sizes: a number in an AnyValue array is ~11 bytes (tags,
# length, 8-byte payload); each logged row also carries a prediction and a score.
_NUMBER_BYTES = 11
_ROW_OUTPUT_BYTES = 2 * _NUMBER_BYTES


def _value_bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "replace")) + 4
    if value is None or isinstance(value, bool):
        return 4
    return _NUMBER_BYTES


def _rows_of(
    x: Any, max_rows: int, max_bytes: int = 0, max_width: int = 0
) -> tuple[Any, tuple[str, ...] | None, int]:
    """(2-D numpy array or list of row sequences, names carried by x, total rows).

    Tensors are cut to the rows a payload of ``max_bytes`` can hold and ``max_width``
    columns before they are copied to the host (0: no such cut)."""
    if type(x) is DeferredArray:
        x = x.resolved()
    if isinstance(x, np.ndarray):
        if x.ndim == 0:
            return [[x.item()]], None, 1
        if x.ndim == 1 and _is_document_vector(x):  # documents: one value per row
            return x[:max_rows].reshape(-1, 1), None, len(x)
        arr = x if x.ndim == 2 else x.reshape(1, -1) if x.ndim < 2 else x.reshape(len(x), -1)
        return arr[:max_rows], None, arr.shape[0]
    if is_torch(x):
        shape = tuple(x.shape)
        if len(shape) >= 2:
            head = x[: min(max_rows, _numeric_rows(max_bytes))] if max_bytes else x[:max_rows]
            if max_width and len(shape) > 2:
                head = head.reshape(head.shape[0], -1)
            if max_width:
                head = head[:, :max_width]
        else:
            head = x[:max_width] if max_width else x
        arr = torch_to_numpy(head)
        total = shape[0] if len(shape) >= 2 else 1
        return (
            (arr if arr.ndim == 2 else arr.reshape(len(arr) if arr.ndim > 2 else 1, -1)),
            None,
            total,
        )
    if is_dataframe(x):
        names = tuple(str(c) for c in x.columns)
        return x.iloc[:max_rows].to_numpy(), names, len(x)
    if _is_series(x):
        if _is_document_vector(x):
            name = str(x.name) if x.name is not None else "f0"
            return [[v] for v in x.iloc[:max_rows].tolist()], (name,), len(x)
        names = tuple(str(i) for i in x.index)
        return [list(x.to_numpy())], names, 1
    if isinstance(x, Mapping):
        names = tuple(str(k) for k in x)
        columns = list(x.values())
        total = columnar_rows(x)
        if total is not None:
            rows = [
                [col[i] if i < len(col) else None for col in columns]
                for i in range(min(total, max_rows))
            ]
            return rows, names, total
        return [columns], names, 1
    if isinstance(x, (list, tuple)):
        if not x:
            return [[]], None, 0
        first = x[0]
        if isinstance(first, Mapping):
            head = x[:max_rows]
            # Every key of the rows shown, in first-seen order (not just the first row's).
            keys = list(dict.fromkeys(k for row in head if isinstance(row, Mapping) for k in row))
            names = tuple(str(k) for k in keys)
            rows = [
                [row.get(k) if isinstance(row, Mapping) else None for k in keys] for row in head
            ]
            return rows, names, len(x)
        if isinstance(first, (list, tuple, np.ndarray)):
            return (
                [
                    list(r) if isinstance(r, (list, tuple, np.ndarray)) else [r]
                    for r in x[:max_rows]
                ],
                None,
                len(x),
            )
        if isinstance(first, (str, bytes)) and _all_text(x):  # documents
            return [[r] for r in x[:max_rows]], None, len(x)
        return [list(x)], None, 1
    return [[x]], None, 1


def _numeric_rows(max_bytes: int) -> int:
    """Most numeric rows a payload of ``max_bytes`` can hold (one value each, at least)."""
    return max_bytes // (_NUMBER_BYTES + _ROW_OUTPUT_BYTES) + 1


def is_sparse(x: Any) -> bool:
    """A scipy.sparse matrix or array (recognised without importing scipy)."""
    return _module(x) == "scipy" and hasattr(x, "nnz") and hasattr(x, "tocsr")


def _sparse_head(
    x: Any, names: Sequence[str] | None, max_bytes: int, max_features: int
) -> tuple[np.ndarray, tuple[str, ...], int]:
    """The first rows of a sparse matrix as a small dense block of the columns that are
    non-zero in them, their names, and the non-zero columns left out by ``max_features``.

    Work is bounded by the payload, not the matrix: only rows a payload can hold are
    sliced (O(their non-zeros)), and rows are added while the union of their non-zero
    columns stays within ``max_features`` and ``max_bytes``.
    """
    total, width = int(x.shape[0]), int(x.shape[1])
    if total == 0 or width == 0:
        return np.zeros((0, 0)), (), 0
    rows = min(total, _numeric_rows(max_bytes))
    head = x if hasattr(x, "indptr") else x.tocsr()  # COO has no row slicing
    head = head[:rows].tocsr()
    indptr, indices = head.indptr, head.indices
    given = names if names is not None and len(names) == width else None

    def name_bytes(column_count: int) -> int:
        return column_count * (len(str(width)) + 5)  # "f123456" plus the map's overhead

    columns = np.unique(indices[indptr[0] : indptr[1]])
    used = 1
    for i in range(1, rows):
        joined = np.union1d(columns, indices[indptr[i] : indptr[i + 1]])
        cost = name_bytes(len(joined)) + (i + 1) * (
            _NUMBER_BYTES * len(joined) + _ROW_OUTPUT_BYTES
        )
        if len(joined) > max_features or cost > max_bytes:
            break
        columns, used = joined, i + 1
    dropped = max(0, len(columns) - max_features)
    columns = columns[:max_features]
    block = np.asarray(head[:used][:, columns].toarray())
    column_list = columns.tolist()
    if given is not None:
        kept = tuple(str(given[c]) for c in column_list)
    else:
        kept = tuple(f"f{c}" for c in column_list)
    return block, kept, dropped


_FITS_CACHE: dict[tuple[Sequence[str], int], bool] = {}


def row_fits(names: Sequence[str], width: int, max_bytes: int) -> bool:
    """Whether one numeric row with these names fits ``max_bytes`` (cached per names)."""
    key = (names, max_bytes)
    fits = _FITS_CACHE.get(key)
    if fits is None:
        fits = (
            sum(map(len, names)) + 4 * len(names) + _NUMBER_BYTES * width + _ROW_OUTPUT_BYTES
            <= max_bytes
        )
        if len(_FITS_CACHE) < 256:
            _FITS_CACHE[key] = fits
    return fits


def payload_rows(width: int, max_bytes: int) -> int:
    """Rows of a ``width``-wide numeric input that a payload of ``max_bytes`` can show.

    >>> payload_rows(4, 8192)
    125
    """
    return max_bytes // (_NUMBER_BYTES * max(1, width) + _ROW_OUTPUT_BYTES) + 1


def input_snapshot(x: Any, all_rows: bool, max_bytes: int) -> Any:
    """What telemetry reads of a model input, copied where that is cheap.

    A numpy array is copied as far as a payload of ``max_bytes`` can show it (its
    first rows), so a caller reusing its buffer cannot change the logged features.
    With ``all_rows`` (an analyzer reads every row; the call path copies such arrays
    itself, whole), and for other inputs, the object itself is returned.

    >>> x = np.ones((1000, 4))
    >>> snapshot = input_snapshot(x, False, 8192)
    >>> x[:] = 0.0  # the caller reuses its buffer
    >>> snapshot.shape, float(snapshot.min())
    ((125, 4), 1.0)
    >>> input_snapshot(x, True, 8192) is x
    True
    """
    if type(x) is not np.ndarray or all_rows:
        return x
    if x.ndim < 2 or x.shape[0] <= 1:
        return x.copy()
    return x[: payload_rows(x.size // x.shape[0], max_bytes)].copy()


def features_payload(
    x: Any,
    names: Sequence[str] | None,
    max_bytes: int,
    max_features: int,
    total_rows: int | None = None,
    nested: Callable[[Any], Any] | None = None,
) -> tuple[dict[str, Any], bool, int]:
    """The feature map of one call, within ``max_bytes`` (approximate encoded size).

    One row gives ``{name: value}``; a batch gives ``{name: [values of the rows that
    fit]}``. Returns ``(payload, truncated, features_dropped_by_cap)``. ``total_rows``:
    the call's rows when ``x`` holds only the first of them (a snapshot). ``nested``
    rewrites values that are dicts, lists or tuples before they become text (redaction
    of nested keys).

    >>> features_payload(np.array([[1.0, 2.0]]), ("age", "income"), 8192, 100)
    ({'age': 1.0, 'income': 2.0}, False, 0)
    """
    sparse_dropped = 0
    if not is_sparse(x) and hasattr(x, "toarray") and len(getattr(x, "shape", ())) == 2:
        # A row view of another sparse container (xgboost's DMatrix): its first rows.
        total_rows = int(x.shape[0]) if total_rows is None else total_rows
        x = x[: _numeric_rows(max_bytes)]
    if is_sparse(x):  # never densified: the non-zero columns of the first rows only
        total_rows = int(x.shape[0]) if total_rows is None else total_rows
        x, names, sparse_dropped = _sparse_head(x, names, max_bytes, max_features)
    # Bound the work before converting: never more rows than could fit.
    row_cap = max(1, max_bytes // 4)
    rows, carried, total = _rows_of(x, row_cap, max_bytes, max_features)
    if total_rows is not None:
        total = max(total, total_rows)
    width = (
        rows.shape[1] if isinstance(rows, np.ndarray) else max((len(r) for r in rows), default=0)
    )
    if names is None or len(names) != width:
        # Only the kept names: a million-wide row must not build (and cache) a million names.
        names = (
            carried
            if carried is not None and len(carried) == width
            else default_names(min(width, max_features))
        )
    dropped = max(0, width - max_features)
    kept = min(width, max_features)
    names = names[:kept]
    budget = max_bytes - sum(map(len, names)) - 4 * len(names)
    truncated = dropped > 0 or sparse_dropped > 0
    dropped += sparse_dropped
    if budget <= 0:
        # Names alone overflow the cap: keep as many features as fit.
        fit = 0
        room = max_bytes
        for n in names:
            room -= len(n) + 12
            if room < 0:
                break
            fit += 1
        dropped += kept - fit
        kept = fit
        names = names[:kept]
        budget = max(0, room)
        truncated = True
    n_rows = len(rows)
    single = total == 1 and n_rows == 1
    if isinstance(rows, np.ndarray) and rows.dtype.kind in "biuf":
        per_row = max(1, _NUMBER_BYTES * kept + _ROW_OUTPUT_BYTES)
        fit_rows = min(n_rows, max(0, budget // per_row)) if not single else 1
        if fit_rows < total:
            truncated = True
        block = rows[:fit_rows, :kept]
        if block.dtype.kind == "u" and block.dtype.itemsize == 8:
            block = block.astype(np.float64)
        if single:
            return dict(zip(names, block[0].tolist())), truncated, dropped
        return dict(zip(names, block.T.tolist())), truncated, dropped
    # Generic path: values of any type, cleaned one by one until the budget is spent.
    columns: list[list[Any]] = [[] for _ in range(kept)]
    spent = 0
    used_rows = 0
    for row in rows:
        raw = [row[i] if i < len(row) else None for i in range(kept)]
        if nested is not None:
            raw = [nested(v) if isinstance(v, _CONTAINERS) else v for v in raw]
        cells = [clean_value(v) for v in raw]
        if not truncated and any(
            c is not v and isinstance(c, str) and len(c) == MAX_STRING and c[-1] == "…"
            for c, v in zip(cells, raw)
        ):
            truncated = True  # a long string (or repr) was cut to MAX_STRING
        cost = sum(_value_bytes(c) for c in cells) + _ROW_OUTPUT_BYTES
        if spent + cost > budget and used_rows > 0:
            break
        if spent + cost > budget:
            if any(isinstance(c, str) and len(c) > 16 for c in cells):
                truncated = True
            cells = [c if not isinstance(c, str) else c[:16] for c in cells]
        spent += cost
        used_rows += 1
        for i, cell in enumerate(cells):
            columns[i].append(cell)
    if used_rows < total:
        truncated = True
    if single:
        return {n: col[0] if col else None for n, col in zip(names, columns)}, truncated, dropped
    return dict(zip(names, columns)), truncated, dropped


# --- outputs that carry classes and their scores ----------------------------------------

_SCALARS = (str, bytes, bool, int, float, np.generic)


def _is_label_score(item: Any) -> bool:
    """``{"label": ..., "score": ...}`` (a Hugging Face classification result)."""
    return isinstance(item, Mapping) and "label" in item and "score" in item


def _is_ranked_labels(item: Any) -> bool:
    """``{"labels": [...], "scores": [...]}`` (a zero-shot classification result)."""
    return isinstance(item, Mapping) and "labels" in item and "scores" in item


def _row_label_score(row: Any) -> tuple[Any, float]:
    """The winning (label, score) of one row of a classes-and-scores output."""
    if _is_label_score(row):
        return row["label"], float(row["score"])
    candidates: list[tuple[Any, Any]] = []
    if _is_ranked_labels(row):
        candidates = list(zip(row["labels"], row["scores"]))
    elif isinstance(row, (list, tuple)):  # every class of the row (top_k=None)
        candidates = [(c["label"], c["score"]) for c in row if _is_label_score(c)]
    if not candidates:
        return None, float("nan")
    label, score = max(candidates, key=lambda pair: float(pair[1]))
    return label, float(score)


def _first_dim(x: Any) -> int | None:
    shape = getattr(x, "shape", None)
    if isinstance(shape, tuple):
        return int(shape[0]) if shape and isinstance(shape[0], int) else None
    return len(x) if isinstance(x, (list, tuple)) else None


def _is_labels_scores_pair(y: Any) -> bool:
    """A ``(labels, scores)`` tuple: labels one per row (not floats), then a float score
    per row or a probability row per row, with as many rows. A pair of float rows (a
    two-row probability matrix written as a tuple) is not one."""
    if type(y) is not tuple or len(y) != 2:
        return False
    labels, scores = y
    rows = _first_dim(labels)
    if not rows or _first_dim(scores) != rows:
        return False
    if isinstance(labels, (list, tuple)):
        first_label = labels[0]
        if not isinstance(first_label, _SCALARS) or isinstance(first_label, (float, np.floating)):
            return False
    elif len(getattr(labels, "shape", ())) != 1 or getattr(labels.dtype, "kind", "f") in "fc":
        return False
    if isinstance(scores, (list, tuple)):
        first_score = scores[0]
        if isinstance(first_score, (list, tuple)):
            first_score = first_score[0] if first_score else None
        return isinstance(first_score, (float, np.floating))
    return getattr(getattr(scores, "dtype", None), "kind", "") == "f" and len(scores.shape) <= 2


def output_rows(y: Any) -> int:
    """Rows of a model output (0 when it has no length mlotel can read); a
    ``(labels, scores)`` pair has one row per label.

    >>> output_rows(np.zeros((3, 2))), output_rows((["a", "b"], [0.9, 0.6])), output_rows(7)
    (3, 2, 0)
    """
    shape = getattr(y, "shape", None)
    if isinstance(shape, tuple) and shape and isinstance(shape[0], int):
        return shape[0]
    if isinstance(y, (list, tuple)):
        if len(y) == 2 and _is_labels_scores_pair(y):
            return _first_dim(y[0]) or 0
        return len(y)
    return 0


def classes_and_scores(y: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``(labels, scores)`` of an output that carries classes with their scores, or None.

    Read as one predicted class per row with its score:

    * ``[{"label": ..., "score": ...}, ...]``: one dict per row (Hugging Face
      text-classification pipelines; a single dict is one row);
    * ``[[{"label": ..., "score": ...}, ...], ...]``: every class of each row
      (``top_k=None``): the highest-scored one wins;
    * ``{"labels": [...], "scores": [...]}`` (or a list of them): zero-shot results;
    * ``(labels, scores)``: a tuple of one label per row and one float score (1-D) or
      one probability row (2-D) per row.

    ``scores`` is 1-D (the winning class's score per row; NaN where a row had none)
    or, for a pair with probability rows, the 2-D matrix; None when the scores are
    not numbers. Nothing else is converted: ``classes_and_scores(np.zeros(3))`` is None.

    >>> labels, scores = classes_and_scores([{"label": "POSITIVE", "score": 0.98},
    ...                                      {"label": "NEGATIVE", "score": 0.71}])
    >>> labels.tolist(), scores.tolist()
    (['POSITIVE', 'NEGATIVE'], [0.98, 0.71])
    >>> labels, scores = classes_and_scores((np.array([1, 0]), np.array([[0.2, 0.8], [0.9, 0.1]])))
    >>> labels.tolist(), scores.shape
    ([1, 0], (2, 2))
    """
    if isinstance(y, Mapping):
        if not (_is_label_score(y) or _is_ranked_labels(y)):
            return None
        y = [y]
    if type(y) is tuple and _is_labels_scores_pair(y):
        labels_in, scores_in = y
        labels = torch_to_numpy(labels_in) if is_torch(labels_in) else np.asarray(labels_in)
        try:
            raw = torch_to_numpy(scores_in) if is_torch(scores_in) else scores_in
            matrix: np.ndarray | None = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):  # ragged or not numbers
            matrix = None
        if matrix is not None and matrix.ndim == 2 and matrix.shape[1] == 1:
            matrix = matrix.reshape(-1)
        return labels.reshape(-1), matrix
    if not isinstance(y, (list, tuple)) or not y:
        return None
    first = y[0]
    if not (
        _is_label_score(first)
        or _is_ranked_labels(first)
        or (isinstance(first, (list, tuple)) and bool(first) and _is_label_score(first[0]))
    ):
        return None
    found: list[Any] = []
    scores_out = np.empty(len(y), dtype=np.float64)
    for i, row in enumerate(y):
        try:
            label, score = _row_label_score(row)
        except (TypeError, ValueError, KeyError):  # a score that is not a number
            label, score = None, float("nan")
        found.append(label)
        scores_out[i] = score
    labels_out = np.asarray(found) if None not in found else np.asarray(found, dtype=object)
    if labels_out.ndim != 1:  # labels that are sequences themselves
        labels_out = np.empty(len(found), dtype=object)
        labels_out[:] = [clean_value(v) for v in found]
    return labels_out, scores_out


def output_array(y: Any, max_rows: int | None = None) -> np.ndarray | None:
    """A private numpy copy of a model output (so later mutation cannot change telemetry).

    ``max_rows`` keeps only the first rows (for outputs that only a log record shows).
    """
    if y is None:
        return None
    if max_rows is not None and hasattr(y, "shape") and len(getattr(y, "shape", ())) >= 1:
        y = y[:max_rows]
    if isinstance(y, np.ndarray):
        return np.array(y, copy=True)
    if is_torch(y):
        return np.array(torch_to_numpy(y), copy=True)
    if _module(y) == "pandas" and hasattr(y, "to_numpy"):
        converted: np.ndarray = np.asarray(y.to_numpy()).copy()
        return converted
    if isinstance(y, (list, tuple)):
        try:
            return np.asarray(y)
        except ValueError:  # ragged
            arr = np.empty(len(y), dtype=object)
            arr[:] = [clean_value(v) for v in y]
            return arr
    if isinstance(y, (bool, int, float, str, np.generic)):
        return np.asarray([y])
    if type(y) is DeferredArray:
        return np.array(y.resolved(), copy=True)
    return None


def reduce_rows(matrix: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """``ufunc.reduce(matrix, axis=1)`` (e.g. ``np.add``, ``np.maximum``) for a 2-D matrix.

    numpy reduces along a short last axis slowly (~16 µs for 1024x2 here); for the narrow
    matrices classifiers return, a few column-wise ufunc calls give the same values.

    >>> reduce_rows(np.array([[0.2, 0.8], [0.6, 0.4]]), np.maximum).tolist()
    [0.8, 0.6]
    """
    if matrix.shape[1] <= 32:
        reduced: np.ndarray = functools.reduce(
            ufunc, [matrix[:, i] for i in range(matrix.shape[1])]
        )
        return reduced
    along: np.ndarray = ufunc.reduce(matrix, axis=1)
    return along


_PROBA_OPERATIONS = ("predict_proba",)


def interpret_output(
    arr: np.ndarray,
    operation: str,
    output_kind: str,
    class_labels: Sequence[Any] | None,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``(labels, max_scores, values)`` for a stacked output block.

    ``output_kind`` is ``auto``, ``labels``, ``probabilities``, ``regression`` or ``none``.
    ``auto`` reads ``predict_proba``/``predict_log_proba`` outputs as probabilities,
    a 2-D float matrix whose rows sum to 1 as probabilities, integer/string/bool
    1-D outputs as labels and float 1-D outputs as regression values.
    """
    kind = output_kind
    if kind == "none" or arr.size == 0:
        return None, None, None
    if operation == "predict_log_proba" and kind in ("auto", "probabilities"):
        arr = np.exp(arr.astype(np.float64))
        kind = "probabilities"
    if kind == "auto":
        if operation in semconv.NON_PREDICTION_OPERATIONS:
            return None, None, None
        if operation in _PROBA_OPERATIONS:
            kind = "probabilities"
        elif arr.ndim == 2 and arr.shape[1] >= 2 and arr.dtype.kind == "f":
            # min/max and one abs-max instead of np.allclose: same answer (NaN fails both),
            # a fraction of the cost on the (rows, classes) matrices models return.
            inside = bool(arr.min() >= 0.0) and bool(arr.max() <= 1.0)
            sums_ok = inside and bool(np.abs(reduce_rows(arr, np.add) - 1.0).max() <= 1e-3)
            kind = "probabilities" if sums_ok else "none"
        elif arr.dtype.kind == "f":
            kind = "regression"
        else:
            kind = "labels"
        if kind == "none":
            return None, None, None
    if kind == "probabilities":
        matrix = arr.astype(np.float64, copy=False)
        if matrix.ndim == 1:  # a single row of class probabilities
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2:
            return None, None, None
        if matrix.shape[1] == 1:  # P(positive) only
            matrix = np.hstack([1.0 - matrix, matrix])
        winner = np.argmax(matrix, axis=1)
        scores = reduce_rows(matrix, np.maximum)
        if class_labels is not None and len(class_labels) == matrix.shape[1]:
            labels = np.asarray(class_labels)[winner]
        else:
            labels = winner
        return labels, scores, None
    flat = arr.reshape(len(arr), -1)[:, 0] if arr.ndim > 1 else arr
    if kind == "regression":
        return None, None, flat.astype(np.float64, copy=False)
    return flat, None, None
