"""audio-classification: tiny trained wav2vec2 (group-norm feature encoder) and HuBERT (layer-norm encoder, attention
mask) keyword classifiers converted to ONNX, TFLite and CoreML (checked on the MIL reference executor); feature
extraction equal to transformers' Wav2Vec2FeatureExtractor, WAV reading, resampling, bad inputs, the CLI."""

from __future__ import annotations

import json
import struct
import wave

import numpy as np
import pytest

import bmsdk
from bmsdk.benchmarks.task_models.audio import (
    ARCHS,
    AUDIO_LABELS,
    RATE,
    build_classifier,
    clips,
    write_folder,
    write_jsonl,
)
from bmsdk.cli import main as cli
from bmsdk.data import load_dataset
from bmsdk.errors import DataError, InputError, ManifestError, SourceError
from bmsdk.manifest import Manifest, TensorSpec
from bmsdk.tasks import detect_task
from bmsdk.tasks.audio_ops import read_wav, resample, write_wav
from bmsdk.tasks.preprocessing import AudioPreprocessor

# (arch, target, precision): every architecture on every target at fp32, one int8 flavour each
CELLS = [
    ("wav2vec2", "onnx", "fp32"),
    ("wav2vec2", "onnx", "int8"),
    ("wav2vec2", "tflite", "fp32"),
    ("wav2vec2", "coreml", "fp32"),
    ("hubert", "onnx", "fp32"),
    ("hubert", "tflite", "fp32"),
    ("hubert", "tflite", "int8-dynamic"),
    ("hubert", "coreml", "fp32"),
]
INT8_POINTS = 0.05  # int8 accuracy within 5 points of the source's (2 of 40 clips)


