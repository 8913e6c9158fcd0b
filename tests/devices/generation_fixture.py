"""Text-generation vectors for the device libraries' tests (test_android_jvm.py, test_ios_swift.py).

A tiny random `LlamaForCausalLM` (seed 0) wrapped as the step graph of bmsdk.tasks.generation_vectors, with a
byte-level BPE tokenizer trained here on text with accents; its greedy tokens are checked once against
`model.generate`. Also tokenizer cases (texts -> Hugging Face ids and decoded text) for three BPE styles: GPT-2
byte-level, Llama-3 (a Split regex, then ByteLevel without its regex) and SentencePiece (Llama-2: byte fallback).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CORPUS = [
    "The café on the corner serves crème brûlée and naïve jokes.",
    "Über den Wolken, the weather is fine; déjà vu all over again.",
    "We're going to the market, aren't we? I'll buy 12 apples and 3.5 kg of rice.",
    "Once upon a time there was a tiny model that wrote short stories.",
    "日本語 and 中文 appear rarely, emoji 😀 even more rarely.",
]
PROMPTS = [
    "Once upon a time",
    "The café serves crème",
    "We're going to the market, aren't we? I'll buy 12 apples and then",  # longer than the largest prefill
]
BPE_TEXTS = [
    "Hello world",
    "café naïve über déjà",
    " leading space",
    "trailing space ",
    "multiple   spaces\tand\ttabs\nnew\n\nlines\r\n",
    "emoji 😀🔥 mixed with ✓ symbols",
    "数字 and 漢字 mixed",
    "don't you'll we're I'M THEY'RE",
    "numbers 12345 and 3.14159",
    "<s> literal special </s> tokens<pad>",
    "",
    "x" * 60,
    "punct!!! ??? ... (brackets) [x] {y}",
    "é",
    "a\u00a0non-breaking\u2009thin\u3000wide space",
    "control\u0007char\u200bzero-width\u2028line\u0085next",
    "combining e\u0301 and precomposed \u00e9",
]
MAX_NEW_TOKENS = 12
CACHE_LENGTH = 48
PREFILL_LENGTHS = [1, 4, 8]
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def byte_level_tokenizer(path: Path) -> Path:
    """GPT-2 style: ByteLevel pre-tokenizer (its regex) and decoder, `<s>` prepended by the post-processor."""
    from tokenizers import ByteLevelBPETokenizer, processors

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(CORPUS * 4, vocab_size=400, min_frequency=1, special_tokens=["<s>", "</s>", "<pad>"])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    tok.save(str(path))
    return path


def llama3_style_tokenizer(path: Path) -> Path:
    """Llama-3 style: the Llama-3 Split regex, ByteLevel without its own regex, merges as [a, b] pairs."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", 0)]
    )
    tok.save(str(path))
    return path


def sentencepiece_style_tokenizer(path: Path) -> Path:
    """Llama-2 style: `▁` for spaces (Prepend + Replace normalizers), byte fallback `<0xNN>` tokens in the vocab,
    the decoder Replace, ByteFallback, Fuse, Strip; merges written as "a b" strings (the older format)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers

    def bare() -> Tokenizer:
        tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        return tok

    trained = bare()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"])
    trained.train_from_iterator([t for t in CORPUS if "😀" not in t] * 4, trainer)  # the emoji: byte fallback
    model = json.loads(trained.to_str())["model"]
    vocab = dict(model["vocab"])
    for b in range(256):
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    tok = bare()
    tok.model = models.BPE(vocab, [tuple(m) for m in model["merges"]], unk_token="<unk>", byte_fallback=True)
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.save(str(path))
    saved = json.loads(path.read_text())
    saved["model"]["merges"] = [" ".join(m) for m in saved["model"]["merges"]]
    path.write_text(json.dumps(saved, ensure_ascii=False))
    return path


def bpe_cases(tokenizer_json: Path) -> dict:
    """Each text's ids as Hugging Face encodes it (with the post-processor) and the decoded text."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    cases = []
    for text in BPE_TEXTS:
        ids = tok.encode(text).ids
        cases.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True)})
    return {"cases": cases}


