"""Every exception mlotel raises on purpose, in one module.

All are ``ValueError`` subclasses: each says which input or setting is wrong.

>>> import mlotel
>>> from mlotel.exceptions import ConfigError
>>> try:
...     mlotel.configure(payload_sample_rate=2)
... except ConfigError as error:
...     print(error)
payload_sample_rate=2 must be between 0.0 and 1.0
"""

from __future__ import annotations

__all__ = ["ConfigError", "DatasetError", "MappingError", "ProfileError"]


class ConfigError(ValueError):
    """A setting has a value mlotel cannot use; the message names the setting.

    >>> import mlotel
    >>> mlotel.configure(prometheus_port="nine")
    Traceback (most recent call last):
    ...
    mlotel.exceptions.ConfigError: prometheus_port='nine' is not an integer
    """


class ProfileError(ValueError):
    """A profile file that cannot be read (names the file and the problem).

    >>> from mlotel.drift import Profile
    >>> try:
    ...     Profile.from_json('{"format": "other"}', source="ref.json")
    ... except ProfileError as error:
    ...     print(error)
    ref.json: not an mlotel profile (no "format": "mlotel.profile")
    """


class DatasetError(ValueError):
    """A data file or dataset that cannot be read; the message names the file and the
    problem in one line.

    >>> from mlotel.drift import Profile
    >>> try:
    ...     Profile.from_data("no/such/data.parquet")
    ... except DatasetError as error:
    ...     print(error)
    no/such/data.parquet: no such file or directory
    """


class MappingError(ValueError):
    """A column mapping (``mlotel report --mapping FILE``, ``report(mapping=...)``) that
    cannot be used; the message names the file or key and the problem.

    >>> from mlotel.drift import ColumnMapping
    >>> try:
    ...     ColumnMapping(task="ranking")
    ... except MappingError as error:
    ...     print(error)
    task must be one of classification, regression, got 'ranking'
    """
