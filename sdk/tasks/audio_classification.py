"""audio-classification: a waveform classifier (keyword spotting, sound events); predict() gives label and scores.

Recognised from Hugging Face audio checkpoints with a classification head: wav2vec2, HuBERT, WavLM, Data2VecAudio,
UniSpeech(-SAT), SEW(-D) `*ForSequenceClassification`. Text models share that suffix, so the checkpoint must also
be an audio model: its config's `model_type` is one of those audio encoders, or its preprocessor_config.json names
a `feature_extractor_type`. The feature extractor must be `Wav2Vec2FeatureExtractor` (raw waveform in); models that
read spectrograms (AST's kaldi fbank, Whisper's log-mel) are refused.

Input: `input_values` [batch, samples] float32 (plus `attention_mask` [batch, samples] when the feature extractor
returns one), at a fixed clip length (default one second at the model's sampling rate; `--input-shape
input_values=1x32000` for another) recorded in the manifest's pre-processing with the sampling rate, do_normalize
and padding_value. Longer clips are trimmed, shorter ones padded, then each clip is normalised to zero mean and unit
variance (1e-7 added to the variance) exactly as transformers' Wav2Vec2FeatureExtractor does.

predict() takes a PCM WAV path (8/16/32-bit; several channels are averaged; resampled to the model's rate), a 1-D
float array of samples in [-1, 1] at the model's rate (or at `sampling_rate=`: resampled with scipy), or a list of
them. Evaluation data (`--eval`, `--calibration`): a folder of class sub-folders of .wav files
(`DATA/<label>/<clip>.wav`), or JSON lines `{"audio": "clips/yes_01.wav", "label": "yes"}` (paths relative to the
JSONL file's folder). Metrics: accuracy and macro-F1, and top-1 agreement with the source.
"""

from __future__ import annotations

from .classification import Classification

# model_type of the transformers encoders that read raw waveforms through Wav2Vec2FeatureExtractor
AUDIO_MODEL_TYPES = (
    "wav2vec2",
    "wav2vec2-conformer",
    "hubert",
    "wavlm",
    "data2vec-audio",
    "unispeech",
    "unispeech-sat",
    "sew",
    "sew-d",
)
# their class-name prefixes, for when only `architectures` is known
AUDIO_PREFIXES = ("Wav2Vec2", "Hubert", "WavLM", "Data2VecAudio", "UniSpeech", "SEW")
WAVEFORM_EXTRACTORS = ("Wav2Vec2FeatureExtractor",)


def is_audio_checkpoint(architectures, config: dict | None) -> bool:
    """Whether a checkpoint is an audio model: by its config's model_type or feature extractor where the config is
    known, by its class names otherwise."""
    config = config or {}
    preprocessor = config.get("preprocessor") or {}
    if config.get("model_type") in AUDIO_MODEL_TYPES or preprocessor.get("feature_extractor_type"):
        return True
    if "model_type" in config:
        return False
    return any(a.startswith(AUDIO_PREFIXES) for a in architectures)


class AudioClassification(Classification):
    name = "audio-classification"
    hf_suffixes = ("ForSequenceClassification", "ForAudioClassification")
    hf_auto_class = "AutoModelForAudioClassification"
    hf_inputs = "audio"
    priority = 1  # before text-classification, which takes every other *ForSequenceClassification
    predict_options = ("sampling_rate",)

    @classmethod
    def detects(cls, architectures, config=None):
        return super().detects(architectures, config) and is_audio_checkpoint(architectures, config)
