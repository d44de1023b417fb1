"""Text descriptors: numbers that describe documents, monitored like numeric features.

A text model's input is not a feature vector, so drift and data quality are watched
on descriptors of each document instead: its length in characters and in words, its
length in tokens and the share of unknown tokens when a tokenizer is known, and
whether it is empty. A reference profile of those descriptors
(:func:`text_profile`) makes ``instrument(model, reference=...)`` work on text models:
the streaming monitor turns the documents a model receives into the same
descriptors at flush time.

>>> from mlotel.drift import text_descriptors
>>> described = text_descriptors(["a good film", "", "bad"])
>>> described["text.length.chars"].tolist(), described["text.empty"].tolist()
([11.0, 0.0, 3.0], [0.0, 1.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ._profile import Profile

__all__ = [
    "TEXT_CHARS",
    "TEXT_DESCRIPTORS",
    "TEXT_EMPTY",
    "TEXT_TOKENS",
    "TEXT_UNKNOWN_SHARE",
    "TEXT_WORDS",
    "TextDescriptors",
    "describes_text",
    "documents_of",
    "text_descriptors",
    "text_profile",
]

TEXT_CHARS = "text.length.chars"
"""Characters in the document."""
TEXT_WORDS = "text.length.words"
"""Whitespace-separated words in the document."""
TEXT_TOKENS = "text.length.tokens"
"""Tokens the model's tokenizer makes of the document (special tokens not counted)."""
TEXT_UNKNOWN_SHARE = "text.unknown_share"
"""Share of those tokens that are the tokenizer's unknown token (0 for an empty text)."""
TEXT_EMPTY = "text.empty"
"""1.0 for an empty (or whitespace-only) document, else 0.0."""
TEXT_DESCRIPTORS = (TEXT_CHARS, TEXT_WORDS, TEXT_TOKENS, TEXT_UNKNOWN_SHARE, TEXT_EMPTY)
"""Every descriptor name, as it appears in ``ml.feature.name``."""

Tokenizer = Any
"""A Hugging Face tokenizer (called on a list of texts, gives ``input_ids``; its
``unk_token_id`` marks unknown tokens) or any callable from one text to its tokens."""


def documents_of(x: Any) -> list[str] | None:
    """The documents of a model input: a string, or a list/tuple/1-D array/Series of
    strings; None for any other input.

    >>> documents_of("hi"), documents_of(["a", "b"]), documents_of([[1.0, 2.0]])
    (['hi'], ['a', 'b'], None)
    """
    if isinstance(x, str):
        return [x]
    if isinstance(x, np.ndarray):
        if x.ndim != 1 or x.dtype.kind not in "UO":
            return None
        values = x.tolist()
    elif type(x).__module__.partition(".")[0] == "pandas" and not hasattr(x, "columns"):
        values = list(getattr(x, "array", []))  # a Series
    elif isinstance(x, (list, tuple)):
        values = list(x)
    else:
        return None
    if not values or not all(isinstance(v, str) for v in values):
        return None
    return [str(v) for v in values]


def _token_ids(tokenizer: Tokenizer, texts: Sequence[str]) -> tuple[list[Sequence[Any]], Any]:
    """Token ids (or tokens) of each text, and the unknown token's id (None: not known)."""
    if hasattr(tokenizer, "unk_token_id") and hasattr(tokenizer, "convert_tokens_to_ids"):
        encoded = tokenizer(list(texts), add_special_tokens=False)
        return list(encoded["input_ids"]), tokenizer.unk_token_id
    return [list(tokenizer(t)) for t in texts], None


def text_descriptors(
    texts: Sequence[str], tokenizer: Tokenizer | None = None
) -> dict[str, np.ndarray]:
    """Descriptor columns of ``texts`` (float64, one value per document).

    Without a tokenizer: characters, words and emptiness; with one, also tokens and
    (for a tokenizer with an unknown token) the share of unknown tokens.

    >>> text_descriptors(["one two"], tokenizer=str.split)["text.length.tokens"].tolist()
    [2.0]
    """
    chars = np.fromiter((len(t) for t in texts), dtype=np.float64, count=len(texts))
    words = [t.split() for t in texts]
    columns = {
        TEXT_CHARS: chars,
        TEXT_WORDS: np.fromiter((len(w) for w in words), dtype=np.float64, count=len(texts)),
        TEXT_EMPTY: np.fromiter((0.0 if w else 1.0 for w in words), np.float64, len(texts)),
    }
    if tokenizer is not None:
        ids, unknown = _token_ids(tokenizer, texts)
        columns[TEXT_TOKENS] = np.fromiter((len(i) for i in ids), np.float64, len(ids))
        if unknown is not None:
            columns[TEXT_UNKNOWN_SHARE] = np.fromiter(
                (sum(1 for t in i if t == unknown) / len(i) if len(i) else 0.0 for i in ids),
                np.float64,
                len(ids),
            )
    return columns


class TextDescriptors(Mapping[str, np.ndarray]):
    """The descriptors of some documents, computed when first read.

    Integrations hand this to the call path as the call's input: nothing is computed
    on the caller's thread; the flush (payload log record, drift monitor) reads it as
    a dict of columns. ``extra`` columns (e.g. token counts an integration already
    has) are added as given.

    >>> lazy = TextDescriptors(["hello world"])
    >>> sorted(lazy), lazy["text.length.words"].tolist()
    (['text.empty', 'text.length.chars', 'text.length.words'], [2.0])
    """

    __slots__ = ("_columns", "_extra", "_texts", "_tokenizer")

    def __init__(
        self,
        texts: Sequence[str] | None,
        tokenizer: Tokenizer | None = None,
        extra: Mapping[str, Callable[[], np.ndarray]] | None = None,
    ) -> None:
        self._texts = texts
        self._tokenizer = tokenizer
        self._extra = extra
        self._columns: dict[str, np.ndarray] | None = None

    def _computed(self) -> dict[str, np.ndarray]:
        columns = self._columns
        if columns is None:
            texts, self._texts = self._texts, None
            columns = text_descriptors(texts, self._tokenizer) if texts is not None else {}
            for name, read in (self._extra or {}).items():
                columns[name] = np.asarray(read())
            self._columns = columns
            self._tokenizer = self._extra = None
        return columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self._computed()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._computed())

    def __len__(self) -> int:
        return len(self._computed())


def describes_text(profile: Profile) -> bool:
    """Whether a profile's features are text descriptors (then documents are described)."""
    names = profile.feature_names
    return bool(names) and all(n in TEXT_DESCRIPTORS for n in names)


def text_profile(
    texts: Sequence[str], tokenizer: Tokenizer | None = None, **options: Any
) -> Profile:
    """A reference profile of the descriptors of ``texts`` (``options`` go to
    :meth:`Profile.from_data`, e.g. ``bins``, ``prediction``).

    Build it with the tokenizer the model uses in production: the transformers
    integration describes pipeline inputs with the pipeline's tokenizer. Without a
    tokenizer the profile holds characters, words and emptiness only, which is what
    the monitor can compute for any text model.

    >>> profile = text_profile(["a short text", "another one", ""] * 50)
    >>> profile.feature_names
    ['text.length.chars', 'text.length.words', 'text.empty']
    """
    columns = text_descriptors(list(texts), tokenizer)
    # Emptiness is a yes/no column: categorical (quantile bins of a mostly-0 column
    # collapse into one bin and would hide a change in the share of empty inputs).
    numeric = [name for name in columns if name != TEXT_EMPTY]
    return Profile.from_data(columns, numeric=numeric, categorical=[TEXT_EMPTY], **options)
