"""Tiny audio classifiers built in code for the audio-classification tests and the demo: a synthetic keyword-spotting-
like set (16 kHz clips of 0.5-1 s: a low tone, a high tone, a rising and a falling chirp, each with noise, random
loudness and onset), and a wav2vec2 (group-norm conv feature encoder, no attention mask) and a HuBERT (layer-norm
feature encoder, stable layer norm, attention mask) sequence classifier trained on it for a few seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bmsdk.tasks.audio_ops import write_wav

RATE = 16000
AUDIO_LABELS = ["low", "high", "up", "down"]
ARCHS = ("wav2vec2", "hubert")


def clip(label: str, rng: np.random.Generator) -> np.ndarray:
    """One clip of `label`: 0.5-1 s, the sound starting somewhere in its first 0.2 s, noise throughout."""
    n = int(rng.uniform(0.5, 1.0) * RATE)
    t = np.arange(n) / RATE
    start = rng.uniform(0.0, 0.2)
    f0, f1 = {"low": (300, 300), "high": (1500, 1500), "up": (300, 2000), "down": (2000, 300)}[label]
    f0, f1 = f0 * rng.uniform(0.9, 1.1), f1 * rng.uniform(0.9, 1.1)
    duration = max(t[-1] - start, 1e-3)
    tau = np.clip(t - start, 0, None)
    phase = 2 * np.pi * (f0 * tau + (f1 - f0) * tau**2 / (2 * duration))  # a linear chirp (a tone if f0 == f1)
    sound = np.where(t >= start, np.sin(phase), 0.0) * rng.uniform(0.2, 0.8)
    return (sound + rng.uniform(0.01, 0.1) * rng.standard_normal(n)).astype(np.float32)


def clips(n: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    rng = np.random.default_rng(seed)
    labels = [AUDIO_LABELS[i % len(AUDIO_LABELS)] for i in range(n)]
    return [clip(label, rng) for label in labels], labels


def write_folder(root: Path, waves, labels) -> Path:
    """DATA/<label>/<i>.wav (16-bit PCM)."""
    for i, (w, label) in enumerate(zip(waves, labels)):
        (root / label).mkdir(parents=True, exist_ok=True)
        write_wav(root / label / f"{i:03d}.wav", w, RATE)
    return root


def write_jsonl(path: Path, folder: Path) -> Path:
    """JSON lines {"audio": relative path, "label"} of the clips of a class folder."""
    rows = [
        {"audio": str(f.relative_to(path.parent)), "label": f.parent.name}
        for f in sorted(folder.glob("*/*.wav"), key=lambda f: f.name)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def extractor(arch: str):
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True, return_attention_mask=arch == "hubert"
    )


def build_classifier(arch: str, folder: Path, steps: int = 30) -> Path:
    """A trained tiny `wav2vec2` or `hubert` audio classifier saved with its feature extractor in `folder`."""
    import torch
    import transformers

    small = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(8, 16, 16),
        conv_kernel=(20, 4, 4),
        conv_stride=(10, 4, 4),  # 160 samples a frame: 100 frames a second
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        apply_spec_augment=False,
        layerdrop=0.0,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        classifier_proj_size=16,
        id2label=dict(enumerate(AUDIO_LABELS)),
        label2id={n: i for i, n in enumerate(AUDIO_LABELS)},
    )
    if arch == "wav2vec2":
        config = transformers.Wav2Vec2Config(feat_extract_norm="group", do_stable_layer_norm=False, **small)
        model_class = transformers.Wav2Vec2ForSequenceClassification
    else:
        config = transformers.HubertConfig(feat_extract_norm="layer", do_stable_layer_norm=True, **small)
        model_class = transformers.HubertForSequenceClassification
    torch.manual_seed(0)
    model = model_class(config)
    fe = extractor(arch)
    waves, labels = clips(96, seed=1)
    batch = fe(waves, sampling_rate=RATE, padding="max_length", max_length=RATE, truncation=True, return_tensors="pt")
    target = torch.tensor([AUDIO_LABELS.index(label) for label in labels])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        rows = torch.arange(step * 16, step * 16 + 16) % len(waves)
        optimizer.zero_grad()
        logits = model(**{k: v[rows] for k, v in batch.items()}).logits
        torch.nn.functional.cross_entropy(logits, target[rows]).backward()
        optimizer.step()
    model.eval().save_pretrained(str(folder))
    fe.save_pretrained(str(folder))
    return folder


def source_accuracy(folder: Path, waves, labels) -> float:
    """The accuracy of the checkpoint itself through transformers (its own feature extractor, 1 s clips)."""
    import torch
    import transformers

    model = transformers.AutoModelForAudioClassification.from_pretrained(str(folder)).eval()
    fe = transformers.AutoFeatureExtractor.from_pretrained(str(folder))
    batch = fe(waves, sampling_rate=RATE, padding="max_length", max_length=RATE, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        pred = model(**batch).logits.argmax(-1).numpy()
    return float(np.mean([AUDIO_LABELS[p] == label for p, label in zip(pred, labels)]))
