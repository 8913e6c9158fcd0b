"""LiteRT-LM: Google's on-device LLM engine (Android, iOS, desktop), which runs a `.litertlm` bundle with its own
prefill/decode loop, tokenizer and stop tokens.

A tflite text-generation artifact converted with `--litertlm` carries such a bundle beside its step graph. bmsdk
opens it here to check it against the source (greedy text, on LiteRT-LM's CPU engine) and to measure it with the
engine's own benchmark counters; the artifact's step graph itself runs on the `litert` backend.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bmsdk.errors import BackendUnavailableError, RunError
from bmsdk.runtimes.base import short_error

FIX = "pip install 'bmsdk[litert-lm]' (litert-lm-api==0.18.1, Linux x86_64 / macOS arm64)"


class LiteRTLMBundle:
    """One `.litertlm` file on LiteRT-LM's CPU engine; greedy (top-k 1) completions of plain prompts."""

    def __init__(self, path: str | Path, max_tokens: int, benchmark: bool = False):
        try:
            import litert_lm
        except ImportError:
            raise BackendUnavailableError("LiteRT-LM (litert_lm) is not installed", FIX) from None
        self._lm = litert_lm
        litert_lm.set_min_log_severity(litert_lm.LogSeverity.ERROR)
        # the engine caches XNNPACK weights beside the bundle by default: keep the artifact folder as it was signed
        self._cache = tempfile.TemporaryDirectory(prefix="bmsdk-litertlm-cache-")
        try:
            self.engine = litert_lm.Engine(
                str(path),
                backend=litert_lm.Backend.CPU(),
                max_num_tokens=int(max_tokens),
                cache_dir=self._cache.name,
                enable_benchmark=benchmark,
            )
        except Exception as e:  # the engine reports a bad bundle as RuntimeError with its own status text
            self._cache.cleanup()
            raise RunError(f"LiteRT-LM cannot open {path}: {short_error(e)}", "convert again with --litertlm") from e

    def stop_texts(self) -> list[str]:
        """The stop sequences the bundle carries (its eos ids, and the chat template's end of turn), as text."""
        return [text for ids in self.engine.eos_token_ids if (text := self.engine.detokenize(list(ids)))]

    def complete(self, prompt: str, max_new_tokens: int) -> str:
        """The greedy continuation of `prompt` (no chat template), stopping at a stop sequence or after the count."""
        with self._session(max_new_tokens) as session:
            session.run_prefill([prompt])
            return "".join(session.run_decode().texts[:1])

    def measure(self, prompt: str, max_new_tokens: int) -> dict[str, float]:
        """The engine's own counters for one completion: time to first token, prefill and decode tokens/s."""
        with self._session(max_new_tokens) as session:
            session.run_prefill([prompt])
            session.run_decode()
            info = session.get_benchmark_info()
        return {
            "first_token_ms": 1000 * info.time_to_first_token_in_second,
            "prefill_tokens_per_s": info.last_prefill_tokens_per_second,
            "decode_tokens_per_s": info.last_decode_tokens_per_second,
            "decode_tokens": info.last_decode_token_count,
        }

    def _session(self, max_new_tokens: int):
        config = self._lm.SamplerConfig(top_k=1, temperature=0.0)
        try:
            return self.engine.create_session(
                apply_prompt_template=False, sampler_config=config, max_output_tokens=int(max_new_tokens)
            )
        except RuntimeError as e:
            problem = f"LiteRT-LM cannot start a session: {short_error(e)}"
            raise RunError(problem, "convert again with --litertlm") from e

    def close(self) -> None:
        self.engine.close()
        self._cache.cleanup()

    def __enter__(self) -> LiteRTLMBundle:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
