"""The test zoo: a tiny random-initialised checkpoint of each architecture bmsdk supports, built in seconds, no
downloads. Each is saved as a user would save a fine-tuned model (`save_pretrained` of the model and of its
tokenizer or image processor), so the zoo goes through the same front door as a real checkpoint.

    build("bert", folder)  ->  folder with config.json, model.safetensors, tokenizer.json, ...

Text models get a tokenizer of the kind their family ships (WordPiece, byte-level BPE or SentencePiece Unigram),
trained here on a few sentences; vision models get their own image processor class with small sizes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CORPUS = [
    "the movie was great and the acting was good",
    "a terrible film with an awful plot",
    "not good, not bad: just fine",
    "great fun for the whole family",
    "i would not watch it again",
    "the best movie of the year!",
    "boring, slow and far too long",
    "what a wonderful surprise",
    "Héllo wörld, ça va? naïve café",
    "numbers 1 2 3 and 2024",
]
LABELS = ["negative", "positive"]
IMAGE_SIZE = 32
SEED = 0


@dataclass(frozen=True)
class Architecture:
    name: str  # how the README's table names it
    kind: str  # "text" or "vision"
    tokenizer: str  # "wordpiece", "bpe", "unigram" or "" (vision)
    make: Callable[[Path], None] | None  # writes the checkpoint folder (None: `factory` is the source)
    factory: str = ""  # a factory source 'module:function' for an architecture transformers does not have

    @property
    def task(self) -> str:
        return "text-classification" if self.kind == "text" else "image-classification"


# --- tokenizers -----------------------------------------------------------------------------------------------


def _wordpiece(lowercase: bool = True):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.decoder = decoders.WordPiece()
    return tok, dict(pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def _byte_level_bpe():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok, dict(
        bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>", cls_token="<s>", sep_token="</s>",
        mask_token="<mask>",
    )  # fmt: skip


def _unigram(lowercase: bool = False, cls: str = "<s>", sep: str = "</s>"):
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    steps = [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(steps + ([normalizers.Lowercase()] if lowercase else []))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    specials = [cls, "<pad>", sep, "<unk>", "<mask>"] if cls == "<s>" else ["<pad>", "<unk>", cls, sep, "<mask>"]
    tok.train_from_iterator(CORPUS, trainers.UnigramTrainer(vocab_size=150, special_tokens=specials, unk_token="<unk>"))
    ids = {t: tok.token_to_id(t) for t in (cls, sep)}
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} $B:1 {sep}:1", special_tokens=list(ids.items())
    )
    tok.decoder = decoders.Metaspace()
    return tok, dict(pad_token="<pad>", unk_token="<unk>", cls_token=cls, sep_token=sep, mask_token="<mask>")


def _trained_like(model):
    """Weights with the spread of a trained model: transformers' init (std 0.02, norms at exactly 1 and 0) leaves
    small random networks with near-constant outputs (a tiny MobileNetV2's logits are 1e-27), which would make every
    comparison in the zoo vacuous. torch's own layer init keeps activations at unit scale; norms get a little noise."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv1d, torch.nn.Embedding)):
                module.reset_parameters()
            elif isinstance(module, (torch.nn.LayerNorm, torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                if module.weight is not None:
                    module.weight.copy_(1 + 0.1 * torch.randn_like(module.weight))
                if module.bias is not None:
                    module.bias.copy_(0.1 * torch.randn_like(module.bias))
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.copy_(0.1 * torch.randn_like(module.running_mean))
                    module.running_var.copy_(1 + 0.1 * torch.rand_like(module.running_var))
    return model.eval()


def _batch_norms_from_data(model, pixels):
    """Running statistics measured on `pixels`, as training leaves them: with statistics that do not fit its
    activations a deep random CNN forgets its input (a tiny EfficientNet's logits then vary by 1e-10 across images,
    so any int8 rounding flips its top class)."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if not norms:
        return model
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches below
    model.train()
    with torch.no_grad():
        for batch in pixels.split(8):
            model(pixel_values=batch)
    for norm in norms:
        norm.momentum = 0.1
    return model.eval()


def _save_tokenizer(folder: Path, made, max_length: int = 64) -> int:
    from transformers import PreTrainedTokenizerFast

    tok, specials = made
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_length, **specials)
    fast.save_pretrained(str(folder))
    return tok.get_vocab_size()


# --- text models ----------------------------------------------------------------------------------------------

SMALL_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


def _text(config_class: str, model_class: str, tokenizer: Callable, **config) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        import torch
        import transformers

        folder.mkdir(parents=True, exist_ok=True)
        vocab = _save_tokenizer(folder, tokenizer())
        pad = json.loads((folder / "tokenizer.json").read_text())
        pad_id = next(t["id"] for t in pad["added_tokens"] if t["content"] in ("[PAD]", "<pad>"))
        cfg = getattr(transformers, config_class)(
            vocab_size=vocab,
            max_position_embeddings=64,
            pad_token_id=pad_id,
            num_labels=len(LABELS),
            id2label=dict(enumerate(LABELS)),
            label2id={n: i for i, n in enumerate(LABELS)},
            **{**SMALL_TEXT, **config},
        )
        torch.manual_seed(SEED)
        _trained_like(getattr(transformers, model_class)(cfg)).save_pretrained(str(folder))

    return make


# --- vision models --------------------------------------------------------------------------------------------

SMALL_PROCESSOR = dict(shortest_edge=IMAGE_SIZE)


def _vision(config_class, model_class, processor_class, config: dict, processor: dict) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        import torch
        import transformers

        folder.mkdir(parents=True, exist_ok=True)
        cfg = getattr(transformers, config_class)(
            num_labels=len(LABELS),
            id2label=dict(enumerate(LABELS)),
            label2id={n: i for i, n in enumerate(LABELS)},
            **config,
        )
        torch.manual_seed(SEED)
        model = _trained_like(getattr(transformers, model_class)(cfg))
        _batch_norms_from_data(model, torch.rand(32, 3, IMAGE_SIZE, IMAGE_SIZE) * 4 - 2)  # normalised pixels
        model.save_pretrained(str(folder))
        getattr(transformers, processor_class)(**processor).save_pretrained(str(folder))

    return make


SQUARE = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        Architecture("bert", "text", "wordpiece", _text("BertConfig", "BertForSequenceClassification", _wordpiece)),
        Architecture(
            "distilbert",
            "text",
            "wordpiece",
            _text(
                "DistilBertConfig",
                "DistilBertForSequenceClassification",
                _wordpiece,
                dim=32,
                n_layers=2,
                n_heads=4,
                hidden_dim=64,
            ),
        ),  # fmt: skip
        Architecture(
            "roberta",
            "text",
            "bpe",
            _text("RobertaConfig", "RobertaForSequenceClassification", _byte_level_bpe, type_vocab_size=1),
        ),
        Architecture(
            "xlm-roberta",
            "text",
            "unigram",
            _text("XLMRobertaConfig", "XLMRobertaForSequenceClassification", _unigram, type_vocab_size=1),
        ),
        Architecture(
            "albert",
            "text",
            "unigram",
            _text(
                "AlbertConfig",
                "AlbertForSequenceClassification",
                lambda: _unigram(lowercase=True, cls="[CLS]", sep="[SEP]"),
                embedding_size=16,
            ),
        ),  # fmt: skip
        Architecture(
            "electra",
            "text",
            "wordpiece",
            _text("ElectraConfig", "ElectraForSequenceClassification", _wordpiece, embedding_size=16),
        ),
        Architecture(
            "mobilebert",
            "text",
            "wordpiece",
            _text(
                "MobileBertConfig",
                "MobileBertForSequenceClassification",
                _wordpiece,
                embedding_size=16,
                intra_bottleneck_size=16,
                true_hidden_size=16,
                num_feedforward_networks=2,
            ),
        ),  # fmt: skip
        Architecture(
            "deberta-v2",
            "text",
            "unigram",
            _text(
                "DebertaV2Config",
                "DebertaV2ForSequenceClassification",
                lambda: _unigram(cls="[CLS]", sep="[SEP]"),
                type_vocab_size=0,
            ),
        ),  # fmt: skip
        Architecture(
            "modernbert",
            "text",
            "bpe",
            _text(
                "ModernBertConfig",
                "ModernBertForSequenceClassification",
                _byte_level_bpe,
                global_attn_every_n_layers=2,
                local_attention=16,
                bos_token_id=0,
                eos_token_id=2,
                cls_token_id=0,
                sep_token_id=2,
            ),
        ),  # fmt: skip
        Architecture(
            "resnet",
            "vision",
            "",
            _vision(
                "ResNetConfig",
                "ResNetForImageClassification",
                "ConvNextImageProcessor",
                dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]),
                dict(size=SMALL_PROCESSOR),
            ),
        ),  # fmt: skip
        Architecture(
            "mobilenet-v2",
            "vision",
            "",
            _vision(
                "MobileNetV2Config",
                "MobileNetV2ForImageClassification",
                "MobileNetV2ImageProcessor",
                dict(image_size=IMAGE_SIZE, depth_multiplier=0.25),
                dict(size={"shortest_edge": 36}, crop_size=SQUARE),
            ),
        ),  # fmt: skip
        Architecture("mobilenet-v3", "vision", "", None, factory="mobilenet_v3:make_model"),
        Architecture(
            "efficientnet",
            "vision",
            "",
            _vision(
                "EfficientNetConfig",
                "EfficientNetForImageClassification",
                "EfficientNetImageProcessor",
                dict(image_size=IMAGE_SIZE, width_coefficient=0.1, depth_coefficient=0.1, hidden_dim=128),
                dict(size=SQUARE, crop_size=SQUARE),
            ),
        ),  # fmt: skip
        Architecture(
            "convnext",
            "vision",
            "",
            _vision(
                "ConvNextConfig",
                "ConvNextForImageClassification",
                "ConvNextImageProcessor",
                dict(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2),
                dict(size=SMALL_PROCESSOR),
            ),
        ),  # fmt: skip
        Architecture(
            "vit",
            "vision",
            "",
            _vision(
                "ViTConfig",
                "ViTForImageClassification",
                "ViTImageProcessor",
                dict(image_size=IMAGE_SIZE, patch_size=8, **SMALL_TEXT),
                dict(size=SQUARE),
            ),
        ),  # fmt: skip
        Architecture(
            "deit",
            "vision",
            "",
            _vision(
                "DeiTConfig",
                "DeiTForImageClassification",
                "DeiTImageProcessor",
                dict(image_size=IMAGE_SIZE, patch_size=8, **SMALL_TEXT),
                dict(size={"height": 36, "width": 36}, crop_size=SQUARE),
            ),
        ),  # fmt: skip
        Architecture(
            "swin",
            "vision",
            "",
            _vision(
                "SwinConfig",
                "SwinForImageClassification",
                "ViTImageProcessor",
                dict(image_size=IMAGE_SIZE, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 4], window_size=4),
                dict(size=SQUARE),
            ),
        ),  # fmt: skip
        Architecture(
            "mobilevit",
            "vision",
            "",
            _vision(
                "MobileViTConfig",
                "MobileViTForImageClassification",
                "MobileViTImageProcessor",
                dict(
                    image_size=IMAGE_SIZE,
                    hidden_sizes=[16, 24, 32],
                    neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64],
                    num_attention_heads=2,
                ),
                dict(size={"shortest_edge": 36}, crop_size=SQUARE),
            ),
        ),  # fmt: skip
    ]
}


def build(name: str, folder: Path) -> Path | str:
    """Write the tiny checkpoint of architecture `name` into `folder` (created) and return it (or the factory that
    makes it; tests/zoo must be on sys.path for the factory to import)."""
    arch = ARCHITECTURES[name]
    if arch.make is None:
        return arch.factory
    arch.make(Path(folder))
    return Path(folder)


def calibration_data(kind: str, folder: Path, n: int = 16) -> Path:
    """Representative inputs for static int8: the corpus as JSON lines, or a folder of smooth random PNG images
    of several sizes and aspect ratios (the pre-processing resizes and crops them), in class folders."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "text":
        path = folder / "texts.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in (CORPUS * 2)[:n]))
        return path
    rng = np.random.default_rng(SEED)
    images = folder / "images"
    for i in range(n):
        label = images / LABELS[i % len(LABELS)]  # labelled, so the folder also serves as --eval data
        label.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
        size = (IMAGE_SIZE + 8 * (i % 3), IMAGE_SIZE + 4 * (i % 4))
        Image.fromarray(small).resize(size, Image.BILINEAR).save(label / f"{i:02d}.png")
    return images
