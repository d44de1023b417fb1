"""`mlotel profile`: CSV and Parquet in, a reference profile out; clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlotel.cli import main
from mlotel.drift import Profile
from mlotel.drift._datasets import read_csv_plain


@pytest.fixture
def train(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(100, 20, 400),
            "country": rng.choice(["fr", "de", "it"], 400),
            "tier": rng.integers(0, 50, 400),
            "label": rng.integers(0, 2, 400),
            "pred": rng.integers(0, 2, 400),
        }
    )
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    return frame, path


def test_profile_from_csv(
    train: tuple[pd.DataFrame, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame, path = train
    out = tmp_path / "reference.json"
    rc = main(
        [
            "profile",
            str(path),
            "-o",
            str(out),
            "--categorical",
            "tier",
            "--target",
            "label",
            "--prediction",
            "pred",
        ]
    )
    assert rc == 0
    assert f"profiled 400 rows x 5 columns (1 numeric, 4 categorical) -> {out}" in (
        capsys.readouterr().out
    )
    loaded = Profile.load(out)
    expected = Profile.from_data(frame, categorical=["tier"], target="label", prediction="pred")
    assert loaded.features == expected.features
    assert loaded["label"].role == "target" and loaded["pred"].role == "prediction"


def test_profile_from_parquet(train: tuple[pd.DataFrame, Path], tmp_path: Path) -> None:
    frame, _ = train
    path = tmp_path / "train.parquet"
    frame.to_parquet(path)
    out = tmp_path / "reference.json"
    assert main(["profile", str(path), "-o", str(out)]) == 0
    assert Profile.load(out).features == Profile.from_data(frame).features


def test_csv_without_pandas_reader_gives_the_same_profile(
    train: tuple[pd.DataFrame, Path],
) -> None:
    frame, path = train
    plain = Profile.from_data(read_csv_plain(path))
    assert plain.features == Profile.from_data(frame).features


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"a,b\n1,2\n3,4,5,6\n", "not a readable CSV file"),
        (b"\xff\xfe\x00garbage\x00\xff", "not UTF-8 text"),
    ],
)
def test_bad_files_give_a_clear_error_without_traceback(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "train.csv"
    if content is not None:
        path.write_bytes(content)
    proc = subprocess.run(
        [sys.executable, "-m", "mlotel.cli", "profile", str(path), "-o", str(tmp_path / "o.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"mlotel profile: {path}: {message}" in proc.stderr
    assert not (tmp_path / "o.json").exists()


def test_unknown_column_option(
    train: tuple[pd.DataFrame, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, path = train
    assert main(["profile", str(path), "-o", str(tmp_path / "o.json"), "--target", "nope"]) == 2
    assert "no column named 'nope'" in capsys.readouterr().err
