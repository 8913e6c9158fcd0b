"""The generation loop over a step graph with a static KV cache: prefill, decode, sampling, streaming text.

The contract of a text-generation artifact (every target exports the same step graph):
- inputs: `input_ids` [B, T] and `position_ids` [B, T] (n .. n+T-1, n = valid cache slots), `attention_mask`
  [B, C+T] (1 for the n valid slots, 0 for the other C-n, then 1 for each real new token) and `past_key_<i>`,
  `past_value_<i>` [B, H, C, D] for each layer i;
- outputs: `logits` [B, T, V] and `present_key_<i>`, `present_value_<i>` [B, H, T, D]: the new tokens' keys and
  values, which the caller writes into slots n .. n+T-1.
Runtimes that take fixed lengths only (LiteRT) list them; a prefill chunk is padded on the right to one of them.
numpy and tokenizers only: this runs inside apps, with no torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bmsdk.errors import InputError, UnsupportedError

from .tokenizer import load_tokenizer

Step = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
CACHE_POLICIES = ("refuse", "slide")


class CacheFullError(InputError):
    """The KV cache window (or the model's positions) cannot take the tokens asked for."""


@dataclass(frozen=True)
class CacheShape:
    """What the step graph's cache holds: layers, KV heads, slots (the context window) and head size."""

    layers: int
    kv_heads: int
    length: int
    head_dim: int

    @classmethod
    def from_config(cls, pre: dict) -> CacheShape:
        return cls(int(pre["layers"]), int(pre["kv_heads"]), int(pre["cache_length"]), int(pre["head_dim"]))

    def names(self) -> list[str]:
        return [f"past_{kind}_{i}" for i in range(self.layers) for kind in ("key", "value")]


class KVCache:
    """The static window of C slots per layer; `valid` slots are filled, from slot 0 on."""

    def __init__(
        self, shape: CacheShape, batch: int = 1, policy: str = "refuse", dtype=np.float32, max_positions: int = 0
    ):
        if policy not in CACHE_POLICIES:
            raise InputError(f"unknown cache policy {policy!r}", f"use one of: {', '.join(CACHE_POLICIES)}")
        self.shape, self.policy = shape, policy
        size = (batch, shape.kv_heads, shape.length, shape.head_dim)
        self.tensors = {name: np.zeros(size, dtype) for name in shape.names()}
        self.valid = 0
        self.position = 0  # the position of the next token (keeps growing when the window slides)
        self.max_positions = max_positions or 2**62

    def make_room(self, count: int) -> None:
        """Before writing `count` new entries: refuse past the window, or drop the oldest slots."""
        if self.position + count > self.max_positions:
            raise CacheFullError(
                f"the model has positions for {self.max_positions} tokens and {self.position + count} are needed",
                "generate fewer tokens or use a shorter prompt (sliding the cache does not add positions)",
            )
        free = self.shape.length - self.valid
        if count <= free:
            return
        if self.policy == "refuse" or count > self.shape.length:
            raise CacheFullError(
                f"the KV cache is full: {self.valid} of {self.shape.length} slots used and {count} more needed",
                "generate fewer tokens, use a shorter prompt, pass cache='slide', "
                "or convert again with a longer --max-length",
            )
        drop = count - free
        for tensor in self.tensors.values():
            tensor[:, :, : self.valid - drop] = tensor[:, :, drop : self.valid]
        self.valid -= drop

    def feeds(self, ids: np.ndarray, real: int) -> dict[str, np.ndarray]:
        """The step's feeds for a chunk of ids [B, T] of which the first `real` are tokens (the rest padding)."""
        batch, width = ids.shape
        mask = np.zeros((batch, self.shape.length + width), np.int64)
        mask[:, : self.valid] = 1
        mask[:, self.shape.length : self.shape.length + real] = 1
        positions = np.arange(self.position, self.position + width, dtype=np.int64)
        return {
            "input_ids": ids.astype(np.int64, copy=False),
            "position_ids": np.broadcast_to(positions, (batch, width)).copy(),
            "attention_mask": mask,
            **self.tensors,
        }

    def write(self, outputs: dict[str, np.ndarray], real: int) -> None:
        """Store the first `real` new entries of each layer's presents in the next slots."""
        for name, tensor in self.tensors.items():
            tensor[:, :, self.valid : self.valid + real] = outputs[name.replace("past_", "present_", 1)][:, :, :real]
        self.valid += real
        self.position += real


@dataclass
class Sampling:
    """How the next token is picked: greedy when temperature is 0; else temperature, top-k and top-p sampling."""

    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self):
        if not (np.isfinite(self.temperature) and self.temperature >= 0):
            raise InputError(f"temperature must be >= 0, got {self.temperature}", "pass 0 for greedy decoding")
        if self.top_k is not None and self.top_k < 1:
            raise InputError(f"top_k must be >= 1, got {self.top_k}", "leave it out to sample from every token")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}", "e.g. 0.9; leave it out for no nucleus")
        self.rng = np.random.default_rng(self.seed)

    def pick(self, logits: np.ndarray) -> int:
        logits = logits.astype(np.float64)
        if self.temperature == 0:
            return int(np.argmax(logits))
        logits = logits / self.temperature
        if self.top_k is not None and self.top_k < logits.size:
            cutoff = np.partition(logits, -self.top_k)[-self.top_k]
            logits = np.where(logits < cutoff, -np.inf, logits)
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        if self.top_p is not None and self.top_p < 1:
            order = np.argsort(-probs)
            keep = np.cumsum(probs[order]) - probs[order] < self.top_p  # the smallest set reaching top_p
            kept = np.zeros_like(probs)
            kept[order[keep]] = probs[order[keep]]
            probs = kept / kept.sum()
        return int(self.rng.choice(probs.size, p=probs))


