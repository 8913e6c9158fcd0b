"""The `.litertlm` bundle of a tflite text-generation artifact (`--litertlm`): what LiteRT-LM's engine runs on
Android, iOS and desktop, beside the artifact's own step graph (which bmsdk's runtimes and example apps run).

LiteRT-LM expects litert-torch's generative layout (`prefill_<n>` and `decode` signatures over its own cache
tensors, the tokenizer and stop tokens in the bundle), not bmsdk's step graph, so the bundle is a second export of
the same weights through `litert_torch.generative.export_hf`. The model is saved from memory (safetensors), so a
pruned source is bundled pruned. The bundle is then checked on LiteRT-LM's CPU engine: greedy text from the sample
prompts against the source's (DESIGN.md §5).
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import importlib.util
import io
import shutil
import sys
import tempfile
import types
from pathlib import Path

from bmsdk.converters.sources.loader import Source
from bmsdk.errors import BmsdkError, ConversionError, UnsupportedError
from bmsdk.runtimes.litert_lm import LiteRTLMBundle
from bmsdk.sections import BundleCheck, LiteRTLMInfo
from bmsdk.tasks.generation import Sampling
from bmsdk.tasks.text_generation import GREEDY_EXACT
from bmsdk.versions import package_version

BUNDLE_FILE = "model.litertlm"
# bmsdk precision -> litert-torch's quantization recipe (ai-edge-quantizer); the bundle has no static int8
RECIPES = {"fp32": "none", "int8-dynamic": "dynamic_wi8_afp32"}
NEW_TOKENS = 16


def check_request(source: Source, precision: str) -> None:
    if source.preprocessing.get("kind") != "generation":
        raise UnsupportedError("--litertlm bundles text-generation models only", "leave --litertlm out")
    if precision not in RECIPES:
        raise UnsupportedError(
            f"the .litertlm bundle is not built in {precision}", f"use --precision {' or '.join(RECIPES)}"
        )


def export_bundle(source: Source, folder: Path, precision: str, prefill_lengths: list[int]) -> LiteRTLMInfo:
    """Write `folder/model.litertlm` for the source's causal LM with its cache length and the prefill lengths."""
    cache_length = int(source.preprocessing["cache_length"])
    prefill = sorted({n for n in prefill_lengths if 1 < n <= cache_length}) or [min(8, cache_length)]
    with tempfile.TemporaryDirectory(prefix="bmsdk-litertlm-", dir=folder.parent) as tmp:
        checkpoint = Path(tmp) / "checkpoint"
        _save_checkpoint(source, checkpoint)
        chatter = io.StringIO()  # the exporter prints its configuration and progress: kept for an error message only
        with (
            _tensorflow_schema_stand_in(),
            _recursion_limit_kept(),
            contextlib.redirect_stdout(chatter),
            contextlib.redirect_stderr(chatter),
        ):
            from litert_torch.generative.export_hf import export as export_hf

            try:
                export_hf.export(
                    model=str(checkpoint),
                    output_dir=str(Path(tmp) / "out"),
                    prefill_lengths=prefill,
                    cache_length=cache_length,
                    quantization_recipe=RECIPES[precision],
                    bundle_litert_lm=True,
                )
            except Exception as e:  # litert-torch raises many types
                reason = str(e).strip().splitlines()[0][:400] if str(e).strip() else type(e).__name__
                raise ConversionError(
                    f"litert-torch's generative export (the .litertlm bundle) failed: {reason}",
                    "convert without --litertlm to get the step graph alone",
                ) from e
        shutil.move(str(Path(tmp) / "out" / BUNDLE_FILE), folder / BUNDLE_FILE)
    return LiteRTLMInfo(
        file=BUNDLE_FILE,
        quantization_recipe=RECIPES[precision],
        cache_length=cache_length,
        prefill_lengths=prefill,
        litert_torch=package_version("litert-torch"),
    )


