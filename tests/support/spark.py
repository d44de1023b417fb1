"""A local Spark session for tests and doc examples: ``local[2]``, UI off, two shuffle
partitions, the driver on loopback only, Python workers on this interpreter.

pyspark is imported when a session is built, not when this module is imported."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["local_spark_session"]


def local_spark_session(app_name: str, extra_config: Mapping[str, str] | None = None) -> Any:
    """A new (or the running) local SparkSession named ``app_name``, with ``extra_config``
    set on top of the shared settings; its log level is ERROR."""
    from pyspark.sql import SparkSession

    # Python workers run this interpreter (the one with mlotel, numpy and pyarrow).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    builder = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
    )
    for key, value in (extra_config or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
