"""Drift reports beyond memory: ``mlotel report`` on generated Parquet datasets.

``python benchmarks/scale.py`` generates (once; reused while the parameters match) under
``--dir`` (default: the system temp directory, never the repository):

* *tall*: reference and current, ``--rows`` rows each (default 3,000,000) x 34 columns
  (26 numeric, 8 categorical; some drift), in files of 1,000,000 rows, row groups of
  131,072 rows;
* *wide*: reference and current, ``--wide-rows`` rows each (default 1,500,000: 3M rows in
  all) x ``--wide-columns`` float32 columns (default 1,000; 300 of them shifted), row
  groups of 16,384 rows (Parquet readers decode a whole row group of the columns read).

Then it prints, each in one run: the wall time, rows/s and peak RSS of the ``mlotel report``
command (a subprocess, JSON output) on the tall and wide datasets; Evidently 0.7
``DataDriftPreset`` (the peers venv ``.venv-peers``, a subprocess) on the largest slice of
the tall dataset it completes within ``--evidently-timeout`` seconds, next to ``mlotel
report`` on the same slice, with the ratio; ``mlotel.drift.spark.report`` on the first file
of each tall side with Spark ``local[1]`` and ``local[2]`` (time ratio), and its largest
score difference from the CLI's report of the same files. Targets on a 2-core machine:
6M rows x 34 columns with peak RSS <= 1 GiB; 3M rows x 1,000 columns in under 10 minutes;
the Spark report equal to the CLI's.

Timings are single runs (each is seconds to minutes long); quote the machine's state with
them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEERS_PYTHON = Path(os.environ.get("MLOTEL_PEERS_PYTHON", ROOT / ".venv-peers" / "bin" / "python"))
"""Evidently's interpreter: ``.venv-peers`` (``bash benchmarks/peers/setup.sh``), or the one
``MLOTEL_PEERS_PYTHON`` names."""
EVIDENTLY = ROOT / "benchmarks" / "peers" / "evidently_files.py"
FILE_ROWS = 1_000_000
ROW_GROUP = 131_072
GIB = 1024**3


def tall_block(rows: int, shifted: bool, seed: int) -> Any:
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    s = 1.0 if shifted else 0.0
    columns: dict[str, Any] = {}
    for i in range(20):
        if i % 4 == 0:
            columns[f"n{i:02d}"] = rng.lognormal(0.0, 0.4 + 0.05 * i, rows) * (
                1.25 if shifted and i < 8 else 1.0
            )
        else:
            loc = 0.3 if shifted and i < 6 else 0.0
            columns[f"n{i:02d}"] = rng.normal(loc + i, 1.0, rows)
    for i in range(20, 24):
        columns[f"n{i:02d}"] = rng.integers(0, 1_000, rows).astype(np.float64)
    columns["few"] = rng.choice([0.0, 1.0, 2.0], rows, p=[0.5, 0.3, 0.2])
    columns["count"] = rng.poisson(20 + 2 * s, rows)
    missing = rng.random(rows) < 0.01
    columns["n01"] = np.where(missing, np.nan, columns["n01"])
    colours = np.array(["red", "green", "blue", "black", "white"])
    shares = [0.2, 0.25, 0.2, 0.15, 0.2] if shifted else [0.3, 0.25, 0.2, 0.15, 0.1]
    columns["colour"] = colours[rng.choice(5, rows, p=shares)]
    columns["flag"] = np.array(["yes", "no"])[(rng.random(rows) < 0.4).astype(int)]
    cities = np.array([f"city{i}" for i in range(40)] + ["newtown"])
    columns["city"] = cities[rng.integers(0, 41 if shifted else 40, rows)]
    columns["plan"] = np.array(["basic", "plus", "pro"])[rng.integers(0, 3, rows)]
    columns["device"] = np.array(["ios", "android", "web"])[rng.integers(0, 3, rows)]
    columns["active"] = rng.random(rows) < 0.7
    columns["tier"] = rng.integers(0, 5, rows)  # integers with few values: categorical
    columns["region"] = np.array([f"r{i}" for i in range(12)])[rng.integers(0, 12, rows)]
    return pa.table(columns)


def wide_block(rows: int, columns: int, shifted: bool, seed: int) -> Any:
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    data = rng.standard_normal((columns, rows), dtype=np.float32)
    if shifted:
        data[:300] += 0.3
    data *= (1 + np.arange(columns, dtype=np.float32) % 5)[:, None]
    return pa.table({f"c{i:04d}": data[i] for i in range(columns)})


def generate(folder: Path, rows: int, make: Any, label: str, row_group: int = ROW_GROUP) -> None:
    marker = folder / "_done.json"
    wanted = {"rows": rows, "label": label}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return
    shutil.rmtree(folder, ignore_errors=True)
    import pyarrow.parquet as pq

    started = time.perf_counter()
    for side, shifted in (("reference", False), ("current", True)):
        (folder / side).mkdir(parents=True)
        for index, first in enumerate(range(0, rows, FILE_ROWS)):
            count = min(FILE_ROWS, rows - first)
            path = folder / side / f"part-{index:04d}.parquet"
            with pq.ParquetWriter(path, make(1, shifted, 0).schema) as writer:
                for start in range(0, count, row_group):
                    size = min(row_group, count - start)
                    seed = (index * 7919 + start // row_group) * 2 + shifted
                    writer.write_table(make(size, shifted, seed), row_group_size=row_group)
    marker.write_text(json.dumps(wanted))
    print(f"generated {label} in {time.perf_counter() - started:.0f} s under {folder}")


def measured(command: list[str], timeout: float | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in bytes, exit code) of a subprocess."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = None if timeout is None else started + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            return time.perf_counter() - started, usage.ru_maxrss * 1024.0, -9
        time.sleep(0.05)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and proc.stderr is not None:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:])
    return wall, usage.ru_maxrss * 1024.0, code


def mlotel_report(reference: list[str], current: list[str], out: Path) -> tuple[float, float]:
    wall, rss, code = measured(
        [sys.executable, "-m", "mlotel.cli", "report", "--reference", *reference,
         "--current", *current, "--json", str(out)]
    )
    if code != 0:
        raise SystemExit(f"mlotel report failed (exit {code})")
    return wall, rss


def line(label: str, rows: int, columns: int, wall: float, rss: float) -> None:
    print(f"{label:<44} {rows:>10,} rows x {columns:>5} cols  {wall:8.1f} s  "
          f"{rows / wall:>12,.0f} rows/s  peak RSS {rss / 2**20:8.0f} MiB")


def slice_files(ref: list[str], cur: list[str], rows: int, out: Path) -> tuple[list[str],
                                                                               list[str]]:
    """The first ``rows`` rows of each side's first file, as files of their own."""
    import pyarrow.parquet as pq

    paths = []
    for side, files in (("reference", ref), ("current", cur)):
        target = out / f"slice-{side}.parquet"
        pq.write_table(pq.read_table(files[0]).slice(0, rows), target, row_group_size=ROW_GROUP)
        paths.append([str(target)])
    return paths[0], paths[1]


