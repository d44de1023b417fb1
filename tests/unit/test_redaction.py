"""Redaction holds for every shape of input and never leaks a redacted value into a log
record, a span or a metric attribute (issue 13, item 4)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd
import pytest

import mlotel
from mlotel._redaction import Redactor, normalise_name
from mlotel.testing import CapturedTelemetry, capture_telemetry, log_payload

REDACTED = "[REDACTED]"


def _everything(captured: CapturedTelemetry) -> str:
    """Every span, log record and metric point as text (what could leave the process)."""
    parts = [span.to_json() for span in captured.spans]
    for record in captured.logs:
        fields = {"attributes": dict(record.attributes or {}), "body": record.body}
        parts.append(json.dumps(fields, default=str))
    for metric in captured.metrics().values():
        parts.extend(str(dict(p.attributes or {})) for p in metric.data.data_points)
    return "\n".join(parts)


def _features(captured: CapturedTelemetry, model: str) -> Any:
    (record,) = [r for r in captured.logs if r.attributes["ml.model.name"] == model]
    return log_payload(record)["ml.features"]


INPUTS: dict[str, Any] = {
    "upper-case": {"SSN": "SECRET-1", "age": 31},
    "whitespace": {"ssn ": "SECRET-2", "age": 31},
    "nested": {"user": {"id": 7, "Ssn": "SECRET-3", "more": [{"ssn": "SECRET-4"}]}, "age": 31},
    "multiindex": pd.DataFrame(
        [["SECRET-5", 31]], columns=pd.MultiIndex.from_tuples([("pii", "ssn"), ("x", "age")])
    ),
    "later-row": [{"age": 30}, {"age": 31, "ssn": "SECRET-6"}],
    "columns": {"age": [30, 31], "S S N": ["SECRET-7", "SECRET-8"]},
}


def test_redacted_names_match_normalised_nested_levels_and_later_rows() -> None:
    with capture_telemetry(payload_redact=["ssn", "s s n"]) as captured:
        for name, x in INPUTS.items():
            assert mlotel.instrument(lambda x: [1], model_name=name)(x) == [1]
        assert _features(captured, "upper-case") == {"SSN": REDACTED, "age": 31}
        assert _features(captured, "whitespace") == {"ssn ": REDACTED, "age": 31}
        nested = _features(captured, "nested")
        assert nested["age"] == 31 and "'id': 7" in nested["user"]
        assert f"'Ssn': '{REDACTED}'" in nested["user"]
        assert f"[{{'ssn': '{REDACTED}'}}]" in nested["user"]
        assert _features(captured, "multiindex") == {"('pii', 'ssn')": REDACTED, "('x', 'age')": 31}
        # A key first seen in a later record is logged (redacted), not silently dropped.
        assert _features(captured, "later-row") == {"age": [30, 31], "ssn": REDACTED}
        assert _features(captured, "columns") == {"age": [30, 31], "S S N": REDACTED}
        assert "SECRET" not in _everything(captured)


def test_allow_list_is_normalised_and_a_denied_part_wins() -> None:
    frame = pd.DataFrame(
        [[31, "SECRET-9", 5]],
        columns=pd.MultiIndex.from_tuples([("x", "Age"), ("x", "ssn"), ("y", "other")]),
    )
    with capture_telemetry(payload_allow=["x.age", "ssn", "Plan "], payload_redact="SSN") as cap:
        mlotel.instrument(lambda x: [1], model_name="allow")(frame)
        mlotel.instrument(lambda x: [1], model_name="records")({"PLAN": "pro", "zip": "SECRET-10"})
        assert _features(cap, "allow") == {
            "('x', 'Age')": 31,
            "('x', 'ssn')": REDACTED,  # allowed, but denied too: the deny list wins
            "('y', 'other')": REDACTED,
        }
        assert _features(cap, "records") == {"PLAN": "pro", "zip": REDACTED}
        assert "SECRET" not in _everything(cap)


def _failing(x: Any) -> Any:
    raise ValueError(f"cannot score row {x!r}")


def test_exception_text_stays_out_of_spans_when_redaction_is_configured() -> None:
    with capture_telemetry(payload_redact=["ssn"]) as captured:
        with pytest.raises(ValueError, match="SECRET-11"):  # the caller's exception: unchanged
            mlotel.instrument(_failing, model_name="failing")({"ssn": "SECRET-11"})
        (span,) = captured.spans
        assert span.status.description == "ValueError"
        (event,) = span.events
        assert event.name == "exception"
        assert event.attributes is not None and event.attributes["exception.type"] == "ValueError"
        assert "_failing" in str(event.attributes["exception.stacktrace"])  # frames kept
        assert "exception.message" not in event.attributes
        assert "SECRET" not in _everything(captured)


def test_exception_messages_setting() -> None:
    # Default without redaction: the message is recorded (OTel's usual behaviour).
    with capture_telemetry() as captured:
        with pytest.raises(ValueError):
            mlotel.instrument(_failing, model_name="plain")({"a": "visible"})
        (span,) = captured.spans
        assert "visible" in str(span.status.description)
        assert "visible" in str(span.events[0].attributes)
    # Off explicitly, without any redaction list.
    with capture_telemetry(record_exception_messages=False) as captured:
        with pytest.raises(ValueError):
            mlotel.instrument(_failing, model_name="quiet")({"a": "hidden-text"})
        (span,) = captured.spans
        assert span.status.description == "ValueError"
        assert "hidden-text" not in span.to_json()  # (the payload logs it: not redacted)
    # On explicitly although redaction is configured: the user's choice.
    with capture_telemetry(payload_redact="ssn", record_exception_messages=True) as captured:
        with pytest.raises(ValueError):
            mlotel.instrument(_failing, model_name="loud")({"b": "shown"})
        assert "shown" in str(captured.spans[0].status.description)


def test_internal_error_logs_hide_messages_while_redaction_is_configured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mlotel._self_telemetry import tally

    with caplog.at_level(logging.WARNING, logger="mlotel"), capture_telemetry(
        payload_redact="ssn"
    ):
        secret = "SECRET-12"
        try:
            float(secret)
        except ValueError as exc:
            tally.error("test.component", exc)
    text = "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records)
    assert "test.component" in text and "ValueError" in text
    assert "SECRET" not in text


def test_a_capture_inside_another_gives_the_tally_back() -> None:
    """Contained errors after an inner capture (with redaction) count in the outer one,
    and its hiding of messages ends with it."""
    from mlotel._self_telemetry import tally

    with capture_telemetry() as outer:
        with capture_telemetry(payload_redact="ssn"):
            assert tally.hide_messages
        assert not tally.hide_messages
        tally.error("test.after_inner", log=False)
        assert outer.internal_errors("test.after_inner") == 1


def test_redacted_batches_log_every_value() -> None:
    """Redaction walks a batch's payload once: a 200-row batch logs all 200 values of
    its feature, as it does without redaction."""
    batch = [[float(i)] for i in range(200)]
    with capture_telemetry(payload_redact="ssn") as captured:
        mlotel.instrument(lambda rows: [0] * len(rows), model_name="m", feature_names=["x"])(
            batch
        )
        (record,) = captured.logs
        assert log_payload(record)["ml.features"]["x"] == [float(i) for i in range(200)]


def test_categories_of_a_redacted_feature_are_not_metric_labels() -> None:
    from mlotel.drift import Profile

    train = pd.DataFrame({"zip": ["SECRET-90210", "SECRET-10001"] * 50, "age": range(100)})
    reference = Profile.from_data(train, categorical=["zip"])
    with capture_telemetry(payload_redact="ZIP") as captured:
        predict = mlotel.instrument(lambda x: [1] * len(x), model_name="zips", reference=reference)
        predict(train.head(20))
        bins = {
            p.attributes["ml.feature.bin"]
            for p in captured.points("ml.feature.bin.count", {"ml.feature.name": "zip"})
        }
        assert bins == {"0", "1", "__other__"}
        assert captured.points("ml.feature.reference.share", {"ml.feature.name": "zip"})
        assert "SECRET" not in _everything(captured)


def test_redactor_unit() -> None:
    assert normalise_name(" Credit-Card  Number") == "credit_card_number"
    redactor = Redactor(["credit card"], None)
    assert redactor.hides("CREDIT_CARD") and redactor.hides("user.credit-card")
    assert not redactor.hides("card")
    assert redactor.value({"a": [{"Credit Card": 1}], "b": (2,)}) == {
        "a": [{"Credit Card": REDACTED}],
        "b": [2],
    }
    assert not Redactor([], None).active