def tiny_llama(vocab_size: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=128,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=2,
    )
    return LlamaForCausalLM(config).eval()


def step_function(model):
    """The model as a numpy step function of the generation contract."""
    import torch

    class Step(torch.nn.Module):  # forward(input_ids, position_ids, attention_mask, *past) -> (logits, *presents)
        def __init__(self, model, layers):
            super().__init__()
            self.model, self.layers = model, layers

        def forward(self, input_ids, position_ids, attention_mask, *past):
            from transformers import DynamicCache

            cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(self.layers)])
            out = self.model(
                input_ids=input_ids,
                position_ids=position_ids,
                attention_mask=attention_mask,
                cache=cache,
                use_cache=True,
                return_dict=True,
            )
            T = input_ids.shape[1]
            layers = out.past_key_values.layers[: self.layers]
            return (out.logits, *[t for layer in layers for t in (layer.keys[:, :, -T:], layer.values[:, :, -T:])])

    layers = model.config.num_hidden_layers
    module = Step(model, layers)

    def step(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        past = [torch.from_numpy(feeds[f"past_{kv}_{i}"].copy()) for i in range(layers) for kv in ("key", "value")]
        with torch.no_grad():
            names = ("input_ids", "position_ids", "attention_mask")
            out = module(*[torch.from_numpy(feeds[k]) for k in names], *past)
        names = ["logits"] + [f"present_{kv}_{i}" for i in range(layers) for kv in ("key", "value")]
        return {n: t.float().numpy() for n, t in zip(names, out)}

    return step


def check_against_generate(model, case: dict) -> None:
    """The vectors' greedy tokens are those of transformers' own greedy `generate` (validates the loop)."""
    import torch

    ids = torch.tensor([case["prompt_ids"]])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
    assert out[0, ids.shape[1] :].tolist() == case["token_ids"], "the step loop disagrees with model.generate"


def write_generation_folders(root: Path) -> list[Path]:
    """Folders with tokenizer.json + vectors.json (the tiny Llama; dynamic and fixed prefill lengths) and with
    tokenizer.json + bpe-cases.json (three BPE styles). Returns the folders written."""
    from tokenizers import Tokenizer

    from bmsdk.tasks.generation_vectors import generation_vectors

    makers = {"byte-level": byte_level_tokenizer, "llama3-style": llama3_style_tokenizer}
    makers["sentencepiece-style"] = sentencepiece_style_tokenizer
    folders = []
    for name, make in makers.items():
        folder = root / f"bpe-{name}"
        folder.mkdir(parents=True)
        tokenizer = make(folder / "tokenizer.json")
        (folder / "bpe-cases.json").write_text(json.dumps(bpe_cases(tokenizer), ensure_ascii=False) + "\n")
        folders.append(folder)
    byte_level = root / "bpe-byte-level" / "tokenizer.json"
    model = tiny_llama(Tokenizer.from_file(str(byte_level)).get_vocab_size())
    config = model.config
    step = step_function(model)
    for name, lengths in (("tiny-llama-dynamic", None), ("tiny-llama-prefill", PREFILL_LENGTHS)):
        vectors = generation_vectors(
            step,
            byte_level,
            PROMPTS,
            MAX_NEW_TOKENS,
            CACHE_LENGTH,
            lengths,
            cache_shape=(config.num_hidden_layers, config.num_key_value_heads, config.head_dim),
            eos_ids=[config.eos_token_id],
            pad_id=config.pad_token_id,
        )
        if lengths is None:
            for case in vectors["cases"]:
                check_against_generate(model, case)
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "tokenizer.json").write_bytes(byte_level.read_bytes())
        (folder / "vectors.json").write_text(json.dumps(vectors, ensure_ascii=False) + "\n")
        folders.append(folder)
    return folders


if __name__ == "__main__":  # refresh the Swift package's committed fixtures: python generation_fixture.py DIR
    import sys

    for written in write_generation_folders(Path(sys.argv[1])):
        print(written)