@pytest.fixture(scope="session")
def classifiers(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("audio-models")
    return {arch: build_classifier(arch, root / arch) for arch in ARCHS}


@pytest.fixture(scope="session")
def eval_folder(tmp_path_factory):
    waves, labels = clips(40, seed=5)
    return write_folder(tmp_path_factory.mktemp("audio-eval") / "clips", waves, labels)


@pytest.fixture(scope="session")
def eval_jsonl(eval_folder):
    return write_jsonl(eval_folder.parent / "eval.jsonl", eval_folder)


@pytest.fixture(scope="session")
def converted(tmp_path_factory, classifiers, eval_folder):
    root, cache = tmp_path_factory.mktemp("audio-artifacts"), {}

    def get(arch, target, precision):
        if (arch, target, precision) not in cache:
            out = root / f"{arch}-{target}-{precision}.bmsdk"
            cache[arch, target, precision] = bmsdk.convert(
                str(classifiers[arch]), target=target, precision=precision, eval_data=str(eval_folder), output=out
            )
        return cache[arch, target, precision]

    return get


def transformers_accuracy(folder, eval_folder) -> float:
    """The unmodified checkpoint through transformers (its own feature extractor, 1 s clips) on the eval WAVs."""
    import torch
    import transformers

    files = sorted(eval_folder.glob("*/*.wav"))
    waves = [read_wav(f)[0] for f in files]
    model = transformers.AutoModelForAudioClassification.from_pretrained(str(folder)).eval()
    fe = transformers.AutoFeatureExtractor.from_pretrained(str(folder))
    batch = fe(waves, sampling_rate=RATE, padding="max_length", max_length=RATE, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        pred = model(**batch).logits.argmax(-1).numpy()
    return float(np.mean([AUDIO_LABELS[p] == f.parent.name for p, f in zip(pred, files)]))


# --- pre-processing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [False, True])
@pytest.mark.parametrize("normalize", [True, False])
def test_features_equal_wav2vec2_feature_extractor(mask, normalize):
    from transformers import Wav2Vec2FeatureExtractor

    rng = np.random.default_rng(0)
    waves = [(rng.standard_normal(n) * rng.uniform(0.01, 2)).astype(np.float32) for n in (37, 4000, 8000, 9001)]
    waves.append(np.full(100, 0.25, dtype=np.float32))  # constant: variance 0, the 1e-7 keeps it finite
    fe = Wav2Vec2FeatureExtractor(
        sampling_rate=RATE, padding_value=0.5 if mask else 0.0, do_normalize=normalize, return_attention_mask=mask
    )
    theirs = fe(waves, sampling_rate=RATE, padding="max_length", max_length=8000, truncation=True, return_tensors="np")
    inputs = [TensorSpec("input_values", "float32", ["batch", 8000])]
    if mask:
        inputs.append(TensorSpec("attention_mask", "int64", ["batch", 8000], [0, 1]))
    config = {"sampling_rate": RATE, "samples": 8000, "do_normalize": normalize, "padding_value": fe.padding_value}
    ours = AudioPreprocessor(config, inputs)(waves)
    np.testing.assert_allclose(ours["input_values"], theirs["input_values"], atol=1e-6, rtol=0)
    assert ours["input_values"].dtype == np.float32
    if mask:
        np.testing.assert_array_equal(ours["attention_mask"], theirs["attention_mask"])
    else:
        assert "attention_mask" not in ours


def test_wav_reading_8_16_32_bit_and_stereo(tmp_path):
    x = np.sin(np.linspace(0, 40, 3000)) * 0.9
    for width, step in ((1, 1 / 128), (2, 1 / 32768), (4, 1 / 2**31)):
        samples, rate = read_wav(write_wav(tmp_path / f"w{width}.wav", x, 22050, width=width))
        assert rate == 22050 and samples.dtype == np.float32 and samples.shape == x.shape
        assert np.abs(samples - x).max() <= step + 1e-7, width
    stereo = np.stack([x, -0.5 * x], axis=1)
    mono, _ = read_wav(write_wav(tmp_path / "stereo.wav", stereo, RATE))
    np.testing.assert_allclose(mono, 0.25 * x, atol=2 / 32768)  # the channels' mean


def _float_wav(path):
    data = np.zeros(10, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, RATE, RATE * 4, 4, 32)
    path.write_bytes(
        b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
        + b"data" + struct.pack("<I", len(data)) + data
    )  # fmt: skip
    return path


def test_bad_wav_files(tmp_path):
    with pytest.raises(InputError, match="float WAV"):
        read_wav(_float_wav(tmp_path / "float.wav"))
    (tmp_path / "junk.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(InputError, match="not a readable PCM WAV"):
        read_wav(tmp_path / "junk.wav")
    with pytest.raises(InputError, match="does not exist"):
        read_wav(tmp_path / "missing.wav")
    with wave.open(str(tmp_path / "w3.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(3), w.setframerate(RATE), w.writeframes(bytes(30))
    with pytest.raises(InputError, match="24-bit"):
        read_wav(tmp_path / "w3.wav")
    with pytest.raises(InputError, match="no audio samples"):
        read_wav(write_wav(tmp_path / "empty.wav", np.zeros(0), RATE))


def test_resampling_keeps_the_pitch():
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    up = resample(tone, 8000, RATE)
    assert up.shape == (16000,) and up.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * RATE / len(up) - 440) < 2
    np.testing.assert_allclose(up[::2][100:-100], tone[100:-100], atol=1e-2)  # the original samples kept


# --- detection and sources --------------------------------------------------------------------------------------


def test_detection_audio_versus_text():
    for arch in ("Wav2Vec2ForSequenceClassification", "HubertForSequenceClassification"):
        assert detect_task([arch]).name == "audio-classification"
    assert detect_task(["WavLMForSequenceClassification"], {"model_type": "wavlm"}).name == "audio-classification"
    text = {"model_type": "bert"}
    assert detect_task(["BertForSequenceClassification"], text).name == "text-classification"
    assert detect_task(["BertForSequenceClassification"]).name == "text-classification"
    # a text model whose name says nothing: its config decides
    custom = {"model_type": "mytext", "preprocessor": {}}
    assert detect_task(["MyModelForSequenceClassification"], custom).name == "text-classification"
    audio = {"model_type": "myaudio", "preprocessor": {"feature_extractor_type": "Wav2Vec2FeatureExtractor"}}
    assert detect_task(["MyModelForSequenceClassification"], audio).name == "audio-classification"


def test_spectrogram_models_and_missing_extractor_are_refused(tmp_path, classifiers):
    ast = tmp_path / "ast"
    ast.mkdir()
    config = {"architectures": ["ASTForAudioClassification"], "model_type": "audio-spectrogram-transformer"}
    (ast / "config.json").write_text(json.dumps(config))
    (ast / "preprocessor_config.json").write_text(json.dumps({"feature_extractor_type": "ASTFeatureExtractor"}))
    with pytest.raises(SourceError, match="ASTFeatureExtractor"):
        bmsdk.convert(str(ast), target="onnx", output=tmp_path / "ast.bmsdk")
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in classifiers["wav2vec2"].iterdir():
        if f.name != "preprocessor_config.json":
            (bare / f.name).write_bytes(f.read_bytes())
    with pytest.raises(SourceError, match="no preprocessor_config.json"):
        bmsdk.convert(str(bare), target="onnx", output=tmp_path / "bare.bmsdk")


# --- data ---------------------------------------------------------------------------------------------------------


def test_audio_eval_data(eval_folder, eval_jsonl, tmp_path):
    folder, lines = load_dataset(eval_folder), load_dataset(eval_jsonl)
    assert folder.kind == lines.kind == "audio" and len(folder) == len(lines) == 40
    assert sorted(map(str, folder.items)) == sorted(map(str, lines.items))
    assert sorted(folder.labels) == sorted(lines.labels) and set(folder.labels) == set(AUDIO_LABELS)
    (tmp_path / "mixed" / "a").mkdir(parents=True)
    write_wav(tmp_path / "mixed" / "a" / "x.wav", np.zeros(100), RATE)
    (tmp_path / "mixed" / "a" / "y.png").write_bytes(b"")
    with pytest.raises(DataError, match="both images and audio"):
        load_dataset(tmp_path / "mixed")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"audio": "nowhere.wav", "label": "up"}) + "\n")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "bad.jsonl")


