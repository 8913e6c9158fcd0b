"""A checkpoint's image processor, applied by bmsdk as transformers applies it.

For each processor class (PIL backend, the one transformers uses without torchvision), saved with
`save_pretrained` at its defaults and with other sizes / crop_pct / options, bmsdk's ImagePreprocessor built from
the manifest section the loader writes must give transformers' `pixel_values` for random images of many sizes and
aspect ratios (smaller than the crop, non-square, extreme): the same Pillow resize on the same uint8 pixels and
the same float32 arithmetic, so the difference is held to TOLERANCE (measured: 0 for every case).
Then one tiny MobileNetV2 checkpoint end to end: converted to ONNX, `Model.predict` gives transformers' answer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import softmax

import bmsdk
from bmsdk.converters.sources.image_processors import checkpoint_pipeline
from bmsdk.errors import InputError, ManifestError, SourceError
from bmsdk.image_pipeline import pipeline_problem
from bmsdk.manifest import Manifest, TensorSpec
from bmsdk.tasks.image_ops import center_crop
from bmsdk.tasks.preprocessing import ImagePreprocessor

TOLERANCE = 1e-6  # on normalised values; PIL does the resampling on both sides, so nothing but float32 rounding
# (height, width): square, portrait, landscape, smaller than every crop, tiny, extreme aspect ratios
IMAGE_SIZES = [(224, 224), (300, 200), (240, 320), (37, 53), (9, 5), (500, 90), (64, 700), (257, 255)]
IMAGENET_DEFAULT = {"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}

CASES = {
    # ResNet checkpoints (microsoft/resnet-*) save a ConvNextImageProcessor: shortest edge 224 / crop_pct, crop 224
    "resnet": ("ConvNextImageProcessor", {"size": {"shortest_edge": 224}, "crop_pct": 0.875, **IMAGENET_DEFAULT}),
    "convnext-default": ("ConvNextImageProcessor", {}),  # shortest_edge 384: warps to 384x384
    "convnext-crop-pct-0.95": ("ConvNextImageProcessor", {"size": {"shortest_edge": 160}, "crop_pct": 0.95}),
    "convnext-bilinear": ("ConvNextImageProcessor", {"size": {"shortest_edge": 224}, "crop_pct": 0.9, "resample": 2}),
    "convnext-warp-then-crop": (  # 384 and more warps; do_center_crop then crops
        "ConvNextImageProcessor",
        {"do_center_crop": True, "crop_size": {"height": 200, "width": 180}},
    ),
    "mobilenet_v2-default": ("MobileNetV2ImageProcessor", {}),
    "mobilenet_v2-sizes": (
        "MobileNetV2ImageProcessor",
        {"size": {"shortest_edge": 180}, "crop_size": {"height": 160, "width": 144}},
    ),
    "mobilenet_v1-default": ("MobileNetV1ImageProcessor", {}),
    "efficientnet-default": ("EfficientNetImageProcessor", {}),  # include_top: normalised twice
    "efficientnet-nearest-crop-offset": (
        "EfficientNetImageProcessor",
        {"resample": 0, "do_center_crop": True, "rescale_offset": True, "size": {"height": 300, "width": 280}},
    ),
    "efficientnet-no-top": ("EfficientNetImageProcessor", {"include_top": False, "resample": 0}),
    "vit-default": ("ViTImageProcessor", {}),
    "swin": ("ViTImageProcessor", {"resample": 3, **IMAGENET_DEFAULT}),  # what microsoft/swin-* checkpoints save
    "vit-384": ("ViTImageProcessor", {"size": {"height": 384, "width": 384}}),
    "deit-default": ("DeiTImageProcessor", {}),
    "mobilevit-default": ("MobileViTImageProcessor", {}),  # no normalize, BGR, crop 256 after shortest edge 224
    "mobilevit-sizes": (
        "MobileViTImageProcessor",
        {"size": {"shortest_edge": 288}, "crop_size": {"height": 256, "width": 256}},
    ),
    "mobilevit-rgb": ("MobileViTImageProcessor", {"do_flip_channel_order": False}),
    "beit-default": ("BeitImageProcessor", {}),
    "beit-crop": ("BeitImageProcessor", {"do_center_crop": True, "size": {"height": 256, "width": 256}}),
    "segformer": ("SegformerImageProcessor", {"size": {"height": 128, "width": 96}}),
    "bit-default": ("BitImageProcessor", {}),
    "clip-default": ("CLIPImageProcessor", {}),
    "vit-no-rescale-no-normalize": ("ViTImageProcessor", {"do_rescale": False, "do_normalize": False}),
    "siglip-default": ("SiglipImageProcessor", {}),
    "pvt-default": ("PvtImageProcessor", {}),
    "poolformer-default": ("PoolFormerImageProcessor", {}),  # shortest edge 224 / crop_pct 0.9, crop 224
    "poolformer-square": ("PoolFormerImageProcessor", {"size": {"height": 160, "width": 160}, "crop_pct": 0.875}),
    "poolformer-non-square": (
        "PoolFormerImageProcessor",
        {"size": {"height": 160, "width": 128}, "crop_size": {"height": 150, "width": 120}},
    ),
    "poolformer-no-crop-pct": ("PoolFormerImageProcessor", {"crop_pct": None}),
    "levit-default": ("LevitImageProcessor", {}),  # shortest edge 256/224 x 224, crop 224
    "levit-exact": ("LevitImageProcessor", {"size": {"height": 200, "width": 180}, "do_center_crop": False}),
}


def processor_class(name: str):
    """The PIL-backend class of transformers 5 (`XImageProcessorPil`), or the class itself in transformers 4."""
    import transformers

    return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)


def saved(tmp_path, name: str, options: dict):
    processor_class(name)(**options).save_pretrained(tmp_path)
    return json.loads((tmp_path / "preprocessor_config.json").read_text())


def bmsdk_preprocessor(folder, channels: int = 3) -> tuple[ImagePreprocessor, dict]:
    fields = checkpoint_pipeline(folder, channels, [224, 224])
    config = {"kind": "image", "input_name": "pixel_values", "channels": channels, "layout": "NCHW", **fields}
    assert pipeline_problem(config, config["size"], channels) is None
    spec = TensorSpec("pixel_values", "float32", ["batch", channels, *config["size"]])
    return ImagePreprocessor(config, [spec]), config


def random_images(seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in IMAGE_SIZES]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bmsdk_preprocessing_equals_transformers(case, tmp_path):
    name, options = CASES[case]
    saved(tmp_path, name, options)
    reference = processor_class(name).from_pretrained(tmp_path)
    pre, config = bmsdk_preprocessor(tmp_path)
    assert config["processor"] == name
    for image in random_images():
        want = reference(images=[image], return_tensors="np")["pixel_values"][0]
        got = pre([image])["pixel_values"][0]
        assert got.shape == want.shape == (3, *config["size"]), (case, image.size)
        assert float(np.abs(got - want).max()) <= TOLERANCE, (case, image.size)


def test_what_the_manifest_records(tmp_path):
    saved(tmp_path, "ConvNextImageProcessor", CASES["resnet"][1])
    _, config = bmsdk_preprocessor(tmp_path)
    assert config["resize"] == {"mode": "shortest_edge", "size": 256, "resample": 3}  # int(224 / 0.875)
    assert config["center_crop"] == config["size"] == [224, 224]
    assert config["normalization"] == "checkpoint" and config["mean"] == IMAGENET_DEFAULT["image_mean"]
    efficient = tmp_path / "efficientnet"
    saved(efficient, "EfficientNetImageProcessor", {"rescale_offset": True})
    _, config = bmsdk_preprocessor(efficient)
    assert config["offset"] == -1.0 and config["renormalize_std"] == config["std"]
    mobilevit = tmp_path / "mobilevit"
    saved(mobilevit, "MobileViTImageProcessor", {})
    _, config = bmsdk_preprocessor(mobilevit)
    assert config["channel_order"] == "BGR" and config["normalization"] == "none"
    assert config["mean"] == [0.0] * 3 and config["std"] == [1.0] * 3


HUB_STYLE = {  # preprocessor_config.json as hub checkpoints of these families hold them (older writers' keys)
    "microsoft/resnet-50": {
        "feature_extractor_type": "ConvNextFeatureExtractor",
        "size": 224,
        "crop_pct": 0.875,
        "resample": 3,
        "do_resize": True,
        "do_normalize": True,
        **IMAGENET_DEFAULT,
    },
    "google/vit-base-patch16-224": {
        "feature_extractor_type": "ViTFeatureExtractor",
        "size": 224,
        "resample": 2,
        "do_resize": True,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    },
    "google/mobilenet_v2_1.0_224": {
        "image_processor_type": "MobileNetV2ImageProcessor",
        "crop_pct": 0.875,  # not an option of this class: transformers ignores it, so must bmsdk
        "crop_size": {"height": 224, "width": 224},
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "resample": 2,
        "size": {"shortest_edge": 256},
    },
    "google/efficientnet-b0": {
        "image_processor_type": "EfficientNetImageProcessor",
        "crop_size": {"height": 289, "width": 289},
        "do_center_crop": False,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.485, 0.456, 0.406],
        "image_std": [0.47853944, 0.4732864, 0.47434163],
        "include_top": True,
        "resample": 0,
        "rescale_factor": 1 / 255,
        "rescale_offset": False,
        "size": {"height": 224, "width": 224},
    },
    "apple/mobilevit-small": {
        "feature_extractor_type": "MobileViTFeatureExtractor",
        "crop_size": 256,
        "do_center_crop": True,
        "do_flip_channel_order": True,
        "do_resize": True,
        "resample": 2,
        "size": 288,
    },
}


@pytest.mark.parametrize("hub_name", sorted(HUB_STYLE))
def test_hub_style_configs_resolve_as_transformers_does(tmp_path, hub_name):
    """Old feature-extractor files (int sizes, feature_extractor_type) and extra keys read as transformers reads
    them."""
    from transformers import AutoImageProcessor

    (tmp_path / "preprocessor_config.json").write_text(json.dumps(HUB_STYLE[hub_name]))
    reference = AutoImageProcessor.from_pretrained(tmp_path)
    pre, config = bmsdk_preprocessor(tmp_path)
    for image in random_images(1):
        want = reference(images=[image], return_tensors="np")["pixel_values"][0]
        got = pre([image])["pixel_values"][0]
        assert got.shape == want.shape and float(np.abs(got - want).max()) <= TOLERANCE, (hub_name, image.size)


@pytest.mark.parametrize(
    "name, options, match",
    [
        ("DPTImageProcessor", {}, "does not implement the pre-processing of DPTImageProcessor"),
        ("ViTImageProcessor", {"size": {"shortest_edge": 224}}, "varying sizes"),
        ("ViTImageProcessor", {"size": {"shortest_edge": 200, "longest_edge": 300}}, "longest_edge"),
        (
            "ConvNextImageProcessor",
            {"size": {"shortest_edge": 224}, "do_center_crop": True, "crop_size": {"height": 200, "width": 200}},
            "twice",
        ),
        ("ViTImageProcessor", {"do_pad": True, "pad_size": {"height": 240, "width": 240}}, "do_pad"),
        ("ViTImageProcessor", {"size": {"height": 100000, "width": 100000}}, "from 1 to 16384"),  # hostile sizes
        ("MobileNetV2ImageProcessor", {"crop_size": {"height": 0, "width": 224}}, "'center_crop' must be"),
        ("ViTImageProcessor", {"rescale_factor": "1/255"}, "rescale_factor must be a finite number"),
        ("ViTImageProcessor", {"image_std": [0.5, 0.0, 0.5]}, "image_std .* holds a 0"),
        ("ViTImageProcessor", {"image_mean": [0.5, 0.5]}, "image_mean must give 3 values"),
        ("ConvNextImageProcessor", {"size": {"shortest_edge": 224}, "crop_pct": 1e-9}, "from 1 to 16384"),
    ],
)
def test_what_bmsdk_cannot_apply_is_refused(tmp_path, name, options, match):
    saved(tmp_path, name, options)
    with pytest.raises(SourceError, match=match):
        checkpoint_pipeline(tmp_path, 3, [224, 224])


def test_the_conversion_checks_itself_against_transformers(tmp_path, monkeypatch):
    """A pipeline that drifted from transformers' (here: an offset nobody asked for) stops the conversion."""
    from bmsdk.converters.sources import image_processors

    class Drifted(ImagePreprocessor):
        def normalize(self, pixels):
            return super().normalize(pixels) + np.float32(0.01)

    saved(tmp_path, "MobileNetV2ImageProcessor", {})
    assert checkpoint_pipeline(tmp_path, 3, [224, 224])["processor_check"]["max_abs_error"] == 0.0
    monkeypatch.setattr(image_processors, "ImagePreprocessor", Drifted)
    with pytest.raises(SourceError, match="differs from transformers' by 0.01"):
        checkpoint_pipeline(tmp_path, 3, [224, 224])


