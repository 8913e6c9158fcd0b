"""Tiny extractive QA models built in code for the question-answering tests and the demo: contexts of facts ("Mary
lives in Paris."), questions about one of them, and a BERT and a RoBERTa trained a few steps to point at the answer."""

from __future__ import annotations

import json
import random
from pathlib import Path

from .ner import ORGS, PEOPLE, PLACES, byte_level_bpe, wordpiece


def questions(n: int, seed: int, facts: int = 3) -> list[dict]:
    """`n` examples {"question", "context", "answers"}, each context `facts` sentences long."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        people = rng.sample(PEOPLE, min(facts, len(PEOPLE)))
        sentences, asked = [], None
        for person in people:
            if rng.random() < 0.5:
                answer, sentence = rng.choice(PLACES), f"{person} lives in {{}}."
                question = f"Where does {person} live?"
            else:
                answer, sentence = rng.choice(ORGS), f"{person} works at {{}}."
                question = f"Where does {person} work?"
            sentences.append(sentence.format(answer))
            asked = asked or (question, answer)
        rng.shuffle(sentences)
        out.append({"question": asked[0], "context": " ".join(sentences), "answers": [asked[1]]})
    return out


def write_questions(path: Path, examples: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in examples))
    return path


def build_reader(arch: str, folder: Path) -> Path:
    """A trained tiny `bert` or `roberta` question answerer saved with its tokenizer in `folder`."""
    import torch
    import transformers
    from transformers import PreTrainedTokenizerFast

    made, specials = {"bert": wordpiece, "roberta": byte_level_bpe}[arch]()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=made._tokenizer, model_max_length=64, **specials)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    vocab = made.get_vocab_size()
    if arch == "bert":
        config = transformers.BertConfig(vocab_size=vocab, max_position_embeddings=64, **small)
        model = (torch.manual_seed(0), transformers.BertForQuestionAnswering(config))[1]
    else:
        config = transformers.RobertaConfig(vocab_size=vocab, max_position_embeddings=66, pad_token_id=1, **small)
        model = (torch.manual_seed(0), transformers.RobertaForQuestionAnswering(config))[1]
    _train(model, tokenizer, questions(128, seed=1))
    model.eval().save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _train(model, tokenizer, examples: list[dict], steps: int = 300) -> None:
    import torch

    batch = tokenizer(
        [e["question"] for e in examples],
        [e["context"] for e in examples],
        padding=True,
        truncation="only_second",
        max_length=64,
        return_token_type_ids=True,  # what bmsdk feeds a model that takes them (the generic tokenizer lists none)
        return_offsets_mapping=True,
        return_tensors="pt",
    )
    offsets = batch.pop("offset_mapping")
    starts, ends = [], []
    for r, e in enumerate(examples):
        first = e["context"].index(e["answers"][0])
        last = first + len(e["answers"][0])
        seq = batch.sequence_ids(r)
        inside = [t for t, (s, f) in enumerate(offsets[r].tolist()) if seq[t] == 1 and s < last and f > first]
        starts.append(inside[0] if inside else 0)
        ends.append(inside[-1] if inside else 0)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(**batch, start_positions=torch.tensor(starts), end_positions=torch.tensor(ends)).loss.backward()
        optimizer.step()
