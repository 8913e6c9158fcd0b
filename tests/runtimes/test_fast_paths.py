"""The per-call fast paths of the runtimes (DESIGN §6; issue: no overhead of our own): the compiled feed check accepts
and refuses exactly what check_feeds does, and LiteRT's kept-allocated signature runner gives what ai-edge-litert's
own runner gives, across bucket and batch changes, on a real converted BERT."""

from __future__ import annotations

import numpy as np
import pytest

import bmsdk
from bmsdk.errors import InputError
from bmsdk.manifest import TensorSpec
from bmsdk.runtimes.base import FeedCheck, check_feeds

SPECS = [
    TensorSpec("input_ids", "int64", ["batch", "sequence"], [0, 99], {"sequence": 16}),
    TensorSpec("attention_mask", "int64", ["batch", "sequence"], [0, 1]),
    TensorSpec("pixel", "float32", ["batch", 3]),
]


def feeds(**change):
    base = {
        "input_ids": np.array([[5, 6, 7]]),
        "attention_mask": np.ones((1, 3), np.int64),
        "pixel": np.zeros((1, 3), np.float32),
    }
    return {**base, **change}


BAD = {
    "a missing input": {k: v for k, v in feeds().items() if k != "pixel"},
    "an unexpected input": {**feeds(), "extra": np.zeros(1)},
    "a wrong dtype": feeds(pixel=np.zeros((1, 3), np.float64)),
    "a wrong rank": feeds(pixel=np.zeros((3,), np.float32)),
    "a wrong fixed dim": feeds(pixel=np.zeros((1, 4), np.float32)),
    "disagreeing named dims": feeds(attention_mask=np.ones((1, 4), np.int64)),
    "over the max length": feeds(input_ids=np.zeros((1, 17), np.int64), attention_mask=np.ones((1, 17), np.int64)),
    "an id over the vocabulary": feeds(input_ids=np.array([[5, 100, 7]])),
    "a negative id": feeds(input_ids=np.array([[5, -1, 7]])),
    "a mask value of 2": feeds(attention_mask=np.array([[1, 2, 1]])),
    "an empty input": feeds(input_ids=np.zeros((1, 0), np.int64), attention_mask=np.ones((1, 0), np.int64)),
    "a list for an array": feeds(pixel=[[0.0, 0.0, 0.0]]),
    "not a dict": [np.zeros(1)],
}


@pytest.mark.parametrize("case", list(BAD))
def test_compiled_check_refuses_what_check_feeds_refuses(case):
    with pytest.raises(InputError) as full:
        check_feeds(SPECS, BAD[case])
    with pytest.raises(InputError) as compiled:
        FeedCheck(SPECS)(BAD[case])
    assert str(compiled.value) == str(full.value)  # the same message naming the problem


def test_compiled_check_accepts_valid_feeds_and_subclasses():
    check = FeedCheck(SPECS)
    check(feeds())
    check(feeds(input_ids=np.array([[0, 99, 1]])))  # the range ends are valid
    memmap_like = np.zeros((1, 3), np.float32).view(np.ma.MaskedArray)  # an ndarray subclass: the full check decides
    check(feeds(pixel=memmap_like))


@pytest.fixture(scope="module")
def bert_tflite(converted, bert_classifier_dir):
    return bmsdk.load(converted("bert-tflite-fast", bert_classifier_dir, target="tflite").path)


def test_kept_runner_equals_the_stock_runner(bert_tflite):
    backend = bert_tflite.runner
    assert all(r.fast for r in backend.runners.values())  # the kept-allocated path is the one in use
    texts = ["a short one", "a somewhat longer sentence with more words in it than the first", "mid length text"]
    batches = [texts[:1], texts[1:2], texts, texts[:1], texts[2:]]  # bucket and batch change between calls
    for batch in batches:
        feeds_ = bert_tflite.preprocess(batch)
        got = bert_tflite.run(feeds_)["logits"]
        for row, text in enumerate(batch):  # each row through a fresh stock runner
            one = bert_tflite.preprocess([text])
            want = _stock_logits(backend, one)
            assert np.allclose(got[row], want[0], atol=1e-5), text


def _stock_logits(backend, feeds_):
    from ai_edge_litert.interpreter import Interpreter

    from bmsdk.runtimes.litert_io import pad_feeds, pick_bucket, sequence_length, signature_for, to_signature

    bucket = pick_bucket(sequence_length(feeds_), backend.buckets)
    padded = pad_feeds(feeds_, bucket, backend.pad_values, backend.inputs)
    signature = backend.signatures[signature_for(bucket)]
    runner = Interpreter(model_path=str(backend.folder / backend.manifest.model_file)).get_signature_runner(
        signature_for(bucket)
    )
    out = runner(**{t.tensor: to_signature(padded[k], t) for k, t in signature.inputs.items()})
    return out[signature.outputs["logits"].tensor]


@pytest.mark.parametrize("dtype,zero_point", [("int8", -95), ("uint8", 128)])
def test_signature_feeder_quantizes_exactly_as_to_signature(dtype, zero_point):
    from bmsdk.runtimes.litert_io import SignatureFeeder, to_signature
    from bmsdk.sections import QuantParams, SignatureTensor

    tensor = SignatureTensor(
        tensor="x", dtype=dtype, shape=[1, 4, 8], quantization=QuantParams(scale=0.0127, zero_point=zero_point)
    )
    feeder = SignatureFeeder(tensor)
    rng = np.random.default_rng(0)
    halfway = (np.arange(32, dtype=np.float32).reshape(1, 4, 8) + 0.5) * np.float32(0.0127)  # ties round to even
    for value in [rng.normal(0, 2, (1, 4, 8)).astype(np.float32), halfway, np.full((1, 4, 8), 1e6, np.float32)]:
        want = to_signature(value, tensor)
        got = feeder(value)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    other = rng.normal(0, 1, (2, 4, 8)).astype(np.float32)  # a new shape gets its own buffers
    assert np.array_equal(feeder(other), to_signature(other, tensor))


def test_signature_feeder_casts_ids_and_refuses_out_of_range_ones():
    from bmsdk.runtimes.litert_io import SignatureFeeder
    from bmsdk.sections import SignatureTensor

    tensor = SignatureTensor(tensor="ids", dtype="int32", shape=[1, 4])
    got = SignatureFeeder(tensor)(np.array([[1, 2, 3, 4]]))
    assert got.dtype == np.int32 and got.tolist() == [[1, 2, 3, 4]]
    with pytest.raises(InputError, match="int32 range"):
        SignatureFeeder(tensor)(np.array([[1, 2**40, 3, 4]]))