def test_option_sources_record_default_normalization(cnn_factory, caplog, tmp_path):
    """A factory/.pt2/ONNX image model without mean/std: normalization 'default-0-1' and a warning on how to fix."""
    from bmsdk.converters.sources.loader import load_source

    with caplog.at_level(logging.WARNING, logger="bmsdk"):
        src = load_source(cnn_factory, input_shapes=None)
    spec_mean = src.preprocessing["normalization"]
    assert spec_mean == "option"  # the test factory declares its mean/std in bmsdk_spec
    plain = tmp_path / "plain.onnx"
    _write_plain_onnx(plain)
    with caplog.at_level(logging.WARNING, logger="bmsdk"):
        src = load_source(plain)
    assert src.preprocessing["normalization"] == "default-0-1"
    assert src.preprocessing["mean"] == [0.0] * 3 and src.preprocessing["std"] == [1.0] * 3
    assert any("--mean" in r.getMessage() and "default-0-1" in r.getMessage() for r in caplog.records)
    with caplog.at_level(logging.WARNING, logger="bmsdk"):
        caplog.clear()
        src = load_source(plain, mean=[0.5] * 3, std=[0.25] * 3)
    assert src.preprocessing["normalization"] == "option" and not caplog.records


def _write_plain_onnx(path) -> None:
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [3 * 8 * 8, 4], np.ones(3 * 8 * 8 * 4, np.float32))
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["logits"])],
        "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        [weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_tiny_mobilenet_v2_end_to_end(tmp_path):
    """save_pretrained model + processor -> ONNX artifact: predict() answers as transformers' processor + model."""
    import torch
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    folder = tmp_path / "tiny-mobilenet"
    torch.manual_seed(0)
    labels = ["a", "b", "c"]
    config = MobileNetV2Config(image_size=96, depth_multiplier=0.35, id2label=dict(enumerate(labels)))
    model = MobileNetV2ForImageClassification(config).eval()
    with torch.no_grad():  # transformers' init (std 0.02) fades the activations out layer by layer: He init instead
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight)
    model.save_pretrained(folder)
    processor = processor_class("MobileNetV2ImageProcessor")(
        size={"shortest_edge": 110}, crop_size={"height": 96, "width": 96}
    )
    processor.save_pretrained(folder)

    result = bmsdk.convert(str(folder), output=tmp_path / "mnv2.bmsdk", target="onnx")
    assert result.passed and result.manifest.preprocessing["center_crop"] == [96, 96]
    assert result.manifest.preprocessing["processor_check"]["max_abs_error"] == 0.0
    assert result.manifest.inputs[0].shape == ["batch", 3, 96, 96]
    artifact = bmsdk.load(result.path)
    images = random_images(2)
    pixel_values = processor(images=images, return_tensors="np")["pixel_values"]
    with torch.no_grad():
        want = model(pixel_values=torch.from_numpy(pixel_values)).logits.numpy()
    feeds = artifact.preprocess(images)
    assert float(np.abs(feeds["pixel_values"] - pixel_values).max()) <= TOLERANCE
    assert float(np.ptp(want)) > 0.1, want  # logits that say something
    got = artifact.run(feeds)["logits"]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    predictions = artifact.predict(images)
    scores = np.array([[p["scores"][n] for n in labels] for p in predictions])
    np.testing.assert_allclose(scores, softmax(want), atol=1e-5)
    assert [p["label"] for p in predictions] == [labels[i] for i in want.argmax(1)]


