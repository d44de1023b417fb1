"""An unmodified transformers script under the real ``opentelemetry-instrument`` launcher:
the same spans, token counts and GenAI metrics as in-process instrumentation."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from support.launcher import run_instrumented
from support.otlp_receiver import OTLPReceiver, attributes_to_dict

SCRIPT = textwrap.dedent(
    """
    import json
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel,
        PreTrainedTokenizerFast, pipeline,
    )

    words = "[PAD] [UNK] [CLS] [SEP] [EOS] the a good bad film plot story music".split()
    inner = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=inner, unk_token="[UNK]", pad_token="[PAD]",
                                  cls_token="[CLS]", sep_token="[SEP]")
    torch.manual_seed(0)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=len(words),
                                      n_positions=64, eos_token_id=4, pad_token_id=0)).eval()
    ids = torch.tensor([[5, 7, 9]])
    out = gpt2.generate(ids, max_new_tokens=20, do_sample=False, eos_token_id=999)
    bert = BertForSequenceClassification(BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, id2label={0: "NEG", 1: "POS"}, label2id={"NEG": 0, "POS": 1},
    )).eval()
    labels = pipeline("text-classification", model=bert, tokenizer=tok)(["a good film", "bad plot"])
    print(json.dumps({"generated": out.shape[1] - ids.shape[1], "labels": labels}))
    print("done")
    """
)


def test_generate_and_pipeline_under_the_launcher(tmp_path: Path) -> None:
    with OTLPReceiver() as rx:
        proc = run_instrumented(SCRIPT, tmp_path, rx, "llm-app", HF_HUB_OFFLINE="1")
        real = json.loads(proc.stdout.splitlines()[-2])
        assert rx.wait_for(lambda: rx.metric_points("gen_ai.client.token.usage"))
        spans = [s for _, s in rx.spans()]
        # one span per generate() (20 forward passes) and per pipeline call; nothing else
        assert sorted(s.name for s in spans) == [
            "generate GPT2LMHeadModel",
            "text-classification BertForSequenceClassification",
        ]
        generate_span = next(s for s in spans if s.name.startswith("generate"))
        generate = attributes_to_dict(generate_span.attributes)
        assert generate["gen_ai.operation.name"] == "text_completion"
        assert generate["gen_ai.usage.input_tokens"] == 3
        assert generate["gen_ai.usage.output_tokens"] == real["generated"] == 20
        usage = {
            attributes_to_dict(p.attributes)["gen_ai.token.type"]: p.sum
            for p in rx.metric_points("gen_ai.client.token.usage")
        }
        assert usage == {"input": 3.0, "output": 20.0}
        # cumulative points, exported more than once: the last is the total
        ttft = rx.metric_points("gen_ai.server.time_to_first_token")[-1]
        total = rx.metric_points("gen_ai.client.operation.duration")[-1]
        assert ttft.count == total.count == 1
        assert 0.0 < ttft.sum <= total.sum
        predictions = [
            (attributes_to_dict(p.attributes), p) for p in rx.metric_points("ml.predictions")
        ]
        classes = {
            attrs.get("ml.prediction.class"): p.as_int
            for attrs, p in predictions
            if attrs.get("ml.model.name") == "BertForSequenceClassification"
        }
        expected: dict[str, int] = {}
        for row in real["labels"]:
            expected[row["label"]] = expected.get(row["label"], 0) + 1
        assert classes == expected


def test_real_prometheus_scrapes_the_genai_histograms() -> None:
    import torch

    import mlotel
    from mlotel import semconv
    from mlotel.integrations import uninstrument_all
    from support import tiny_transformers as tiny
    from support.prometheus_server import PrometheusServer, free_port

    port = free_port()
    cfg = mlotel.configure(
        exporter="embedded", prometheus_port=port, local_sink="none", set_global=False
    )
    try:
        mlotel.auto_instrument(["transformers"])
        try:
            tiny.gpt2().generate(torch.tensor([[5, 6, 7]]), max_new_tokens=5, do_sample=False)
        finally:
            uninstrument_all()
        genai = [
            semconv.GEN_AI_CLIENT_TOKEN_USAGE,
            semconv.GEN_AI_CLIENT_OPERATION_DURATION,
            semconv.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,
            semconv.GEN_AI_SERVER_TIME_PER_OUTPUT_TOKEN,
        ]
        parts = ("bucket", "count", "sum")
        expected = {f"{inst.prometheus_name}_{part}" for inst in genai for part in parts}
        assert cfg.metrics_url is not None
        with PrometheusServer([cfg.metrics_url]) as prom:
            result = prom.wait_for_query(
                'count by (__name__) ({__name__=~"gen_ai_.+", job="test"})',
                predicate=lambda r: len(r) >= len(expected),
            )
            assert {s["metric"]["__name__"] for s in result} == expected
            tokens = prom.wait_for_query(
                "sum by (gen_ai_token_type) (gen_ai_client_token_usage_sum)",
                predicate=lambda r: len(r) == 2,
            )
            assert {
                s["metric"]["gen_ai_token_type"]: float(s["value"][1]) for s in tokens
            } == {"input": 3.0, "output": 5.0}
    finally:
        mlotel.shutdown()
