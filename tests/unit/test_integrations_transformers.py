"""Hugging Face transformers: pipelines and generate() as one inference each, GenAI names,
text descriptors. Tiny models built from configs, a tokenizer built in code, no hub."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

import mlotel
from mlotel import semconv
from mlotel.drift import DriftConfig, text_profile
from mlotel.integrations import instrumentor, uninstrument_all
from mlotel.integrations.transformers import TransformersInstrumentor
from mlotel.testing import CapturedTelemetry, capture_telemetry, log_payload
from support import tiny_transformers as tiny
from support.instrumentation import instrumented

PROMPTS = ["the good film was", "a very slow story about music and a bad actor"]


@pytest.fixture
def captured() -> Iterator[CapturedTelemetry]:
    with capture_telemetry() as cap:
        mlotel.auto_instrument(["torch", "transformers"])
        try:
            yield cap
        finally:
            uninstrument_all()


def _histogram(cap: CapturedTelemetry, name: str, **attrs: Any) -> tuple[int, float]:
    points = cap.points(name, attrs or None)
    return sum(p.count for p in points), sum(p.sum for p in points)


def _left_padded(prompts: list[str]) -> dict[str, Any]:
    tok = tiny.tokenizer()
    tok.padding_side = "left"
    return dict(tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False))


def test_generate_is_one_inference_with_genai_names(captured: CapturedTelemetry) -> None:
    model = tiny.gpt2()
    batch = _left_padded(PROMPTS)
    out = model.generate(**batch, max_new_tokens=20, do_sample=False, eos_token_id=999)
    captured.flush()
    (span,) = captured.spans  # not one per decoding step (20 forward passes ran)
    assert span.name == "generate GPT2LMHeadModel"
    attrs = dict(span.attributes or {})
    assert attrs[semconv.ATTR_OPERATION_NAME] == "generate"
    assert attrs[semconv.ATTR_GEN_AI_OPERATION_NAME] == "text_completion"
    assert attrs[semconv.ATTR_GEN_AI_SYSTEM] == "transformers"
    assert attrs[semconv.ATTR_GEN_AI_REQUEST_MODEL] == "GPT2LMHeadModel"
    assert attrs[semconv.ATTR_GEN_AI_REQUEST_MAX_TOKENS] == 20
    assert attrs[semconv.ATTR_BATCH_SIZE] == 2
    real_input = sum(len(p.split()) for p in PROMPTS)  # word-level tokenizer: a token a word
    assert attrs[semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS] == real_input
    assert attrs[semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] == 2 * 20 == out.shape[0] * 20
    assert _histogram(captured, semconv.INFERENCE_DURATION.name)[0] == 1
    usage = semconv.GEN_AI_CLIENT_TOKEN_USAGE.name
    assert _histogram(captured, usage, **{"gen_ai.token.type": "input"}) == (1, real_input)
    assert _histogram(captured, usage, **{"gen_ai.token.type": "output"}) == (1, 40)
    payload = log_payload(captured.logs[0])
    assert payload[semconv.ATTR_FEATURES] == {"text.length.tokens": [4.0, 10.0]}
    assert payload[semconv.ATTR_PREDICTION] == [20.0, 20.0]  # tokens generated per sequence


def test_output_tokens_stop_at_each_rows_end_token(captured: CapturedTelemetry) -> None:
    model = tiny.gpt2()
    batch = _left_padded(PROMPTS)
    prompt_len = batch["input_ids"].shape[1]
    with mlotel.integrations.not_inference():  # a reference run: no end token can occur
        free = model.generate(**batch, max_new_tokens=20, do_sample=False, eos_token_id=999)
    generated = free[:, prompt_len:].tolist()
    end = generated[0][6]  # make row 0's 7th token the end token: row 0 stops there
    expected = [row.index(end) + 1 if end in row else 20 for row in generated]
    assert expected[0] <= 7 and expected != [20, 20]
    model.generate(**batch, max_new_tokens=20, do_sample=False, eos_token_id=end)
    captured.flush()
    (span,) = captured.spans
    assert dict(span.attributes or {})[semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] == sum(expected)
    assert log_payload(captured.logs[0])[semconv.ATTR_PREDICTION] == [float(e) for e in expected]


def test_time_to_first_token_is_within_the_call(captured: CapturedTelemetry) -> None:
    model = tiny.gpt2()
    ids = _left_padded(PROMPTS[:1])["input_ids"]
    for _ in range(3):
        model.generate(ids, max_new_tokens=20, do_sample=False, eos_token_id=999)
    captured.flush()
    count, ttft = _histogram(captured, semconv.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN.name)
    _, total = _histogram(captured, semconv.GEN_AI_CLIENT_OPERATION_DURATION.name)
    per_token_count, per_token = _histogram(
        captured, semconv.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN.name
    )
    assert count == 3 and per_token_count == 3
    assert 0.0 < ttft <= total
    assert total == pytest.approx(_histogram(captured, semconv.INFERENCE_DURATION.name)[1])
    # 19 decoding steps after the first token, each shorter than the whole call
    assert 0.0 < per_token * 19 <= total - ttft + 1e-6


def test_generate_failure_is_recorded_and_reraised(captured: CapturedTelemetry) -> None:
    model = tiny.gpt2()
    with pytest.raises(ValueError):
        model.generate(torch.tensor([[5, 6]]), max_new_tokens=-3)
    captured.flush()
    (span,) = captured.spans
    assert dict(span.attributes or {})[semconv.ATTR_ERROR_TYPE] == "ValueError"
    points = captured.points(semconv.GEN_AI_CLIENT_OPERATION_DURATION.name)
    assert [dict(p.attributes)[semconv.ATTR_ERROR_TYPE] for p in points] == ["ValueError"]
    assert not captured.points(semconv.GEN_AI_CLIENT_TOKEN_USAGE.name)


def test_torch_alone_makes_generate_one_inference() -> None:
    # The issue's report: auto_instrument(["torch"]) gave one span per decoding step.
    with capture_telemetry() as cap:
        assert mlotel.auto_instrument(["torch"]) == ["torch"]
        try:
            tiny.gpt2().generate(torch.tensor([[5, 6, 7]]), max_new_tokens=20, do_sample=False)
        finally:
            uninstrument_all()
        assert [s.name for s in cap.spans] == ["generate GPT2LMHeadModel"]
        assert not TransformersInstrumentor().is_instrumented_by_opentelemetry


def test_latest_genai_conventions_are_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    with capture_telemetry() as cap:
        with instrumented(TransformersInstrumentor):
            tiny.gpt2().generate(torch.tensor([[5, 6]]), max_new_tokens=3, do_sample=False)
        cap.flush()
        attrs = dict(cap.spans[0].attributes or {})
        assert attrs[semconv.ATTR_GEN_AI_PROVIDER_NAME] == "transformers"
        assert semconv.ATTR_GEN_AI_SYSTEM not in attrs
        (point, *_) = cap.points(semconv.GEN_AI_CLIENT_TOKEN_USAGE.name)
        assert dict(point.attributes)[semconv.ATTR_GEN_AI_PROVIDER_NAME] == "transformers"


def test_genai_names_can_be_left_out() -> None:
    with capture_telemetry() as cap:
        with instrumented(TransformersInstrumentor, genai_conventions=False):
            tiny.gpt2().generate(torch.tensor([[5, 6]]), max_new_tokens=3, do_sample=False)
        cap.flush()
        (span,) = cap.spans
        assert not [k for k in (span.attributes or {}) if k.startswith("gen_ai.")]
        assert not cap.points(semconv.GEN_AI_CLIENT_TOKEN_USAGE.name)
        assert log_payload(cap.logs[0])[semconv.ATTR_PREDICTION] == 3.0


def test_classification_pipeline_reads_classes_and_scores(captured: CapturedTelemetry) -> None:
    clf = tiny.classifier_pipeline()
    texts = ["the good film", "bad plot", "very boring story", "great music"]
    single = clf("funny actor")
    batch = clf(texts)
    ranked = clf("slow film", top_k=None)  # every class of one input: still one row
    captured.flush()
    name = "text-classification BertForSequenceClassification"
    assert [s.name for s in captured.spans] == [name] * 3
    assert [dict(s.attributes or {})[semconv.ATTR_BATCH_SIZE] for s in captured.spans] == [1, 4, 1]
    winners = [single[0], *batch, max(ranked, key=lambda r: r["score"])]
    by_class = {
        dict(p.attributes)[semconv.ATTR_PREDICTION_CLASS]: p.value
        for p in captured.points(semconv.PREDICTIONS.name)
    }
    expected: dict[str, int] = {}
    for row in winners:
        expected[row["label"]] = expected.get(row["label"], 0) + 1
    assert by_class == expected
    count, total = _histogram(captured, semconv.PREDICTION_SCORE.name)
    assert count == 6 and total == pytest.approx(sum(r["score"] for r in winners))
    payload = log_payload(captured.logs[1])
    assert payload[semconv.ATTR_PREDICTION] == [r["label"] for r in batch]
    assert payload[semconv.ATTR_FEATURES]["text.length.chars"] == [float(len(t)) for t in texts]
    assert "text" not in payload[semconv.ATTR_FEATURES]  # content is not captured by default
    # the BERT forward inside each pipeline call is no inference of its own
    assert _histogram(captured, semconv.INFERENCE_DURATION.name)[0] == 3


def test_token_classification_reads_entities(captured: CapturedTelemetry) -> None:
    ner = tiny.ner_pipeline()
    result = ner(["the actor was good", "a funny film"])
    captured.flush()
    entities = [e for row in result for e in row]
    by_class = {
        dict(p.attributes)[semconv.ATTR_PREDICTION_CLASS]: p.value
        for p in captured.points(semconv.PREDICTIONS.name)
    }
    expected: dict[str, int] = {}
    for e in entities:
        expected[e["entity"]] = expected.get(e["entity"], 0) + 1
    assert by_class == expected
    assert _histogram(captured, semconv.PREDICTION_SCORE.name) == (
        len(entities),
        pytest.approx(sum(float(e["score"]) for e in entities)),
    )


def test_feature_extraction_reads_one_vector_per_input(captured: CapturedTelemetry) -> None:
    fe = tiny.embedding_pipeline()
    texts = ["the good film", "bad"]
    vectors = fe(texts)  # per input: [[one vector per token]]
    captured.flush()
    (span,) = captured.spans
    assert span.name == "feature-extraction BertModel"
    means = [np.asarray(v[0]).mean(axis=0) for v in vectors]
    assert [len(np.asarray(v[0])) for v in vectors] == [3, 1]  # tokens differ per input
    # one row per input (the mean token vector); a log record shows each row's first value
    logged = log_payload(captured.logs[0])[semconv.ATTR_PREDICTION]
    assert logged == pytest.approx([float(m[0]) for m in means], abs=1e-6)
    assert sum(p.value for p in captured.points(semconv.PREDICTIONS.name)) == 2


def test_generation_pipeline_counts_the_generated_tokens(captured: CapturedTelemetry) -> None:
    gen = tiny.generation_pipeline()
    gen.tokenizer.padding_side = "left"
    prompts = ["the good film", "bad"]
    gen(prompts, max_new_tokens=5, do_sample=False, eos_token_id=999)
    captured.flush()
    (span,) = captured.spans  # the pipeline call; its generate() calls are inside it
    attrs = dict(span.attributes or {})
    assert span.name == "text-generation GPT2LMHeadModel"
    assert attrs[semconv.ATTR_GEN_AI_USAGE_INPUT_TOKENS] == 4
    assert attrs[semconv.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS] == 10
    count, ttft = _histogram(captured, semconv.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN.name)
    assert count == 1 and 0.0 < ttft <= _histogram(captured, semconv.INFERENCE_DURATION.name)[1]


def test_content_capture_logs_the_text() -> None:
    with capture_telemetry() as cap:
        with instrumented(TransformersInstrumentor, capture_content=True):
            tiny.classifier_pipeline()(["the good film"])
        cap.flush()
        assert log_payload(cap.logs[0])[semconv.ATTR_FEATURES]["text"] == "the good film"


def _drift(cap: CapturedTelemetry, feature: str) -> float:
    (point,) = cap.points(
        semconv.FEATURE_DRIFT.name,
        {semconv.ATTR_FEATURE_NAME: feature, semconv.ATTR_DRIFT_METHOD: "psi"},
    )
    return float(point.value)


REFERENCE = [
    " ".join(words)
    for words in (
        ["the", "good", "film"],
        ["a", "bad", "plot"],
        ["very", "funny", "actor"],
        ["the", "story", "was", "slow"],
        ["great", "music"],
    )
] * 60


def test_text_descriptors_drift_when_the_text_changes() -> None:
    tok = tiny.tokenizer()
    reference = text_profile(REFERENCE, tokenizer=tok)
    assert "text.unknown_share" in reference.feature_names
    same = REFERENCE * 2  # 600 rows: past the monitor's 500-row minimum
    changed = ["zebra quantum " * 8 + "film"] * 600  # long, mostly unknown words
    results = {}
    for name, texts in (("same", same), ("changed", changed)):
        with capture_telemetry() as cap:
            with instrumented(
                TransformersInstrumentor, references={"BertForSequenceClassification": reference}
            ):
                clf = tiny.classifier_pipeline()
                for start in range(0, 600, 200):
                    clf(texts[start : start + 200], batch_size=100)
            cap.flush()
            out_of_range = cap.points(
                semconv.DATA_QUALITY_ISSUES.name,
                {
                    semconv.ATTR_FEATURE_NAME: "text.unknown_share",
                    semconv.ATTR_DATA_QUALITY_ISSUE: "out_of_range",
                },
            )
            results[name] = {
                "chars": _drift(cap, "text.length.chars"),
                "tokens": _drift(cap, "text.length.tokens"),
                "unknown": sum(p.value for p in out_of_range),
            }
    assert results["same"]["chars"] < 0.1 and results["same"]["tokens"] < 0.1
    assert results["changed"]["chars"] > 1.0 and results["changed"]["tokens"] > 1.0
    # the reference has no unknown words: every changed text's share is out of its range
    assert results["same"]["unknown"] == 0 and results["changed"]["unknown"] == 600


def test_instrument_with_a_text_reference_works_on_any_text_model() -> None:
    # no tokenizer: characters, words, emptiness; some empty inputs are normal here
    reference = text_profile(REFERENCE + [""] * 30)

    def sentiment(texts: list[str]) -> list[str]:
        return ["POS" if "good" in t else "NEG" for t in texts]

    with capture_telemetry() as cap:
        model = mlotel.instrument(
            sentiment,
            model_name="reviews",
            reference=reference,
            drift=DriftConfig(min_samples=100),
        )
        model(["", "", "the good film"] * 100)  # two thirds empty now
        cap.flush()
        assert _drift(cap, "text.empty") > 1.0
        assert _drift(cap, "text.length.words") > 1.0
        issues = cap.points(semconv.DATA_QUALITY_ISSUES.name)
        assert not [p for p in issues if p.value and "missing" in str(p.attributes)]


def test_pipelines_stay_fast_paths_when_uninstrumented() -> None:
    clf = tiny.classifier_pipeline()
    expected = clf(["the good film"])
    TransformersInstrumentor().instrument()
    TransformersInstrumentor().uninstrument()
    assert clf(["the good film"]) == expected
    assert not instrumentor("transformers").is_instrumented_by_opentelemetry
