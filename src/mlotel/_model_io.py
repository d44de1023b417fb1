"""Understanding model inputs and outputs without importing the libraries they come from.

Inputs: Python scalars, lists, dicts, numpy arrays (1-D = one row, 2-D = rows),
pandas DataFrames/Series, torch tensors (recognised by type, never by importing
torch). Outputs: labels, regression values and ``predict_proba``-style score
matrices.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "MAX_STRING",
    "DeferredArray",
    "batch_size",
    "clean_value",
    "columnar_rows",
    "default_names",
    "features_payload",
    "input_snapshot",
    "interpret_output",
    "is_dataframe",
    "is_torch",
    "output_array",
    "reduce_rows",
    "row_fits",
    "torch_to_numpy",
]

MAX_STRING = 256
"""Longest string value kept in a payload; longer ones are cut and marked with '…'."""

_NAME_CACHE: dict[int, tuple[str, ...]] = {}


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
    if isinstance(value, bytes):
        return clean_value(value.decode("utf-8", "replace"))
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


def _rows_of(x: Any, max_rows: int) -> tuple[Any, tuple[str, ...] | None, int]:
    """(2-D numpy array or list of row sequences, names carried by x, total rows)."""
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
        head = x[:max_rows] if len(shape) >= 2 else x
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
            names = tuple(str(k) for k in first)
            keys = list(first)
            rows = [
                [row.get(k) if isinstance(row, Mapping) else None for k in keys]
                for row in x[:max_rows]
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
    sparse_shape = getattr(x, "shape", None)
    if (
        isinstance(sparse_shape, tuple) and len(sparse_shape) == 2 and hasattr(x, "toarray")
    ):  # scipy sparse
        return np.asarray(x[:max_rows].toarray()), None, int(sparse_shape[0])
    return [[x]], None, 1


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


def input_snapshot(x: Any, all_rows: bool, max_bytes: int) -> Any:
    """What telemetry reads of a model input, copied where that is cheap.

    A numpy array is copied as far as a payload of ``max_bytes`` can show it (its
    first rows), so a caller reusing its buffer cannot change the logged features.
    When an analyzer (drift) reads every row, and for other inputs, the object itself
    is kept: the analyzer reads it at flush time.

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
    width = max(1, x.size // x.shape[0])
    rows = max_bytes // (_NUMBER_BYTES * width + _ROW_OUTPUT_BYTES) + 1
    return x[:rows].copy()


def features_payload(
    x: Any,
    names: Sequence[str] | None,
    max_bytes: int,
    max_features: int,
    total_rows: int | None = None,
) -> tuple[dict[str, Any], bool, int]:
    """The feature map of one call, within ``max_bytes`` (approximate encoded size).

    One row gives ``{name: value}``; a batch gives ``{name: [values of the rows that
    fit]}``. Returns ``(payload, truncated, features_dropped_by_cap)``. ``total_rows``:
    the call's rows when ``x`` holds only the first of them (a snapshot).

    >>> features_payload(np.array([[1.0, 2.0]]), ("age", "income"), 8192, 100)
    ({'age': 1.0, 'income': 2.0}, False, 0)
    """
    if type(x) is np.ndarray and x.dtype.kind in "bif" and (x.ndim <= 1 or x.shape[0] == 1):
        # Fast path for the most common call: one numeric row that fits the cap.
        row = x.reshape(-1)
        width = len(row)
        if width <= max_features:
            if names is not None and type(names) is not tuple:
                names = tuple(names)
            if names is None or len(names) != width:
                names = default_names(width)
            if row_fits(names, width, max_bytes):
                return dict(zip(names, row.tolist())), False, 0
    # Bound the work before converting: never more rows than could fit.
    row_cap = max(1, max_bytes // 4)
    rows, carried, total = _rows_of(x, row_cap)
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
    truncated = dropped > 0
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
_NO_LABEL_OPERATIONS = ("transform", "score_samples", "decision_function", "embed")


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
        if operation in _NO_LABEL_OPERATIONS:
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