def scores_of(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return {name: c for name, c in data["columns"].items()}


def spark_worker(master: str, reference: str, current: str, out: str) -> None:
    """Runs in a subprocess: one Spark report, its wall time and JSON."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from mlotel.drift import spark as drift_spark

    session = (
        SparkSession.builder.master(master)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "2g")
        # Splits of ~4 row groups and big Arrow batches: every core gets partitions, and
        # each partition summarizes few, large batches.
        .config("spark.sql.files.maxPartitionBytes", str(32 * 2**20))
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(ROW_GROUP))
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    ref, cur = session.read.parquet(reference), session.read.parquet(current)
    started = time.perf_counter()
    result = drift_spark.report(ref, cur)
    seconds = time.perf_counter() - started
    Path(out).write_text(json.dumps({"seconds": seconds, "report": result.to_dict()}))
    session.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "mlotel-scale"))
    parser.add_argument("--rows", type=int, default=3_000_000, help="tall rows per side")
    parser.add_argument("--wide-rows", type=int, default=1_500_000, help="wide rows per side")
    parser.add_argument("--wide-columns", type=int, default=1_000)
    parser.add_argument("--evidently-rows", default="300000,1000000,3000000",
                        help="tall rows per side to try Evidently on, in order")
    parser.add_argument("--evidently-timeout", type=float, default=600.0)
    parser.add_argument("--skip", default="", help="comma list: tall, wide, evidently, spark")
    parser.add_argument("--spark-worker", nargs=4, metavar=("MASTER", "REF", "CUR", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.spark_worker:
        spark_worker(*args.spark_worker)
        return
    skip = set(filter(None, args.skip.split(",")))
    base = Path(args.dir)
    out = Path(tempfile.mkdtemp(prefix="mlotel-scale-out-"))
    tall, wide = base / "tall", base / "wide"
    print(f"machine: {os.cpu_count()} CPUs; data under {base}")
    if not skip >= {"tall", "evidently", "spark"}:
        generate(tall, args.rows, tall_block, "tall")
    if "wide" not in skip:
        # Parquet decodes whole row groups: 16,384 rows x 1,000 float32 columns is 64 MiB.
        generate(wide, args.wide_rows,
                 lambda n, s, seed: wide_block(n, args.wide_columns, s, seed), "wide",
                 row_group=16_384)

    if "tall" in skip:
        pass
    else:
        wall, rss = mlotel_report([str(tall / "reference")], [str(tall / "current")],
                                  out / "tall.json")
        line("mlotel report, tall (streamed)", 2 * args.rows, 34, wall, rss)
        verdict = "met" if rss <= GIB else "NOT met"
        print(f"  target peak RSS <= 1 GiB at {2 * args.rows:,} rows x 34: {verdict}")
    if "wide" not in skip:
        wall, rss = mlotel_report([str(wide / "reference")], [str(wide / "current")],
                                  out / "wide.json")
        line("mlotel report, wide (streamed)", 2 * args.wide_rows, args.wide_columns, wall, rss)
        verdict = "met" if wall < 600 else "NOT met"
        print(f"  target < 10 min at {2 * args.wide_rows:,} rows x {args.wide_columns}: {verdict}")
        drifted = json.loads((out / "wide.json").read_text())["number_of_drifted_columns"]
        print(f"  drifted columns: {drifted} ({min(300, args.wide_columns)} shifted)")

    if "evidently" not in skip:
        if not PEERS_PYTHON.exists():
            print("Evidently: .venv-peers missing (bash benchmarks/peers/setup.sh); skipped")
        else:
            best = None
            for rows in [int(r) for r in args.evidently_rows.split(",")]:
                if rows > args.rows:
                    break
                files = min(-(-rows // FILE_ROWS), -(-args.rows // FILE_ROWS))
                ref = [str(tall / "reference" / f"part-{i:04d}.parquet") for i in range(files)]
                cur = [str(tall / "current" / f"part-{i:04d}.parquet") for i in range(files)]
                result = out / f"evidently-{rows}.json"
                wall, rss, code = measured(
                    [str(PEERS_PYTHON), str(EVIDENTLY), str(result), "--rows", str(rows),
                     "--reference", *ref, "--current", *cur],
                    timeout=args.evidently_timeout,
                )
                if code != 0:
                    print(f"Evidently at {rows:,} rows per side: did not complete "
                          f"(exit {code}, {wall:.0f} s, peak RSS {rss / 2**20:.0f} MiB)")
                    break
                best = (rows, ref, cur, wall, rss, json.loads(result.read_text()))
                line(f"Evidently 0.7 DataDriftPreset ({rows:,}/side)", 2 * rows, 34, wall, rss)
            if best is not None:
                rows, ref, cur, wall, rss, data = best
                if rows % FILE_ROWS and rows < FILE_ROWS:  # the same rows for mlotel
                    ref, cur = slice_files(ref, cur, rows, out)
                ours_wall, ours_rss = mlotel_report(ref, cur, out / "slice.json")
                line(f"mlotel report, same slice ({rows:,}/side)", 2 * rows, 34, ours_wall,
                     ours_rss)
                print(f"  Evidently / mlotel: time {wall / ours_wall:.1f}x "
                      f"(report alone: {data['report_seconds']:.1f} s vs {ours_wall:.1f} s "
                      f"whole command), peak RSS {rss / ours_rss:.1f}x")
                ours = scores_of(out / "slice.json")
                diffs = [abs(ours[n]["score"] - s["score"]) for n, s in data["scores"].items()
                         if n in ours and ours[n]["score"] is not None]
                print(f"  largest |score difference| vs Evidently over {len(diffs)} columns: "
                      f"{max(diffs):.2e}")

    if "spark" not in skip:
        try:
            import pyspark  # noqa: F401
        except ImportError:
            print("Spark: pyspark not installed (pip install 'mlotel[spark]'); skipped")
            return
        ref = str(tall / "reference" / "part-0000.parquet")
        cur = str(tall / "current" / "part-0000.parquet")
        rows = 2 * min(FILE_ROWS, args.rows)
        cli_wall, cli_rss = mlotel_report([ref], [cur], out / "spark-cli.json")
        line("mlotel report, first file of each side", rows, 34, cli_wall, cli_rss)
        cli = scores_of(out / "spark-cli.json")
        seconds = {}
        for master in ("local[1]", "local[2]"):
            target = out / f"spark-{master[6]}.json"
            wall, rss, code = measured([sys.executable, __file__, "--spark-worker", master, ref,
                                        cur, str(target)])
            if code != 0:
                raise SystemExit(f"Spark {master} failed (exit {code})")
            data = json.loads(target.read_text())
            seconds[master] = data["seconds"]
            line(f"mlotel.drift.spark.report {master} (driver RSS)", rows, 34, data["seconds"],
                 rss)
            theirs = data["report"]["columns"]
            diffs = [abs(theirs[n]["score"] - c["score"]) for n, c in cli.items()
                     if c["score"] is not None]
            same = all(theirs[n]["drift_detected"] == c["drift_detected"]
                       and theirs[n]["status"] == c["status"] for n, c in cli.items())
            print(f"  vs the CLI's report: largest |score difference| {max(diffs):.1e}, "
                  f"same statuses and verdicts: {same}")
        print(f"  Spark local[1] / local[2] time: "
              f"{seconds['local[1]'] / seconds['local[2]']:.2f}x")
    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