class TextStream:
    """Text of the generated ids as it grows, never cutting a character that spans several tokens in half."""

    def __init__(self, tokenizer, skip_special: bool = True):
        self.tokenizer, self.skip_special = tokenizer, skip_special
        self.ids: list[int] = []
        self.emitted = ""

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=self.skip_special)
        if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for the next token
            return ""
        new, self.emitted = text[len(self.emitted) :] if text.startswith(self.emitted) else text, text
        return new

    @property
    def text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=self.skip_special)


@dataclass
class GenerationResult:
    text: str
    token_ids: list[int]
    prompt_ids: list[int]
    finish_reason: str  # "length", "eos", "stop"
    time_to_first_token_s: float
    prefill_tokens_per_s: float
    decode_tokens_per_s: float | None
    timings: dict = field(default_factory=dict)


class Generator:
    """Generation over any `step(feeds) -> outputs` that follows the contract above (a Backend's run, the source)."""

    def __init__(self, step: Step, pre: dict, tokenizer, prefill_lengths: Sequence[int] | None = None):
        self.step = step
        self.cache_shape = CacheShape.from_config(pre)
        self.tokenizer = tokenizer
        self.eos_ids = set(int(i) for i in pre.get("eos_ids") or [])
        self.max_positions = int(pre.get("max_positions") or 0)
        self.pad_id = int(pre.get("pad_id") or 0)
        self.prefill_lengths = sorted(set(prefill_lengths)) if prefill_lengths else None
        self.chat_template = pre.get("chat_template")
        self.bos_token, self.eos_token = pre.get("bos_token"), pre.get("eos_token")

    # --- prompts ---------------------------------------------------------------
    def encode(self, prompt: str | Sequence[dict]) -> list[int]:
        if isinstance(prompt, str):
            text = prompt
        elif isinstance(prompt, (list, tuple)) and all(isinstance(m, dict) for m in prompt) and prompt:
            text = self.render_chat(prompt)
        else:
            raise InputError(
                f"generate() cannot take {type(prompt).__name__} as a prompt",
                "pass a string, or chat messages [{'role': 'user', 'content': '...'}]",
            )
        ids = self.tokenizer.encode(text).ids
        if not ids:
            raise InputError("the prompt encodes to no tokens", "pass a non-empty prompt")
        return list(ids)

    def render_chat(self, messages: Sequence[dict]) -> str:
        if not self.chat_template:
            raise UnsupportedError(
                "this model has no chat template (its tokenizer_config.json had none)", "pass the prompt as a string"
            )
        try:
            from jinja2.sandbox import ImmutableSandboxedEnvironment
        except ModuleNotFoundError:
            raise UnsupportedError("chat templates need the 'jinja2' package", "pip install jinja2") from None
        template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(self.chat_template)
        return template.render(
            messages=list(messages), add_generation_prompt=True, bos_token=self.bos_token or "", eos_token=""
        )

    # --- the loop --------------------------------------------------------------
    def prefill(self, cache: KVCache, ids: Sequence[int]) -> np.ndarray:
        """Run the prompt through the model chunk by chunk; the logits of its last token."""
        ids = np.asarray(ids, np.int64)
        longest = self.prefill_lengths[-1] if self.prefill_lengths else len(ids)
        start, logits = 0, None
        while start < len(ids):
            chunk = ids[start : start + longest]
            cache.make_room(len(chunk))  # padding is computed but never stored
            outputs = self.step(cache.feeds(self._padded(chunk), len(chunk)))
            cache.write(outputs, len(chunk))
            logits = outputs["logits"][0, len(chunk) - 1]
            start += len(chunk)
        return logits

    def _padded(self, ids) -> np.ndarray:
        """[1, T] ids, right-padded to an accepted length (decoding too, where a runtime takes no length 1)."""
        padded = np.full((1, self._width(len(ids))), self.pad_id, np.int64)
        padded[0, : len(ids)] = ids
        return padded

    def _width(self, count: int) -> int:
        if not self.prefill_lengths:
            return count
        return next(n for n in self.prefill_lengths if n >= count)

    def tokens(
        self,
        prompt_ids: Sequence[int],
        max_new_tokens: int,
        sampling: Sampling,
        cache_policy: str = "refuse",
        timings: dict | None = None,
        ignore_eos: bool = False,
    ) -> Iterator[int]:
        """The generated token ids one by one (stopping at an eos id, unless ignored, or after max_new_tokens)."""
        if max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {max_new_tokens}", "ask for at least one token")
        timings = timings if timings is not None else {}
        cache = KVCache(self.cache_shape, policy=cache_policy, max_positions=self.max_positions)
        if len(prompt_ids) > self.cache_shape.length and cache_policy == "refuse":
            raise CacheFullError(
                f"the prompt has {len(prompt_ids)} tokens but the KV cache holds {self.cache_shape.length}",
                "shorten the prompt, pass cache='slide', or convert again with a longer --max-length",
            )
        start = time.perf_counter()
        logits = self.prefill(cache, prompt_ids)
        token = sampling.pick(logits)
        timings["prefill_s"] = timings["first_token_s"] = time.perf_counter() - start
        timings["decode_steps"] = 0
        decode_start = time.perf_counter()
        for produced in range(1, max_new_tokens + 1):
            yield token
            if (token in self.eos_ids and not ignore_eos) or produced == max_new_tokens:
                return
            cache.make_room(1)
            outputs = self.step(cache.feeds(self._padded([token]), 1))
            cache.write(outputs, 1)
            token = sampling.pick(outputs["logits"][0, 0])
            timings["decode_steps"] += 1
            timings["decode_s"] = time.perf_counter() - decode_start

    def stream(
        self,
        prompt: str | Sequence[dict],
        max_new_tokens: int = 64,
        sampling: Sampling | None = None,
        stop: Sequence[str] | str | None = None,
        cache_policy: str = "refuse",
        result: dict | None = None,
        ignore_eos: bool = False,
    ) -> Iterator[str]:
        """Text pieces as tokens arrive; `result` (if given) receives the GenerationResult at the end."""
        prompt_ids = self.encode(prompt)
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        text, timings, reason = TextStream(self.tokenizer), {}, "length"
        pending = ""  # text held back while it could be the start of a stop string
        tokens = self.tokens(prompt_ids, max_new_tokens, sampling or Sampling(), cache_policy, timings, ignore_eos)
        for token in tokens:
            if token in self.eos_ids and not ignore_eos:
                reason = "eos"
                break
            pending += text.push(token)
            hit = _first_stop(pending, stops)
            if hit is not None:
                pending, reason = pending[:hit], "stop"
                break
            safe = len(pending) - _held(pending, stops)
            if safe:
                yield pending[:safe]
                pending = pending[safe:]
        if pending:
            yield pending
        if result is not None:
            result["result"] = self._result(text, prompt_ids, reason, timings, stops)

    def _result(self, text: TextStream, prompt_ids, reason: str, timings: dict, stops) -> GenerationResult:
        full = text.text
        hit = _first_stop(full, stops)
        steps, decode_s = timings.get("decode_steps", 0), timings.get("decode_s")
        return GenerationResult(
            text=full[:hit] if hit is not None else full,
            token_ids=list(text.ids),
            prompt_ids=list(prompt_ids),
            finish_reason=reason,
            time_to_first_token_s=timings["first_token_s"],
            prefill_tokens_per_s=len(prompt_ids) / max(timings["prefill_s"], 1e-9),
            decode_tokens_per_s=steps / decode_s if steps and decode_s else None,
            timings=timings,
        )


