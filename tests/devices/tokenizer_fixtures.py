"""Tiny text classifiers and tokenizers of each kind the device libraries implement, built offline.

WordPiece is conftest's tiny BERT. Byte-level BPE: a RoBERTa tokenizer (ByteLevel pre-tokenizer, RobertaProcessing
`<s> $A </s>`, pad id 1, `<mask>` with lstrip as in roberta-base) trained here with `tokenizers`. SentencePiece
Unigram: a real `sentencepiece` model trained here on the test texts, converted by transformers exactly as a user's
`from_pretrained` would (XLM-RoBERTa: the Precompiled nmt_nfkc charsmap, WhitespaceSplit + Metaspace; ALBERT: Replace,
NFKD, StripAccents, Lowercase, Precompiled; DeBERTa-v2: a Replace regex, NFC, Strip). Nothing comes from a model hub.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import TEXT_LABELS, TEXTS, train_on_texts
from generation_fixture import CORPUS

MAX_LENGTH = 64
# text the tokenizers are trained on: the tests' own sentences
TRAINING_TEXT = (
    TEXTS
    + CORPUS
    + [
        "Good films and bad films: the movie was not great, but it was fun.",
        "ALBERT and RoBERTa read text; XLM-R reads many languages.",
    ]
)
# cases that exercise the normalizers of the Unigram and BPE kinds (beside test_android_jvm.TRICKY)
NORMALIZER_TEXTS = [
    "ΟΔΟΣ ΣΟΦΙΑΣ σοφός",  # final sigma: lowercased per character, not in context
    "İstanbul IŞIK",  # İ lowercases to two code points
    "ﬁne ligature ① ² ｆｕｌｌｗｉｄｔｈ ＡＢＣ ㍻",  # NFKC / the nmt_nfkc charsmap
    "combining e\u0301 and precomposed \u00e9, a\u0308\u0301 stacked",
    "``quoted'' and ''again``",
    "  leading and trailing  ",
    "many     spaces\u3000and\u00a0nbsp",
    "crlf\r\nand\rcr\u2028ls",
    "<mask> literal <s> and </s> <pad> [CLS] [MASK]",
    "before <mask>after, two  <mask>  masks",
    "日本語のテキスト and 中文",
    "emoji 👍🏽 👨‍👩‍👧 flags 🇫🇷",
    "ctrl\x00chars\u200b\ufeffhere\ufffd",
    "unassigned \u0381 and \U000e0080 code points, private \ue000 use",  # Hugging Face keeps Cn, drops Co
    " \u0301 a space, then a combining mark",  # one grapheme cluster, but it starts with a space
]


def train_spm(folder: Path, name: str, **options) -> Path:
    """A tiny SentencePiece Unigram model (nmt_nfkc normalization, the default) trained on TRAINING_TEXT."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(TRAINING_TEXT * 3) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(folder / "spm"),
        vocab_size=150,
        model_type="unigram",
        hard_vocab_limit=False,
        num_threads=1,
        character_coverage=1.0,
        minloglevel=2,
        **options,
    )
    model = folder / name
    (folder / "spm.model").replace(model)
    return model


def _converted(cls, source: Path, out: Path) -> Path:
    tok = cls.from_pretrained(str(source), local_files_only=True)
    tok.model_max_length = MAX_LENGTH
    tok.save_pretrained(str(out))
    return out


def xlmr_tokenizer(folder: Path) -> Path:
    from transformers import XLMRobertaTokenizer

    train_spm(folder / "src", "sentencepiece.bpe.model")
    return _converted(XLMRobertaTokenizer, folder / "src", folder / "tokenizer")


def albert_tokenizer(folder: Path) -> Path:
    from transformers import AlbertTokenizer

    train_spm(folder / "src", "spiece.model", pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
              control_symbols=["[CLS]", "[SEP]", "[MASK]"])  # fmt: skip
    return _converted(AlbertTokenizer, folder / "src", folder / "tokenizer")


def deberta_v2_tokenizer(folder: Path) -> Path:
    from transformers import DebertaV2Tokenizer

    train_spm(folder / "src", "spm.model", pad_id=0, bos_id=1, eos_id=2, unk_id=3)
    return _converted(DebertaV2Tokenizer, folder / "src", folder / "tokenizer")


def roberta_tokenizer(folder: Path, add_prefix_space: bool = False) -> Path:
    from tokenizers import AddedToken, ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(TRAINING_TEXT * 4, vocab_size=400, min_frequency=1, special_tokens=specials)
    (folder / "src").mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder / "src"))
    tok = RobertaTokenizer.from_pretrained(
        str(folder / "src"),
        local_files_only=True,
        add_prefix_space=add_prefix_space,
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, special=True),
    )
    tok.model_max_length = MAX_LENGTH
    tok.save_pretrained(str(folder / "tokenizer"))
    return folder / "tokenizer"


