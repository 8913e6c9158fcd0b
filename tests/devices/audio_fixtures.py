"""Audio-classification vectors for the device libraries' tests (test_android_jvm.py, test_ios_swift.py).

The tiny trained wav2vec2 (no attention mask: each padded row normalised whole) and HuBERT (attention mask:
normalised over the real samples, padding left at padding_value) of task_models.audio, converted to ONNX fp32
with a clip of CLIP samples (1/8 s, which keeps the JSON small), one folder each (audio-wav2vec2, audio-hubert) with
bmsdk.json, `bmsdk export-vectors`' vectors.json (clips of the model's length) and audio.json: waveforms of other
lengths (shorter: padded; longer: trimmed; constant and silent ones: variance 0), each with the feeds bmsdk's
AudioPreprocessor made from it, the model's raw outputs and what `predict()` returned. The device tests pre-process
the waveform themselves (the feeds must match within float tolerance) and classify the recorded outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from vector_folders import float32s, made_once, write_by_hand, write_vectors_folder

from bmsdk.benchmarks.task_models.audio import AUDIO_LABELS, build_classifier, clip

CLIP = 2000  # samples of the converted models' input (16 kHz)
LENGTHS = (37, 1200, CLIP - 1, CLIP, CLIP + 1, 5000)


def waveforms(seed: int = 4) -> list[np.ndarray]:
    """Clips of LENGTHS cut from the synthetic keyword set, then a constant and a silent one."""

    rng = np.random.default_rng(seed)
    cut = [clip(AUDIO_LABELS[i % 4], rng)[:n] for i, n in enumerate(LENGTHS)]
    return cut + [np.full(500, 0.25, dtype=np.float32), np.zeros(CLIP // 2, dtype=np.float32)]


def audio_cases(model, clips: list[np.ndarray]) -> list[dict]:
    cases = []
    for wave in clips:
        feeds = model.preprocess([wave])
        outputs = model.run(feeds)
        cases.append(
            {
                "waveform": float32s(wave),
                "sampling_rate": model.manifest.preprocessing["sampling_rate"],
                "feeds": {k: float32s(v[0]) if v.dtype.kind == "f" else v[0].tolist() for k, v in feeds.items()},
                "outputs": {k: float32s(v[0]) for k, v in outputs.items()},
                "prediction": model.predict(wave),
            }
        )
    return cases


def write_audio_folders(root: Path, work: Path, archs=("wav2vec2", "hubert"), max_cases: int | None = 3) -> list[Path]:
    """audio-<arch> folders under `root`; the models are built and converted once per process."""
    return made_once(f"audio-{'-'.join(archs)}", root, lambda: _write(root, work, archs, max_cases))


def _write(root: Path, work: Path, archs, max_cases) -> list[Path]:

    import bmsdk

    folders = []
    for arch in archs:
        source = build_classifier(arch, work / f"audio-{arch}-source")
        made = bmsdk.convert(
            str(source), target="onnx", output=work / f"audio-{arch}.bmsdk", input_shapes={"input_values": [1, CLIP]}
        )
        folder = write_vectors_folder(made.path, root / f"audio-{arch}", max_cases)
        with bmsdk.load(made.path) as model:
            cases = audio_cases(model, waveforms())
        (folder / "audio.json").write_text(json.dumps({"task": model.manifest.task, "cases": cases}) + "\n")
        folders.append(folder)
    return folders


if __name__ == "__main__":  # refresh the committed Swift fixture: python tests/devices/audio_fixtures.py DIR
    write_by_hand(lambda root, work: write_audio_folders(root, work, ("hubert",), max_cases=1))