def _first_stop(text: str, stops: list[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def _held(text: str, stops: list[str]) -> int:
    """How many trailing characters could still grow into a stop string."""
    return max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)


class GenerationPreprocessor:
    """Texts -> prefill feeds for a batch (an empty cache, each text from position 0, padded on the right).

    What calibration, the samples and perplexity on --eval data run; `generate()` builds its own feeds per step.
    """

    def __init__(self, config: dict, folder: Path, inputs=None):
        self.cache_shape = CacheShape.from_config(config)
        self.pad_id = int(config.get("pad_id") or 0)
        self.tokenizer = load_tokenizer(folder / config["tokenizer"])
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.cache_shape.length)

    def encode(self, texts: Sequence[str]) -> list[np.ndarray]:
        if not (isinstance(texts, (list, tuple, np.ndarray)) and all(isinstance(t, str) for t in texts)):
            raise InputError("text input must be a list of strings", "pass generate('prompt') or a list of strings")
        return [np.asarray(e.ids, np.int64) for e in self.tokenizer.encode_batch(list(texts))]

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self.encode(texts)
        width = max(max((len(r) for r in rows), default=1), 1)
        ids = np.full((len(rows), width), self.pad_id, np.int64)
        mask = np.zeros((len(rows), self.cache_shape.length + width), np.int64)
        for r, row in enumerate(rows):
            ids[r, : len(row)] = row
            mask[r, self.cache_shape.length : self.cache_shape.length + len(row)] = 1
        cache = KVCache(self.cache_shape, batch=len(rows))
        feeds = cache.feeds(ids, width)
        feeds["attention_mask"] = mask
        return feeds


