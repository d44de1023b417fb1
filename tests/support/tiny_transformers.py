"""Tiny transformers models built from configs and a tokenizer built in code (no hub)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from typing import Any

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    logging,
    pipeline,
)

logging.set_verbosity_error()

WORDS = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[EOS]", "the", "a", "good", "bad", "film", "plot",
    "movie", "great", "awful", "actor", "was", "is", "very", "not", "story", "music", "slow",
    "fast", "funny", "boring",
]
PAD, UNK, EOS = 0, 1, 4


def tokenizer() -> Any:
    """A word-level tokenizer over :data:`WORDS` (unknown words become ``[UNK]``)."""
    vocab = {w: i for i, w in enumerate(WORDS)}
    inner = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    inner.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=inner,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        eos_token="[EOS]",
    )


def _bert(**extra: Any) -> BertConfig:
    return BertConfig(
        vocab_size=len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        **extra,
    )


def gpt2(seed: int = 0) -> Any:
    """A 2-layer GPT-2 (32-wide) in eval mode; ``[EOS]`` ends, ``[PAD]`` pads."""
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=len(WORDS),
        n_positions=128,
        bos_token_id=EOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    model = GPT2LMHeadModel(config).eval()
    model.generation_config.pad_token_id = PAD
    return model


def classifier_pipeline() -> Any:
    torch.manual_seed(0)
    config = _bert(num_labels=2, id2label={0: "NEG", 1: "POS"}, label2id={"NEG": 0, "POS": 1})
    model = BertForSequenceClassification(config).eval()
    return pipeline("text-classification", model=model, tokenizer=tokenizer())


def ner_pipeline() -> Any:
    torch.manual_seed(0)
    labels = {0: "O", 1: "B-PER", 2: "I-PER"}
    config = _bert(num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()})
    return pipeline(
        "token-classification",
        model=BertForTokenClassification(config).eval(),
        tokenizer=tokenizer(),
    )


def embedding_pipeline() -> Any:
    torch.manual_seed(0)
    return pipeline("feature-extraction", model=BertModel(_bert()).eval(), tokenizer=tokenizer())


def generation_pipeline() -> Any:
    return pipeline("text-generation", model=gpt2(), tokenizer=tokenizer())