# --- the manifest's pipeline fields ------------------------------------------------------------------------------

V1_IMAGE = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "v1" / "onnx-fp16.json"


def test_a_v1_manifest_resizes_straight_to_its_size_as_before():
    """bmsdk 0.1 manifests have no resize/crop fields: BILINEAR straight to `size`, (pixel * scale - mean) / std."""
    from PIL import Image

    manifest = Manifest.from_dict(json.loads(V1_IMAGE.read_text()))
    pre = ImagePreprocessor(manifest.preprocessing, manifest.inputs)
    image = Image.fromarray(np.random.default_rng(4).integers(0, 256, (45, 31), dtype=np.uint8))
    old = np.asarray(image.resize((28, 28), Image.BILINEAR), dtype=np.float32) * np.float32(1 / 255)
    old = (old - np.float32(0.1307)) / np.float32(0.3081)
    got = pre([image])["input"][0, 0]
    assert float(np.abs(got - old).max()) <= TOLERANCE  # the scale product is now float64 (transformers): <= 1 ulp


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("resize", {"mode": "fit"}, "'mode' is one of exact, shortest_edge, none"),
        ("resize", {"mode": "exact", "size": [28]}, "needs 'size' \\[height, width\\]"),
        ("resize", {"mode": "exact", "size": [30, 30]}, "must equal 'size'"),
        ("resize", {"mode": "shortest_edge", "size": 32}, "varying size"),
        ("resize", {"mode": "exact", "size": [28, 28], "resample": 9}, "PIL filter"),
        ("center_crop", [20, 20], "must equal 'size'"),
        ("center_crop", [0, 28], "'center_crop' must be"),
        ("offset", float("nan"), "'offset'"),
        ("renormalize_std", [0.0], "'renormalize_std'"),
        ("renormalize_std", [1.0, 1.0], "'renormalize_std' must be 1"),
        ("channel_order", "BGR", "BGR for 3 channels"),
        ("normalization", "guessed", "'normalization' must be one of"),
    ],
)
def test_bad_pipeline_fields_are_refused(field, value, match):
    d = json.loads(V1_IMAGE.read_text())
    d["preprocessing"][field] = value
    with pytest.raises(ManifestError, match=match):
        Manifest.from_dict(d)