def token_scores(logits: np.ndarray, feeds: dict[str, np.ndarray], width: int) -> np.ndarray:
    """Per text: [summed negative log-likelihood of each next token, tokens scored, then the argmax prediction at
    each position (-1 past the text)], `width` + 1 columns. Perplexity and next-token agreement come from these."""
    ids = feeds["input_ids"]
    real = feeds["attention_mask"][:, -ids.shape[1] :].astype(bool)
    rows = np.full((len(ids), 2 + width - 1), -1.0)
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    logprob = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    for r in range(len(ids)):
        n = int(real[r].sum())
        targets = ids[r, 1:n]
        rows[r, 0] = -logprob[r, np.arange(n - 1), targets].sum() if n > 1 else 0.0
        rows[r, 1] = n - 1
        rows[r, 2 : 2 + n - 1] = logits[r, : n - 1].argmax(-1)
    return rows


class GenerationStream:
    """The text pieces of one generation as they arrive; `.result` (a GenerationResult) once it is exhausted."""

    def __init__(self, generator: Generator, prompt, **kwargs):
        self._holder: dict = {}
        self._pieces = generator.stream(prompt, result=self._holder, **kwargs)

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    @property
    def result(self) -> GenerationResult:
        if "result" not in self._holder:
            raise InputError("the generation has not finished", "iterate over the stream to its end first")
        return self._holder["result"]
