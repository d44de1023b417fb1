"""A data frame written as a folder of Parquet parts, as an engine's job would leave it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["write_parts"]


def write_parts(frame: pd.DataFrame, folder: Path, parts: int, row_group_size: int) -> Path:
    """``frame`` split into ``parts`` files ``folder/part-I.parquet`` of row groups of
    ``row_group_size`` rows (the index is not written); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
        table = pa.Table.from_pandas(frame.iloc[rows], preserve_index=False)
        pq.write_table(table, folder / f"part-{i}.parquet", row_group_size=row_group_size)
    return folder
