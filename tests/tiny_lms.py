"""Tiny decoder-only language models built in code (Llama, Qwen2, GPT-2) with a byte-level BPE tokenizer trained
on a few sentences, saved as Hugging Face checkpoint folders. Trained for a few steps so greedy text is not noise."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "the model runs on the phone and the answer comes back fast",
    "we ship small models to phones, boards and servers",
    "a cache keeps the keys and values of every token seen so far",
    "greedy decoding picks the most likely next token each time",
    "café au lait, naïve résumé and a smile 🙂 are text too",
    "benchmarks measure latency, throughput and memory on each device",
    "quantization stores weights in eight bits and keeps accuracy",
    "the quick brown fox jumps over the lazy dog again and again",
]
ARCHITECTURES = ("llama", "qwen2", "gpt2")


def train_tokenizer(folder: Path, vocab_size: int = 320) -> None:
    """A byte-level BPE with <s>, </s> and <pad>; the post-processor puts <s> first, like Llama's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "pad_token": "<pad>",
                "model_max_length": 128,
                "chat_template": "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>{% endif %}",
            }
        )
    )


def build(folder: Path, arch: str = "llama", seed: int = 0, steps: int = 60) -> Path:
    import torch
    import transformers
    from tokenizers import Tokenizer

    train_tokenizer(folder)
    vocab = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab_size()
    ids = dict(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(seed)
    if arch == "llama":
        config = transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, **ids,
        )  # fmt: skip
    elif arch == "qwen2":
        config = transformers.Qwen2Config(
            vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, **ids,
        )  # fmt: skip
    elif arch == "gpt2":
        config = transformers.GPT2Config(vocab_size=vocab, n_embd=64, n_layer=2, n_head=4, n_positions=128, **ids)
    else:
        raise ValueError(arch)
    model = transformers.AutoModelForCausalLM.from_config(config)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    rows = [tok.encode(t).ids + [2] for t in CORPUS]
    width = max(len(r) for r in rows)
    batch = torch.tensor([r + [0] * (width - len(r)) for r in rows])
    labels = torch.where(batch == 0, -100, batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(input_ids=batch, attention_mask=(batch != 0).long(), labels=labels).loss.backward()
        optimizer.step()
    model.eval().save_pretrained(folder)
    transformers.GenerationConfig(**ids).save_pretrained(folder)
    return folder