def xlmr_variant(folder: Path, scheme: str) -> Path:
    """The XLM-R tokenizer as older exports wrote it (Precompiled then a " {2,}" Replace, Metaspace alone, in the
    legacy `add_prefix_space` form for "always"), to cover Metaspace splitting spaces itself and its "first" scheme."""
    source = xlmr_tokenizer(folder) / "tokenizer.json"
    saved = json.loads(source.read_text())
    charsmap = saved["normalizer"]
    assert charsmap["type"] == "Precompiled", charsmap["type"]
    saved["normalizer"] = {
        "type": "Sequence",
        "normalizers": [charsmap, {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}],
    }
    metaspace = {"type": "Metaspace", "replacement": "▁", "split": True}
    saved["pre_tokenizer"] = (
        {**metaspace, "add_prefix_space": True} if scheme == "legacy" else {**metaspace, "prepend_scheme": scheme}
    )
    source.write_text(json.dumps(saved, ensure_ascii=False))
    return source.parent


def tiny_classifier(kind: str, folder: Path) -> Path:
    """A Hugging Face checkpoint folder: a tiny RoBERTa or XLM-R sequence classifier, briefly trained on TEXTS."""
    import torch
    from transformers import (
        AutoTokenizer,
        RobertaConfig,
        RobertaForSequenceClassification,
        XLMRobertaConfig,
        XLMRobertaForSequenceClassification,
    )

    tok_dir = roberta_tokenizer(folder / "tok") if kind == "roberta" else xlmr_tokenizer(folder / "tok")
    tok = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    config_cls, model_cls = {
        "roberta": (RobertaConfig, RobertaForSequenceClassification),
        "xlmr": (XLMRobertaConfig, XLMRobertaForSequenceClassification),
    }[kind]
    torch.manual_seed(0)
    config = config_cls(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=MAX_LENGTH + 2,  # RoBERTa's positions start after the padding id
        type_vocab_size=1,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        num_labels=2,
        id2label=dict(enumerate(TEXT_LABELS)),
        label2id={n: i for i, n in enumerate(TEXT_LABELS)},
    )
    model = model_cls(config)
    train_on_texts(model, tok)
    out = folder / f"tiny-{kind}-cls"
    model.eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_classifiers(root: Path) -> dict[str, Path]:
    """The tiny RoBERTa (byte-level BPE) and XLM-R (Unigram) classifier checkpoints, by kind."""
    return {kind: tiny_classifier(kind, root / kind) for kind in ("roberta", "xlmr")}


def tokenizer_cases(tokenizer_json: Path, texts: list[str], max_length: int) -> dict:
    """Each text's ids, type ids and mask as bmsdk's Python side makes them (HF tokenizers, truncated, unpadded)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_padding()
    tok.enable_truncation(max_length)
    cases = []
    for text in texts:
        e = tok.encode(text)
        cases.append({"text": text, "input_ids": e.ids, "type_ids": e.type_ids, "attention_mask": e.attention_mask})
    return {"max_length": max_length, "cases": cases}


def write_tokenizer_cases(root: Path, texts: list[str], work: Path) -> list[Path]:
    """One folder per tokenizer of the Unigram and BPE kinds (tokenizer.json + tokenizer-cases.json) under `root`,
    each built in `work`; the cases are `texts` and NORMALIZER_TEXTS."""
    builders = {
        "roberta": roberta_tokenizer,
        "roberta-prefix-space": lambda f: roberta_tokenizer(f, add_prefix_space=True),
        "xlmr": xlmr_tokenizer,
        "xlmr-legacy": lambda f: xlmr_variant(f, "legacy"),
        "xlmr-prepend-first": lambda f: xlmr_variant(f, "first"),
        "albert": albert_tokenizer,
        "deberta-v2": deberta_v2_tokenizer,
    }
    folders = []
    for name, build in builders.items():
        folder = root / f"tokenizer-{name}"
        source = build(work / name) / "tokenizer.json"
        folder.mkdir(parents=True)
        (folder / "tokenizer.json").write_bytes(source.read_bytes())
        cases = tokenizer_cases(source, texts + NORMALIZER_TEXTS, MAX_LENGTH)
        (folder / "tokenizer-cases.json").write_text(json.dumps(cases, ensure_ascii=False))
        folders.append(folder)
    return folders


def demo_tweets() -> list[str]:
    """The demo's 2,000 test tweets (mojibake, emoji, URLs) when `make demo` has cached them, else none."""
    from bmsdk.benchmarks import zoo

    tweets = zoo.cache_dir() / "data" / "sentiment-test.jsonl"
    return [json.loads(line)["text"] for line in tweets.read_text().splitlines()] if tweets.is_file() else []


def write_minilm_cases(root: Path, texts: list[str]) -> None:
    """The real MiniLM vocabulary on `texts`, when the demo has built its checkpoint (no model run)."""
    from bmsdk.benchmarks import zoo

    tokenizer = zoo.cache_dir() / "minilm-sentiment" / "tokenizer.json"
    if not tokenizer.is_file():
        return
    folder = root / "tokenizer-minilm"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    cases = tokenizer_cases(tokenizer, texts, 128)
    (folder / "tokenizer-cases.json").write_text(json.dumps(cases, ensure_ascii=False))


if __name__ == "__main__":  # refresh examples/ios/Tests/BMSDKTests/Fixtures/tokenizer-xlmr: python THIS DIR
    import sys
    import tempfile

    from test_android_jvm import TRICKY

    with tempfile.TemporaryDirectory() as work:
        write_tokenizer_cases(Path(sys.argv[1]), TEXTS + TRICKY, Path(work))
