"""Tiny token classifiers built in code for the token-classification tests and the demo: a tagged toy corpus (IOB2), a
BERT with a WordPiece tokenizer and a RoBERTa with a byte-level BPE tokenizer trained on it, each trained a few
steps so that its entities are not random."""

from __future__ import annotations

import json
import random
from pathlib import Path

NER_LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
PEOPLE = ["John", "Mary", "Alice", "Kimberly", "Jonathan", "Bob Smith", "Ann Lee"]
PLACES = ["Paris", "London", "Berlin", "New York", "San Francisco", "Lisbon"]
ORGS = ["Acme", "Globex Corp", "Initech", "Umbrella Labs"]
TEMPLATES = [
    "{PER} lives in {LOC}",
    "{PER} works for {ORG} in {LOC}",
    "{ORG} opened an office in {LOC}",
    "{PER} and {PER} visited {LOC} yesterday",
    "the weather in {LOC} is nice",
    "{PER} met {PER} at {ORG}",
    "nobody knows where {PER} went",
]


def tagged_sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """`n` sentences as (words, IOB2 tags)."""
    rng = random.Random(seed)
    pools = {"PER": PEOPLE, "LOC": PLACES, "ORG": ORGS}
    out = []
    for _ in range(n):
        words, tags = [], []
        for part in rng.choice(TEMPLATES).split():
            if part.startswith("{"):
                kind = part[1:4]
                names = rng.choice(pools[kind]).split()
                words += names
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(names) - 1)
            else:
                words.append(part)
                tags.append("O")
        out.append((words, tags))
    return out


def write_tagged(path: Path, sentences) -> Path:
    path.write_text("".join(json.dumps({"tokens": w, "tags": t}) + "\n" for w, t in sentences))
    return path


def _corpus() -> list[str]:
    return [" ".join(w) for w, _ in tagged_sentences(200, seed=7)]


def wordpiece():
    from tokenizers import BertWordPieceTokenizer
    from tokenizers.processors import BertProcessing

    tok = BertWordPieceTokenizer(lowercase=True)
    tok.train_from_iterator(_corpus(), vocab_size=120)  # small: longer words split into pieces
    tok.post_processor = BertProcessing(*[(t, tok.token_to_id(t)) for t in ("[SEP]", "[CLS]")])
    return tok, dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def byte_level_bpe():
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(_corpus(), vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tok.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    names = dict(bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", cls_token="<s>")
    return tok, {**names, "sep_token": "</s>", "mask_token": "<mask>"}


def build_tagger(arch: str, folder: Path) -> Path:
    """A trained tiny `bert` or `roberta` token classifier saved with its tokenizer in `folder`."""
    import torch
    import transformers
    from transformers import PreTrainedTokenizerFast

    made, specials = {"bert": wordpiece, "roberta": byte_level_bpe}[arch]()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=made._tokenizer, model_max_length=64, **specials)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    labels = dict(id2label=dict(enumerate(NER_LABELS)), label2id={n: i for i, n in enumerate(NER_LABELS)})
    if arch == "bert":
        vocab = made.get_vocab_size()
        config = transformers.BertConfig(vocab_size=vocab, max_position_embeddings=64, **small, **labels)
        model_class = transformers.BertForTokenClassification
    else:
        config = transformers.RobertaConfig(
            vocab_size=made.get_vocab_size(), max_position_embeddings=66, pad_token_id=1, **small, **labels
        )
        model_class = transformers.RobertaForTokenClassification
    torch.manual_seed(0)
    model = model_class(config)
    _train(model, tokenizer, tagged_sentences(60, seed=1))
    model.eval().save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _train(model, tokenizer, sentences, steps: int = 80) -> None:
    """Every token of a word learns the word's tag (its later pieces the I- form of it), padding -100."""
    import torch

    texts = [" ".join(w) for w, _ in sentences]
    batch = tokenizer(texts, padding=True, return_offsets_mapping=True, return_tensors="pt")
    offsets = batch.pop("offset_mapping")
    target = torch.full(batch["input_ids"].shape, -100)
    for r, (words, tags) in enumerate(sentences):
        start = 0
        for word, tag in zip(words, tags):
            end = start + len(word)
            pieces = [t for t, (s, e) in enumerate(offsets[r].tolist()) if e > s and s < end and e > start]
            for k, t in enumerate(pieces):
                target[r, t] = NER_LABELS.index(tag if k == 0 or tag == "O" else "I-" + tag[2:])
            start = end + 1
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        logits = model(**batch).logits
        torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1)).backward()
        optimizer.step()