def test_shortest_edge_resize_with_a_crop_loads():
    d = json.loads(V1_IMAGE.read_text())
    d["preprocessing"] |= {"resize": {"mode": "shortest_edge", "size": 32, "resample": 3}, "center_crop": [28, 28]}
    assert Manifest.from_dict(d).preprocessing["center_crop"] == [28, 28]


@pytest.mark.parametrize("height, width", [(40, 40), (41, 30), (28, 28), (27, 29), (3, 100), (1, 1)])
def test_center_crop_is_transformers_center_crop(height, width):
    from transformers.image_transforms import center_crop as reference

    pixels = np.arange(height * width * 3, dtype=np.float32).reshape(height, width, 3) + 1
    want = reference(pixels, (28, 28), input_data_format="channels_last")
    np.testing.assert_array_equal(center_crop(pixels, 28, 28), want)


def test_a_fixed_size_model_without_resize_refuses_other_sizes():
    d = json.loads(V1_IMAGE.read_text())
    d["preprocessing"]["resize"] = {"mode": "none"}
    manifest = Manifest.from_dict(d)
    pre = ImagePreprocessor(manifest.preprocessing, manifest.inputs)
    assert pre([np.zeros((28, 28), np.uint8)])["input"].shape == (1, 1, 28, 28)
    with pytest.raises(InputError, match="does not resize"):
        pre([np.zeros((30, 28), np.uint8)])


