"""The demo's real image model end to end: ccexam's pretrained MNIST CNN on the official MNIST test set."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import bmsdk
from bmsdk.benchmarks import zoo


def test_mnist_test_set_is_the_official_one(mnist):
    with np.load(mnist[0]) as data:
        assert (
            data["x"].shape == (2000, 28, 28)
            and data["x"].dtype == np.uint8
            and set(data["y"].tolist()) == set(range(10))
        )


def test_mnist_pickle_loader_refuses_anything_but_arrays(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    payload = pickle.dumps(Evil())
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        zoo._NumpyOnlyUnpickler(__import__("io").BytesIO(payload)).load()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_ccexam_cnn_converts_and_keeps_accuracy(tmp_path, mnist, precision):
    test, calib = mnist
    result = bmsdk.convert(
        "bmsdk.benchmarks.zoo:mnist_cnn",
        target="onnx",
        precision=precision,
        eval_data=test,
        calibration=calib,
        output=tmp_path / f"mnist-{precision}.bmsdk",
    )
    v = result.manifest.validation
    assert v.passed is True
    ev = v.eval
    assert ev.n == 2000
    assert ev.source.accuracy > 0.98  # the pretrained CNN, measured through bmsdk's own pre-processing
    assert abs(ev.delta.accuracy) <= 0.005
    if precision == "fp32":
        assert ev.top1_agreement == 1.0 and v.samples.max_rel_error < 1e-4
    else:
        assert result.manifest.compression.quantization.scheme == "static-qdq"
        assert ev.top1_agreement > 0.99
    with bmsdk.load(result.path) as model:
        with np.load(test) as data:
            images, labels = data["x"][:16], data["y"][:16]
        predicted = [int(p["label"]) for p in model.predict(list(images))]
    assert np.mean(np.asarray(predicted) == labels) >= 0.9


@pytest.mark.slow
def test_tweet_llama_loads_generates_and_beats_a_unigram_model():
    import json
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, test, calib = zoo.tweet_llama_checkpoint()
    training = json.loads((folder / "training.json").read_text())
    assert training["eval_perplexity"] < 0.5 * training["unigram_perplexity"]
    texts = {
        name: [json.loads(line)["text"] for line in open(path, encoding="utf-8")]
        for name, path in [("test", test), ("calib", calib)]
    }
    assert len(texts["test"]) == zoo.LM_EVAL_SIZE and len(texts["calib"]) == zoo.CALIBRATION_SIZE
    train, held_out, calibration = zoo._tweet_texts()
    assert texts["test"] == held_out and texts["calib"] == calibration
    assert not set(train) & set(held_out) and not set(train) & set(calibration) and not set(held_out) & set(calibration)
    assert zoo.resolve("zoo:tweet-llama") == str(folder) and zoo.resolve("zoo:tweet-text-test") == str(test)

    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()
    nll, count = 0.0, 0  # the held-out perplexity measured again through the loaded checkpoint (first 100 tweets)
    with torch.inference_mode():
        for text in texts["test"][:100]:
            ids = torch.tensor([tokenizer(text)["input_ids"][: zoo.LLAMA_MAX_TOKENS - 1] + [tokenizer.eos_token_id]])
            nll += model(input_ids=ids, labels=ids).loss.item() * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    assert math.exp(nll / count) < 0.5 * training["unigram_perplexity"]
    prompt = tokenizer("I love", return_tensors="pt")
    assert prompt["input_ids"][0, 0].item() == tokenizer.bos_token_id == model.config.bos_token_id
    generated = model.generate(**prompt, max_new_tokens=16, do_sample=False)
    new = generated[0, prompt["input_ids"].shape[1] :]
    assert len(new) > 0
    text = tokenizer.decode(generated[0], skip_special_tokens=True)
    assert text.startswith("I love") and len(text) > len("I love")
    assert "<|assistant|>" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