def check_bundle(folder: Path, info: LiteRTLMInfo, source_generator, prompts: list[list[int]], precision: str):
    """Greedy text of the bundle on LiteRT-LM's engine against the source's, prompt by prompt (fp32 must match)."""
    tokenizer = source_generator.tokenizer
    texts = [tokenizer.decode(p, skip_special_tokens=True) for p in prompts]
    texts = [t for t in texts if t.strip()]
    required = precision in GREEDY_EXACT
    try:
        bundle = LiteRTLMBundle(folder / info.file, max_tokens=info.cache_length)
    except BmsdkError as e:
        return BundleCheck(file=info.file, prompts=len(texts), validated=False, reason=str(e), required=required)
    identical, first_difference = 0, None
    with bundle:
        stops = bundle.stop_texts()
        for text in texts:
            ids = source_generator.encode(text)[: info.cache_length // 2]
            count = max(1, min(NEW_TOKENS, info.cache_length - len(ids)))
            want = tokenizer.decode(list(source_generator.tokens(ids, count, Sampling())), skip_special_tokens=True)
            got = bundle.complete(text, count)
            if same_text(want, got, stops):
                identical += 1
            elif first_difference is None:
                first_difference = f"prompt {text!r}: source {want!r}, bundle {got!r}"
    return BundleCheck(
        file=info.file,
        backend="litert-lm (CPU engine)",
        validated=True,
        prompts=len(texts),
        identical=identical,
        required=required,
        passed=identical == len(texts) or not required,
        first_difference=first_difference,
    )


def same_text(want: str, got: str, stops: list[str]) -> bool:
    """Equal, or the bundle stopped at one of its stop sequences (the source's loop stops at eos only), or held back
    the start of one when the token count ran out (a trailing space may begin " \n")."""
    if want == got:
        return True
    rest = want[len(got) :] if want.startswith(got) else None
    return rest is not None and any(rest.startswith(stop) or stop.startswith(rest) for stop in stops)


def _save_checkpoint(source: Source, checkpoint: Path) -> None:
    """The in-memory causal LM (pruned or not) as safetensors with the source's tokenizer and generation files."""
    model = next((m for m in source.module.modules() if hasattr(m, "save_pretrained")), None)  # under the wrappers
    if model is None:
        raise UnsupportedError(
            "--litertlm needs a Hugging Face causal LM checkpoint", "convert the model's save_pretrained folder"
        )
    model.save_pretrained(str(checkpoint))
    for path in map(Path, source.files.values()):  # keyed by their place in the artifact (tokenizer/...)
        if path.is_file() and not (checkpoint / path.name).exists():
            shutil.copy2(path, checkpoint / path.name)


@contextlib.contextmanager
def _recursion_limit_kept():
    """litert-converter raises the interpreter's recursion limit to 100000 when imported; left so, a deeply nested
    file parsed later in the same process overflows the C stack (a crash, not a RecursionError)."""
    limit = sys.getrecursionlimit()
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


@contextlib.contextmanager
def _tensorflow_schema_stand_in():
    """litert-torch's generative export imports `tensorflow.lite.python.schema_py_generated` at import time (a model
    extension it never uses here). Without TensorFlow, point that name at ai-edge-litert's copy of the same schema.
    torch._dynamo is imported first: it probes for a real TensorFlow and must not see the stand-in."""
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is not None:
        yield
        return
    import torch._dynamo  # noqa: F401
    from ai_edge_litert import schema_py_generated

    names = ["tensorflow", "tensorflow.lite", "tensorflow.lite.python"]
    modules = [types.ModuleType(n) for n in names]
    for parent, child in zip(modules, modules[1:]):
        setattr(parent, child.__name__.rsplit(".", 1)[1], child)
    modules[-1].schema_py_generated = schema_py_generated
    for module in modules:
        module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    stand_ins = dict(zip(names, modules)) | {"tensorflow.lite.python.schema_py_generated": schema_py_generated}
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