# --- conversions ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch,target,precision", CELLS, ids=["-".join(c) for c in CELLS])
def test_converts_validates_and_keeps_accuracy(converted, classifiers, eval_folder, arch, target, precision):
    result = converted(arch, target, precision)
    v = result.manifest.validation
    assert v.validated and v.passed, v.reason
    ev = v.eval
    reference = transformers_accuracy(classifiers[arch], eval_folder)
    assert reference >= 0.5  # the model learned the four sounds (chance is 0.25)
    assert ev.source.accuracy == pytest.approx(reference, abs=1e-9)  # the source as bmsdk runs it
    if precision == "fp32":
        assert v.samples.max_abs_error < 1e-4
        assert ev.artifact.accuracy == pytest.approx(reference, abs=1e-9)
        assert ev.top1_agreement == 1.0
    else:
        assert abs(ev.artifact.accuracy - reference) <= INT8_POINTS + 1e-9
        assert result.manifest.compression.quantization.float_layers  # the conv feature encoder stayed float
    pre = result.manifest.preprocessing
    assert pre["kind"] == "audio" and pre["samples"] == RATE and pre["sampling_rate"] == RATE
    assert [s.shape for s in result.manifest.inputs][0] == ["batch", RATE]


def test_predict_paths_arrays_lists_and_rates(converted, eval_folder, tmp_path):
    path = converted("hubert", "onnx", "fp32").path
    model = bmsdk.load(path)
    files = sorted(eval_folder.glob("*/*.wav"))[:3]
    one = model.predict(files[0])
    assert one["label"] in AUDIO_LABELS and set(one["scores"]) == set(AUDIO_LABELS)
    wave_, _ = read_wav(files[0])
    assert model.predict(wave_)["scores"] == pytest.approx(one["scores"], abs=1e-6)
    batch = model.predict([str(f) for f in files])
    assert [b["label"] for b in batch] == [model.predict(f)["label"] for f in files]
    # 8 kHz audio: a WAV is resampled from its header, an array with sampling_rate=
    low = resample(wave_, RATE, 8000)
    write_wav(tmp_path / "low.wav", low, 8000, width=4)
    from_file, from_array = model.predict(tmp_path / "low.wav"), model.predict(low, sampling_rate=8000)
    assert from_file["scores"] == pytest.approx(from_array["scores"], abs=1e-4)
    assert from_array["scores"] == pytest.approx(model.predict(resample(low, 8000, RATE))["scores"], abs=1e-6)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((2, 16000), dtype=np.float32), "must be 1-D"),
        (np.zeros(100, dtype=np.int16), "ambiguous"),
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.0, np.nan], dtype=np.float32), "NaN"),
        ({"audio": 1}, "cannot take a dict"),
        ("clip.mp3", "not a .wav file"),
    ],
)
def test_bad_inputs_are_typed_errors(converted, bad, match):
    model = bmsdk.load(converted("wav2vec2", "onnx", "fp32").path)
    with pytest.raises(InputError, match=match) as e:
        model.predict(bad)
    assert e.value.fix


