"""Measuring one artifact: cold load, latency per batch size, throughput, RSS growth, end-to-end time, overhead."""

from __future__ import annotations

import os
import time

import numpy as np

from bmsdk.runtimes.litert_io import pad_feeds, pick_bucket, sequence_length, signature_for, to_signature
from bmsdk.runtimes.model import load
from bmsdk.timing import repeated_latency


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; the peak so far elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def batch_feeds(model, probe, batch: int) -> dict[str, np.ndarray]:
    """The probe input repeated `batch` times, through the model's own pre-processing."""
    return model.preprocess([probe] * batch)


def sequence_feeds(feeds: dict[str, np.ndarray], length: int) -> dict[str, np.ndarray]:
    """Text feeds stretched (or cut) to `length` tokens, each row's values repeated cyclically: the same kind of ids,
    masks and types at another length, for timing only."""
    return {k: np.stack([np.resize(row, length) for row in v]) if v.ndim == 2 else v for k, v in feeds.items()}


def sequence_scaling(model, probe, lengths: list[int], warmup: int, iterations: int, seconds: float) -> dict:
    """{length: p50 ms} at batch 1 for each length up to the model's max_length (one timing run each)."""
    most = int(model.manifest.preprocessing.get("max_length") or max(lengths))
    feeds = batch_feeds(model, probe, 1)
    out = {}
    for length in sorted(n for n in lengths if n <= most):
        stretched = sequence_feeds(feeds, length)
        out[str(length)] = repeated_latency(lambda f=stretched: model.run(f), warmup, iterations, seconds, 1)["p50_ms"]
    return out


def raw_runtime_call(model, feeds):
    """A zero-argument call of the underlying runtime without bmsdk in between, where we know how to make one."""
    backend = model.runner
    if getattr(backend, "name", "") == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        if backend.threads:
            options.intra_op_num_threads = int(backend.threads)
            options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(backend.folder / backend.manifest.model_file), options, providers=backend.providers
        )
        return (lambda: session.run(None, feeds)), "onnxruntime InferenceSession.run"
    if getattr(backend, "name", "") == "litert":
        return _raw_litert_call(backend, feeds), "ai-edge-litert signature runner (feeds pre-converted)"
    return (lambda: backend._run(feeds)), f"{getattr(backend, 'name', 'backend')}._run (input checks skipped)"


def _raw_litert_call(backend, feeds):
    """What a user writes by hand: a fresh interpreter's signature runner called on feeds already padded to the
    bucket and cast to the signature's dtypes, one call per row (the model takes one example)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(backend.folder / backend.manifest.model_file), num_threads=backend.threads)
    bucket = pick_bucket(sequence_length(feeds), backend.buckets) if backend.buckets else None
    if bucket is not None:
        feeds = pad_feeds(feeds, bucket, backend.pad_values, backend.inputs)
    signature = backend.signatures[signature_for(bucket)]
    runner = interpreter.get_signature_runner(signature_for(bucket))
    rows = len(next(iter(feeds.values())))
    ready = [{t.tensor: to_signature(feeds[k][i : i + 1], t) for k, t in signature.inputs.items()} for i in range(rows)]
    return lambda: [runner(**row) for row in ready]


GENERATION_TOKENS = 32  # tokens decoded per timed generation


def measure_generation(model, prompt: str, repeats: int, warmup: int = 1) -> dict:
    """Greedy generation from the prompt: time to first token, prefill and decode speed (medians of `repeats`),
    and the growth of resident memory while generating."""
    generator, rss_before = model.generator, rss_bytes()
    options = dict(max_new_tokens=GENERATION_TOKENS, ignore_eos=True, cache="slide")
    for _ in range(warmup):
        model.generate(prompt, **options)
    results = [model.generate(prompt, **options) for _ in range(max(repeats, 1))]
    decode = [r.decode_tokens_per_s for r in results if r.decode_tokens_per_s]
    return {
        "prompt_tokens": len(results[0].prompt_ids),
        "new_tokens": len(results[0].token_ids),
        "cache_length": generator.cache_shape.length,
        "time_to_first_token_ms": 1e3 * float(np.median([r.time_to_first_token_s for r in results])),
        "prefill_tokens_per_s": float(np.median([r.prefill_tokens_per_s for r in results])),
        "decode_tokens_per_s": float(np.median(decode)) if decode else None,
        "rss_delta_mb": (rss_bytes() - rss_before) / 1e6,
    }


def measure_artifact(
    path, probe, batches: list[int], threads: int | None, warmup: int, iterations: int, seconds: float, repeats: int,
    max_noise_pct: float | None = None, max_repeats: int = 10, seq_lengths: list[int] | None = None,
) -> dict:  # fmt: skip
    """Load time, latency per batch (more runs while noisier than `max_noise_pct`), per sequence length (text
    models, `seq_lengths`), end to end, memory, overhead."""

    rss_before = rss_bytes()
    start = time.perf_counter()
    model = load(path, threads=threads)
    load_ms = (time.perf_counter() - start) * 1e3
    try:
        result = {
            "backend": model.backend,
            "device_real": getattr(model.runner, "device_real", True),
            "load_ms": load_ms,
            "latency": {},
        }
        for batch in batches:
            feeds = batch_feeds(model, probe, batch)
            latency = repeated_latency(
                lambda feeds=feeds: model.run(feeds), warmup, iterations, seconds, repeats, max_noise_pct, max_repeats
            )
            latency["throughput_per_s"] = batch * 1e3 / latency["p50_ms"]
            result["latency"][str(batch)] = latency
        if seq_lengths and model.manifest.input_kind == "text":
            result["sequence_latency"] = sequence_scaling(
                model, probe, seq_lengths, max(1, warmup // 2), iterations, seconds
            )
        if model.manifest.input_kind == "generation":
            result["generation"] = measure_generation(model, probe, repeats)
        else:
            result["end_to_end"] = repeated_latency(
                lambda: model.predict(probe), warmup, max(10, iterations // 2), seconds, 1
            )
        result["rss_delta_mb"] = (rss_bytes() - rss_before) / 1e6  # before the overhead check opens a second session
        feeds = batch_feeds(model, probe, batches[0])
        raw, how = raw_runtime_call(model, feeds)
        raw_latency = repeated_latency(raw, warmup, iterations, seconds, repeats)["p50_ms"]
        wrapped = repeated_latency(lambda: model.run(feeds), warmup, iterations, seconds, repeats)["p50_ms"]
        result["overhead"] = {
            "raw": how,
            "raw_p50_ms": raw_latency,
            "bmsdk_p50_ms": wrapped,
            "overhead_ms": wrapped - raw_latency,
            "overhead_pct": 100 * (wrapped - raw_latency) / raw_latency,
        }
        return result
    finally:
        model.close()
