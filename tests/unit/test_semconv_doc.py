"""docs/semantic-conventions.md and mlotel.semconv must agree, name for name."""

from __future__ import annotations

import re
from pathlib import Path

from mlotel import semconv

DOC = Path(__file__).resolve().parents[2] / "docs" / "semantic-conventions.md"


def _metric_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1] in ("histogram", "counter", "gauge"):
            rows[cells[0].strip("`")] = cells
    return rows


def test_every_instrument_is_documented_with_kind_unit_and_prometheus_name() -> None:
    rows = _metric_rows()
    assert set(rows) == {i.name for i in semconv.INSTRUMENTS}
    for inst in semconv.INSTRUMENTS:
        _name, kind, unit, prom, _attrs, buckets = rows[inst.name]
        assert kind == inst.kind, inst.name
        assert unit.strip("`") == inst.unit, inst.name
        assert prom.strip("`") == inst.prometheus_name, inst.name
        if inst.buckets is not None and "powers of two" not in buckets:
            documented = tuple(float(b) for b in buckets.split(","))
            assert documented == inst.buckets, inst.name


def test_every_attribute_constant_is_documented() -> None:
    text = DOC.read_text()
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", text, flags=re.M))
    constants = {getattr(semconv, n) for n in semconv.__all__ if n.startswith("ATTR_")}
    assert constants <= documented, constants - documented
    assert f'`event_name = "{semconv.EVENT_PREDICTION}"`' in text


def test_batch_buckets_are_powers_of_two() -> None:
    assert semconv.BATCH_SIZE_BUCKETS[0] == 1.0
    assert all(
        b == 2 * a for a, b in zip(semconv.BATCH_SIZE_BUCKETS, semconv.BATCH_SIZE_BUCKETS[1:])
    )