def test_bad_options_and_manifests(converted, eval_folder):
    result = converted("wav2vec2", "onnx", "fp32")
    model = bmsdk.load(result.path)
    with pytest.raises(InputError, match="unknown option"):
        model.predict(np.zeros(100, dtype=np.float32), rate=8000)
    with pytest.raises(InputError, match="applies to arrays"):
        model.predict(sorted(eval_folder.glob("*/*.wav"))[0], sampling_rate=8000)
    manifest = json.loads((result.path / "bmsdk.json").read_text())
    for key, value in (("sampling_rate", 0), ("samples", 123), ("do_normalize", "yes"), ("input_name", "x")):
        broken = json.loads(json.dumps(manifest))
        broken["preprocessing"][key] = value
        with pytest.raises(ManifestError, match="preprocessing"):
            Manifest.from_dict(broken)


def test_cli_convert_validate_predict_bench(classifiers, eval_folder, eval_jsonl, tmp_path, capsys):
    out = tmp_path / "kws.bmsdk"
    assert cli(["convert", str(classifiers["wav2vec2"]), "--target", "onnx", "-o", str(out)]) == 0
    assert cli(["validate", str(out), "--eval", str(eval_jsonl)]) == 0
    assert "accuracy" in capsys.readouterr().out
    clip = sorted(eval_folder.glob("*/*.wav"))[0]
    assert cli(["predict", str(out), str(clip)]) == 0
    printed = capsys.readouterr()
    assert printed.out.split("\t")[0] in AUDIO_LABELS, printed
    quick = ["--iterations", "3", "--warmup", "1", "--seconds", "0.5", "--repeats", "1"]
    bench = ["bench", str(classifiers["hubert"]), "--targets", "onnx", "--precisions", "fp32", "--eval"]
    assert cli([*bench, str(eval_folder), *quick, "-o", str(tmp_path / "bench")]) == 0
    report = json.loads((tmp_path / "bench" / "report.json").read_text())
    cell = report["cells"][0]
    assert cell["status"] == "validated", cell.get("reason")
    assert cell["metric"]["accuracy"] == report["source_model"]["metric"]["accuracy"] > 0.5
    assert cell["accuracy_change_pt"] == 0


def test_mil_reverse_and_scatter_nd_equal_torch():
    import torch

    from bmsdk.runtimes.mil_ops import OPS

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    np.testing.assert_array_equal(OPS["reverse"]({"x": x, "axes": [-1]}), torch.from_numpy(x).flip([-1]).numpy())
    np.testing.assert_array_equal(OPS["reverse"]({"x": x, "axes": [0, 2]}), torch.from_numpy(x).flip([0, 2]).numpy())
    data = rng.standard_normal((4, 6)).astype(np.float32)
    indices = np.array([[0, 5], [3, 1], [0, 5]], dtype=np.int32)
    updates = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    rows, cols = torch.from_numpy(indices[:, 0]).long(), torch.from_numpy(indices[:, 1]).long()
    added = torch.from_numpy(data).index_put((rows, cols), torch.from_numpy(updates), accumulate=True).numpy()
    arguments = {"data": data, "indices": indices, "updates": updates}
    np.testing.assert_allclose(OPS["scatter_nd"]({**arguments, "mode": "add"}), added, rtol=0, atol=1e-6)
    unique = {"data": data, "indices": indices[:2], "updates": updates[:2], "mode": "update"}
    put = torch.from_numpy(data).index_put((rows[:2], cols[:2]), torch.from_numpy(updates[:2])).numpy()
    np.testing.assert_array_equal(OPS["scatter_nd"](unique), put)
    slices = OPS["scatter_nd"]({"data": data, "indices": np.array([[2]]), "updates": np.ones((1, 6)), "mode": "update"})
    assert (slices[2] == 1).all() and (slices[[0, 1, 3]] == data[[0, 1, 3]]).all()