@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory):
    """A tiny ResNet checkpoint saved without a preprocessor_config.json."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    folder = tmp_path_factory.mktemp("tiny-resnet")
    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=3)
    ResNetForImageClassification(config).eval().save_pretrained(folder)
    return folder


def test_a_checkpoint_without_processor_config_records_default_normalization(tiny_resnet, caplog):
    from bmsdk.converters.sources.loader import load_source

    with caplog.at_level(logging.WARNING, logger="bmsdk"):
        src = load_source(tiny_resnet, input_shapes={"pixel_values": [1, 3, 64, 48]})
    pre = src.preprocessing
    assert pre["size"] == [64, 48] and src.inputs[0].shape == ["batch", 3, 64, 48]
    assert pre["resize"] == {"mode": "exact", "size": [64, 48], "resample": 2}
    assert pre["normalization"] == "default-0-1"
    assert any(str(tiny_resnet) in r.getMessage() and "--mean" in r.getMessage() for r in caplog.records)


def test_input_shape_must_agree_with_the_checkpoint_processor(tiny_resnet, tmp_path):
    import shutil

    from bmsdk.converters.sources.loader import load_source

    folder = tmp_path / "resnet"
    shutil.copytree(tiny_resnet, folder)
    saved(folder, "ConvNextImageProcessor", CASES["resnet"][1])
    src = load_source(folder)
    assert src.preprocessing["center_crop"] == [224, 224] and src.inputs[0].shape == ["batch", 3, 224, 224]
    assert load_source(folder, input_shapes={"pixel_values": [1, 3, 224, 224]}).preprocessing["size"] == [224, 224]
    with pytest.raises(SourceError, match="disagrees with the checkpoint's image pre-processing"):
        load_source(folder, input_shapes={"pixel_values": [1, 3, 160, 160]})
    src = load_source(folder, mean=[0.5] * 3, std=[0.5] * 3)
    assert src.preprocessing["normalization"] == "option" and src.preprocessing["mean"] == [0.5] * 3


def test_an_extreme_aspect_ratio_is_refused_before_resizing(tmp_path):
    saved(tmp_path, "MobileNetV2ImageProcessor", {})
    pre, _ = bmsdk_preprocessor(tmp_path)
    with pytest.raises(InputError, match="would be resized to 256x2560000"):
        pre([np.zeros((1, 10000, 3), np.uint8)])


def test_inspect_says_when_mean_and_std_were_left_at_0_1(tmp_path, capsys):
    from bmsdk.cli import main as cli

    _write_plain_onnx(tmp_path / "plain.onnx")
    result = bmsdk.convert(str(tmp_path / "plain.onnx"), output=tmp_path / "plain.bmsdk", target="onnx")
    assert result.manifest.preprocessing["normalization"] == "default-0-1"
    capsys.readouterr()
    assert cli(["inspect", str(result.path)]) == 0
    assert "mean/std were left at 0/1" in capsys.readouterr().out
