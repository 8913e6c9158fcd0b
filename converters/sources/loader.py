"""Model sources: a Hugging Face checkpoint folder, a torch.export `.pt2`, TorchScript, ONNX, or a factory.

Loading a source gives a `Source`: a reference model to run, its inputs/outputs, task and pre/post-processing.
Nothing is unpickled: weights load with `weights_only=True` / safetensors, and remote code is never run.
"""

from __future__ import annotations

import importlib
import inspect
import keyword
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bmsdk import cleanup
from bmsdk.converters.sources import audio, causal_lm, hub
from bmsdk.converters.sources.files import read_json
from bmsdk.converters.sources.image_processors import checkpoint_pipeline, option_pipeline
from bmsdk.converters.sources.limits import check_hf_config, check_shape
from bmsdk.converters.sources.rewrites import whole_input_pools
from bmsdk.errors import SourceError
from bmsdk.manifest import TensorSpec, data_kind, dim_size, sha256_file
from bmsdk.runtimes.pt2_archive import load_exported_program
from bmsdk.tasks import detect_task, get_task, task_names
from bmsdk.tasks.preprocessing import TEXT_INPUTS

FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
DEFAULT_MAX_LENGTH = 128


@dataclass
class Source:
    format: str
    path: str
    task: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    preprocessing: dict = field(default_factory=dict)
    postprocessing: dict = field(default_factory=dict)
    module: Any = None  # torch.nn.Module taking the inputs as keyword arguments
    exported_program: Any = None  # torch.export.ExportedProgram, for .pt2 sources
    onnx_path: Path | None = None  # for ONNX sources
    script_module: Any = None  # torch.jit.ScriptModule taking the inputs positionally, for TorchScript sources
    files: dict[str, Path] = field(default_factory=dict)  # extra files for the artifact: name -> path
    info: dict = field(default_factory=dict)
    name: str = "source"
    # layers (module names) that int8 builds keep in float unless a budget search chooses: wav2vec2's conv
    # feature encoder, whose first layers read the raw waveform and lose the signal when quantized
    float_layers: list[str] = field(default_factory=list)
    _session: Any = None

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the source model itself (the reference every artifact is compared with)."""
        if self.onnx_path is not None:
            if self._session is None:
                self._session = _onnx_session(self.onnx_path)
            names = [o.name for o in self.outputs]
            return dict(zip(names, self._session.run(names, feeds)))
        import torch

        with torch.inference_mode():
            try:
                result = self.module(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()})
            except Exception as e:  # the model's own code refuses its inputs (an image size it was not built for)
                shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in feeds.items())
                raise SourceError(
                    f"the source model fails on inputs of {shapes}: {str(e).splitlines()[0][:300] if str(e) else e!r}",
                    "check the model's expected input shape (--input-shape) and its preprocessor config",
                ) from None
        if isinstance(result, torch.Tensor):
            result = (result,)
        return {
            spec.name: t.detach().float().numpy() if t.is_floating_point() else t.numpy()
            for spec, t in zip(self.outputs, result)
        }

    @property
    def input_kind(self) -> str | None:
        """What the model's pre-processing takes: "text", "image", or None."""
        return self.preprocessing.get("kind")

    @property
    def data_kind(self) -> str | None:
        """What data the model is fed: "text" (text and text-generation models), "image", or None."""
        return data_kind(self.input_kind)

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]


def parse_input_shapes(specs: list[str] | None) -> dict[str, list[int]]:
    """`name=1x3x224x224` strings -> {name: [1, 3, 224, 224]}."""
    shapes = {}
    for spec in specs or []:
        match = re.fullmatch(r"([\w.:/-]+)=(\d+(?:x\d+)*)", spec.strip())
        if not match:
            raise SourceError(f"cannot read --input-shape '{spec}'", "write it as name=1x3x224x224")
        name, dims = match.group(1), [int(d) for d in match.group(2).split("x")]
        check_shape(name, dims, "--input-shape")
        shapes[name] = dims
    return shapes


def load_source(
    spec: str | Path,
    task: str | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    max_length: int | None = None,
    labels: list[str] | None = None,
    mean: list[float] | None = None,
    std: list[float] | None = None,
    tokenizer: str | Path | None = None,
    weights: str | Path | None = None,
    revision: str | None = None,
) -> Source:
    if task is not None:
        get_task(task)  # an unknown task is refused before any loading
    text = str(spec)
    path = Path(text)
    overrides = dict(
        task=task,
        input_shapes=input_shapes or {},
        max_length=max_length,
        labels=labels,
        mean=mean,
        std=std,
        tokenizer=Path(tokenizer) if tokenizer else None,
    )
    if not path.exists() and FACTORY_PATTERN.match(text):
        return _rewritten(_from_factory(text, weights, **overrides))
    if not path.exists() and hub.is_hub_id(text):
        return _from_hub(text, revision, overrides)
    if not path.exists():
        raise SourceError(
            f"model source {text} does not exist",
            "pass a checkpoint folder, a .pt2/.pt/.onnx file, a Hugging Face model id 'org/name' or a factory "
            "'package.module:function'",
        )
    if revision is not None:
        raise SourceError(f"--revision applies to Hugging Face model ids, not to {text}", "drop --revision")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SourceError(
                f"{path} is not a Hugging Face checkpoint folder (no config.json)",
                "pass the folder written by save_pretrained(), or a model file",
            )
        return _rewritten(_from_huggingface(path, **overrides))
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return _from_onnx(path, **overrides)
    if suffix == ".pt2":
        return _from_torch_export(path, **overrides)
    if suffix in (".pt", ".pth", ".ts", ".jit", ".torchscript"):
        return _from_torchscript(path, **overrides)
    raise SourceError(
        f"unknown model file type '{path.suffix}'",
        "use a checkpoint folder, .pt2, .pt (TorchScript), .onnx or a factory",
    )


def _from_hub(repo_id: str, revision: str | None, overrides: dict) -> Source:
    folder, info = hub.resolve(repo_id, revision)
    source = _rewritten(_from_huggingface(folder, **overrides))
    source.info.update(info)
    source.name = repo_id.split("/")[-1]
    return source


def _rewritten(source: Source) -> Source:
    """An image model's torch module with the rewrites of rewrites.py applied (recorded in its info)."""
    if source.module is not None and source.input_kind == "image":
        feeds = example_feeds(source.inputs, batch=1)
        replaced = whole_input_pools(source.module, lambda: source.run(feeds))
        if replaced:
            source.info["rewrites"] = [f"{name}: AvgPool2d over the whole input -> global average" for name in replaced]
    return source


# --- Hugging Face ---------------------------------------------------------------


def _hf_task(config: dict, path: Path) -> str:
    architectures = config.get("architectures") or []
    preprocessor = path / "preprocessor_config.json"
    known = (
        {**config, "preprocessor": read_json(preprocessor, "preprocessor config")} if preprocessor.is_file() else config
    )
    task = detect_task(architectures, known)
    if task is not None:
        return task.name
    heads = sorted({m.group(1) for a in architectures if (m := re.search(r"For([A-Z]\w+)$", a))})
    if heads:  # a head bmsdk has no task for: naming another task would convert the wrong (or a random) head
        raise SourceError(
            f"{', '.join(architectures)} has a {' / '.join(heads)} head, which no bmsdk task supports yet",
            f"`bmsdk tasks` lists the supported tasks ({', '.join(task_names())}) and their architectures",
        )
    raise SourceError(
        f"cannot tell the task from architectures {architectures or '(none in config.json)'}",
        f"pass --task {'|'.join(task_names())}",
    )


def _from_huggingface(
    path: Path, task=None, input_shapes=None, max_length=None, labels=None, mean=None, std=None, tokenizer=None
) -> Source:
    config = read_json(path / "config.json", "checkpoint's config.json")
    task = task or _hf_task(config, path)
    spec = get_task(task)
    extractor = audio.read_extractor(path) if spec.hf_inputs == "audio" else None  # refused before the model is built
    weights = [p for p in path.iterdir() if p.name.endswith((".safetensors", ".bin"))]
    if not weights:
        raise SourceError(f"{path} has no weights (model.safetensors)", "save the model with save_pretrained()")
    check_hf_config(path, config)
    import transformers

    auto = getattr(transformers, spec.hf_auto_class)
    try:
        # safetensors when present, so that no pickle is ever involved; .bin weights go through transformers'
        # weights_only load
        model, loading = auto.from_pretrained(
            str(path),
            local_files_only=True,
            trust_remote_code=False,
            output_loading_info=True,
            use_safetensors=any(p.suffix == ".safetensors" for p in weights) or None,
        )
    except Exception as e:  # transformers raises many types for broken checkpoints
        raise SourceError(
            f"could not load the checkpoint in {path}: {str(e).splitlines()[0][:300] if str(e) else type(e).__name__}",
            "check that the folder is a complete, uncorrupted save_pretrained() output",
        ) from None
    _check_loading(path, task, spec, loading)
    model.eval()
    label_names = labels or _hf_labels(config)
    if spec.hf_inputs == "image":
        return _hf_image_source(path, model, config, task, label_names, input_shapes, mean, std)
    if spec.hf_inputs == "audio":
        return _hf_audio_source(path, model, config, task, label_names, input_shapes, extractor)
    if task == "text-generation":
        return _hf_causal_lm_source(path, model, config, max_length, tokenizer)
    return _hf_text_source(path, model, config, task, label_names, max_length, tokenizer)


def _check_loading(path: Path, task: str, spec, loading: dict) -> None:
    """Refuse a checkpoint whose weights do not fit the chosen head: transformers fills missing or mis-shaped
    weights with random values (the converted model would answer at random) and drops unexpected ones (weights of
    another head: the checkpoint was trained for another task)."""
    base_only = spec.hf_output == "last_hidden_state"  # feature extraction reads last_hidden_state: no pooler needed
    missing = sorted(k for k in loading.get("missing_keys") or [] if not (base_only and "pooler" in k))
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in loading.get("mismatched_keys") or [])
    # a base model ignores any head's weights by design; a head model must use all it is given
    unexpected = [] if base_only else sorted(loading.get("unexpected_keys") or [])
    problems = [
        (missing, f"has no weights for {{n}} parameter(s) of a {task} model"),
        (mismatched, f"has weights of the wrong shape for {{n}} parameter(s) of a {task} model"),
        (unexpected, f"has {{n}} weight(s) that a {task} model does not use (saved with another head)"),
    ]
    for keys, what in problems:
        if keys:
            raise SourceError(
                f"the checkpoint in {path} {what.format(n=len(keys))} (e.g. {', '.join(keys[:3])})",
                "pass the --task the checkpoint was trained for (see `bmsdk tasks`), or a complete save_pretrained() "
                "folder",
            )


def _hf_labels(config: dict) -> list[str] | None:
    id2label = config.get("id2label")
    if not id2label:
        return None
    return [id2label[k] for k in sorted(id2label, key=int)]


def _hf_text_source(path, model, config, task, labels, max_length, tokenizer_dir) -> Source:
    import torch

    files = _tokenizer_files(tokenizer_dir or path)
    accepted = inspect.signature(model.forward).parameters
    names = [n for n in TEXT_INPUTS if n in accepted]
    tok_config = (
        read_json(files["tokenizer_config.json"], "tokenizer config") if "tokenizer_config.json" in files else {}
    )
    positions = int(config.get("max_position_embeddings") or 10**6) - _position_offset(model)
    limit = min(int(tok_config.get("model_max_length") or 10**6), positions)
    max_length = min(max_length or DEFAULT_MAX_LENGTH, limit)
    spec = get_task(task)
    output, kept = spec.hf_output, spec.hf_outputs

    class TextWrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **feeds):
            result = self.inner(**feeds, return_dict=True)
            return tuple(getattr(result, n) for n in kept) if kept else getattr(result, output)

    wrapper = _named_forward(TextWrapper(model), names)
    hidden = int(config.get("hidden_size", 0))
    classes = len(labels) if labels else int(config.get("num_labels", 2))
    if output != "logits":
        out_shape = ["batch", "sequence", hidden]
    else:
        out_shape = ["batch", "sequence", classes] if spec.per_token else ["batch", classes]
    pad_token, pad_id = _pad_token(files, tok_config, config.get("pad_token_id"))
    return Source(
        format="huggingface",
        path=str(path),
        task=task,
        inputs=_text_input_specs(names, config, limit),
        outputs=[TensorSpec(n, "float32", ["batch", "sequence"]) for n in kept]
        or [TensorSpec(output, "float32", out_shape)],
        preprocessing={
            "kind": "text",
            "tokenizer": "tokenizer/tokenizer.json",
            "max_length": max_length,
            "pad_id": pad_id,
            "pad_token": pad_token,
            "lowercase": bool(tok_config.get("do_lower_case", True)),
            **spec.text_preprocessing(max_length),
        },
        postprocessing=get_task(task).postprocessing(output, labels),
        module=wrapper,
        files={f"tokenizer/{k}": v for k, v in files.items()},
        info=_source_info(path, "huggingface", config.get("architectures")),
        name=path.name,
    )


def _hf_causal_lm_source(path, model, config, max_length, tokenizer_dir) -> Source:
    files = _tokenizer_files(tokenizer_dir or path)
    tok_config = (
        read_json(files["tokenizer_config.json"], "tokenizer config") if "tokenizer_config.json" in files else {}
    )
    layers, heads, head_dim, argument = causal_lm.cache_layout(model)
    length = causal_lm.cache_length(max_length, config)
    vocab = int(model.get_output_embeddings().weight.shape[0])
    inputs, outputs = causal_lm.step_specs(layers, heads, head_dim, length, vocab)
    _, pad_id = _pad_token(files, tok_config, config.get("pad_token_id"))
    pre = causal_lm.generation_preprocessing(layers, heads, head_dim, length, config, tok_config, path, pad_id)
    extra = {n: path / n for n in ("generation_config.json",) if (path / n).is_file()}
    return Source(
        format="huggingface",
        path=str(path),
        task="text-generation",
        inputs=inputs,
        outputs=outputs,
        preprocessing=pre,
        postprocessing={"output": "logits"},
        module=_named_forward(causal_lm.step_module(model, layers, argument), [s.name for s in inputs]),
        files={**{f"tokenizer/{k}": v for k, v in files.items()}, **extra},
        info=_source_info(path, "huggingface", config.get("architectures")),
        name=path.name,
    )


def _position_offset(model) -> int:
    """Position ids that no token can use: RoBERTa-family embeddings number positions from padding_idx + 1, so a
    514-position RoBERTa reads at most 512 tokens (the numbering is a method of the embeddings, or, in MPNet, a
    function of their module)."""
    embeddings = getattr(model.base_model, "embeddings", None)
    numbering = "create_position_ids_from_input_ids"
    module = sys.modules.get(type(embeddings).__module__)
    if (hasattr(embeddings, numbering) or hasattr(module, numbering)) and isinstance(
        getattr(embeddings, "padding_idx", None), int
    ):
        return embeddings.padding_idx + 1
    return 0


def _text_input_specs(names: list[str], config: dict, max_positions: int) -> list[TensorSpec]:
    """Token inputs with the values the model's embeddings hold and the longest sequence its positions allow."""
    highest = {
        "input_ids": int(config.get("vocab_size") or 0) - 1,
        "token_type_ids": int(config.get("type_vocab_size") or 2) - 1,
        "attention_mask": 1,
    }
    max_dims = {"sequence": max_positions} if max_positions < 10**6 else None
    return [
        TensorSpec(n, "int64", ["batch", "sequence"], [0, highest[n]] if highest[n] >= 0 else None, max_dims)
        for n in names
    ]


def _pad_token(files: dict[str, Path], tok_config: dict, config_pad_id) -> tuple[str, int]:
    """The tokenizer's padding token and its id (BERT: [PAD]/0, RoBERTa: <pad>/1)."""
    from tokenizers import Tokenizer

    pad_token = tok_config.get("pad_token") or "[PAD]"
    if isinstance(pad_token, dict):  # an AddedToken saved as {"content": "[PAD]", ...}
        pad_token = pad_token.get("content", "[PAD]")
    try:
        pad_id = Tokenizer.from_file(str(files["tokenizer.json"])).token_to_id(str(pad_token))
    except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for a file it cannot read
        raise SourceError(
            f"{files['tokenizer.json']} is not a readable tokenizer ({str(e)[:160]})",
            "re-save the tokenizer with tokenizer.save_pretrained()",
        ) from None
    return pad_token, pad_id if pad_id is not None else int(config_pad_id or 0)


def _tokenizer_files(folder: Path) -> dict[str, Path]:
    """tokenizer.json (made from the slow tokenizer's files if the checkpoint lacks it) and friends."""
    folder = Path(folder)
    wanted = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
    files = {n: folder / n for n in wanted if (folder / n).is_file()}
    if "tokenizer.json" not in files:
        import tempfile

        import transformers

        try:
            tok = transformers.AutoTokenizer.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False
            )
        except Exception as e:
            raise SourceError(
                f"{folder} has no usable tokenizer ({str(e).splitlines()[0][:200]})",
                "save the tokenizer next to the model (tokenizer.save_pretrained) or pass --tokenizer DIR",
            ) from None
        out = cleanup.track(Path(tempfile.mkdtemp(prefix="bmsdk-tok-")))  # copied into the artifact, removed at exit
        tok.save_pretrained(str(out))
        files.update({n: out / n for n in wanted if (out / n).is_file() and n not in files})
        if "tokenizer.json" not in files:
            raise SourceError(
                f"the tokenizer in {folder} has no fast (tokenizer.json) form", "use a model with a fast tokenizer"
            )
    return files


def _hf_image_source(path, model, config, task, labels, input_shapes, mean, std) -> Source:
    import torch

    channels = int(config.get("num_channels", 3))
    side = config.get("image_size", 224)
    side = int(side[0] if isinstance(side, (list, tuple)) and side else side)  # YOLOS: [height, width]
    shape = (input_shapes or {}).get("pixel_values")
    if (path / "preprocessor_config.json").is_file():
        fields = checkpoint_pipeline(
            path, channels, list(shape[2:]) if shape else [side, side], list(shape[2:]) if shape else None
        )
        if mean or std:
            fields.update(mean=mean or fields["mean"], std=std or fields["std"], normalization="option")
        if shape and list(shape[1:]) != [channels, *fields["size"]]:
            raise SourceError(
                f"--input-shape pixel_values={'x'.join(map(str, shape))} disagrees with the checkpoint's image "
                f"pre-processing, which gives {channels}x{fields['size'][0]}x{fields['size'][1]} images",
                "drop --input-shape, or change size/crop_size in preprocessor_config.json",
            )
    else:
        channels, height, width = shape[1:] if shape else (channels, side, side)
        fields = {"size": [height, width], **option_pipeline(height, width, channels, mean, std, f"checkpoint {path}")}
    height, width = fields["size"]
    check_shape("pixel_values", ["batch", channels, height, width], "checkpoint")

    spec = get_task(task)
    kept = spec.hf_outputs or ("logits",)  # object detection: logits and pred_boxes

    class ImageWrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, pixel_values):
            result = self.inner(pixel_values=pixel_values, return_dict=True)
            return tuple(getattr(result, n) for n in kept) if len(kept) > 1 else result.logits

    num_classes = len(labels) if labels else int(config.get("num_labels", 2))
    wrapper = ImageWrapper(model).eval()
    out_shapes = [["batch", num_classes]]
    if task != "image-classification":  # segmentation logits [batch, labels, h, w], detection [batch, queries, ...]
        ran = _run_module(wrapper, {"pixel_values": np.zeros((1, channels, int(height), int(width)), np.float32)})
        out_shapes = [["batch", *(int(d) for d in out.shape[1:])] for out in ran]
    return Source(
        format="huggingface",
        path=str(path),
        task=task,
        inputs=[TensorSpec("pixel_values", "float32", ["batch", channels, int(height), int(width)])],
        outputs=[TensorSpec(n, "float32", shape) for n, shape in zip(kept, out_shapes)],
        preprocessing={"kind": "image", "input_name": "pixel_values", "channels": channels, "layout": "NCHW", **fields},
        postprocessing=spec.hf_postprocessing(labels),
        module=wrapper,
        info=_source_info(path, "huggingface", config.get("architectures")),
        name=path.name,
    )


def _hf_audio_source(path, model, config, task, labels, input_shapes, extractor) -> Source:
    import torch

    rate = extractor["sampling_rate"]
    shape = (input_shapes or {}).get("input_values")
    if shape is not None and len(shape) != 2:
        raise SourceError(
            f"--input-shape input_values={'x'.join(map(str, shape))} is not [batch, samples]",
            f"pass e.g. --input-shape input_values=1x{rate}",
        )
    samples = int(shape[1]) if shape else rate  # one second by default
    check_shape("input_values", ["batch", samples], "checkpoint")
    frames = int(model._get_feat_extract_output_lengths(torch.tensor(samples)))
    if frames < 1:
        raise SourceError(
            f"a clip of {samples} samples is shorter than the model's convolutional feature encoder reads",
            f"pass a longer clip, e.g. --input-shape input_values=1x{rate}",
        )
    folded = audio.fold_weight_norm(model)
    mask = extractor["attention_mask"]
    if mask:
        audio.direct_frame_masks(model)
    names = ["input_values", "attention_mask"] if mask else ["input_values"]

    classes = len(labels) if labels else int(config.get("num_labels", 2))
    inputs = [TensorSpec("input_values", "float32", ["batch", samples])]
    if mask:
        inputs.append(TensorSpec("attention_mask", "int64", ["batch", samples], [0, 1]))
    info = _source_info(path, "huggingface", config.get("architectures"))
    if folded:
        info["rewrites"] = [f"{name}: weight norm folded into the weight" for name in folded]
    module = _named_forward(audio.logits_module(model), names)
    encoder = [n for n, m in module.named_modules() if ".feature_extractor." in n and isinstance(m, torch.nn.Conv1d)]
    return Source(
        format="huggingface",
        path=str(path),
        task=task,
        inputs=inputs,
        outputs=[TensorSpec("logits", "float32", ["batch", classes])],
        float_layers=encoder,
        preprocessing={"kind": "audio", "input_name": "input_values", "samples": samples, **extractor},
        postprocessing=get_task(task).postprocessing("logits", labels),
        module=module,
        files={"preprocessor_config.json": path / "preprocessor_config.json"},
        info=info,
        name=path.name,
    )


def _image_preprocessing(name, channels, height, width, mean, std, scale=1 / 255) -> dict:
    """Image pre-processing of a source without an image processor: resize to the model's size, then mean/std."""
    return {
        "kind": "image",
        "input_name": name,
        "size": [int(height), int(width)],
        "channels": int(channels),
        "layout": "NCHW",
        "scale": float(scale),
        **option_pipeline(int(height), int(width), int(channels), mean, std, f"image input '{name}'"),
    }


def _named_forward(module, names):
    """A module whose forward takes exactly `names` as keyword arguments (what exporters need)."""
    import torch

    bad = [n for n in names if not n.isidentifier() or keyword.iskeyword(n)]
    if bad:  # the names are pasted into generated code below: only plain identifiers may pass
        raise SourceError(
            f"input name {bad[0][:80]!r} is not a Python identifier", "rename the model's inputs (e.g. input_0)"
        )
    params = ", ".join(names)
    namespace: dict = {}
    exec(
        f"def forward(self, {params}):\n    return self.inner(**dict({', '.join(f'{n}={n}' for n in names)}))",
        namespace,
    )
    cls = type("Named" + type(module).__name__, (torch.nn.Module,), {"forward": namespace["forward"]})
    wrapper = cls()
    wrapper.inner = module
    return wrapper.eval()


# --- plain PyTorch and ONNX files ----------------------------------------------------


def _generic_source(
    fmt,
    path,
    module,
    input_specs,
    task,
    labels,
    mean,
    std,
    tokenizer,
    max_length,
    exported=None,
    onnx_path=None,
    spec_hints=None,
) -> Source:
    """Task, outputs and processing for sources that carry no config: from the model's shapes and the overrides."""
    hints = spec_hints or {}
    task = task or hints.get("task")
    labels = labels or hints.get("labels")
    mean, std = mean or hints.get("mean"), std or hints.get("std")
    for spec in input_specs:
        check_shape(spec.name, spec.shape, f"{fmt} model")
    src = Source(
        format=fmt,
        path=str(path),
        task=task or "",
        inputs=input_specs,
        outputs=[],
        module=module,
        exported_program=exported,
        onnx_path=onnx_path,
        info=_source_info(path, fmt),
        name=Path(str(path).split(":")[-1]).stem,
    )
    if onnx_path is not None:
        src.outputs = _onnx_specs(onnx_path, outputs=True)
    else:
        feeds = example_feeds(input_specs, batch=2)
        outs = _run_module(module, feeds)
        src.outputs = [
            TensorSpec("logits" if len(outs) == 1 else f"output_{i}", str(o.dtype), ["batch", *o.shape[1:]])
            for i, o in enumerate(outs)
        ]
    if not src.task:
        one_image = (
            len(input_specs) == 1 and len(input_specs[0].shape) == 4 and input_specs[0].dtype.startswith("float")
        )
        if one_image and len(src.outputs) == 1 and len(src.outputs[0].shape) == 2:
            src.task = "image-classification"
        else:
            raise SourceError(f"cannot tell the task of {path}", f"pass --task {'|'.join(task_names())}")
    task_spec = get_task(src.task)
    if task_spec.hf_inputs == "image":
        spec = input_specs[0]
        if len(spec.shape) != 4 or not all(isinstance(d, int) for d in spec.shape[1:]):
            raise SourceError(
                f"image input '{spec.name}' needs a fixed CxHxW shape, got {spec.shape}",
                f"pass --input-shape {spec.name}=1x3x224x224",
            )
        channels, height, width = spec.shape[1:]
        src.preprocessing = _image_preprocessing(spec.name, channels, height, width, mean, std)
        resize = task_spec.source_resize(int(height), int(width), hints)
        if resize is not None:  # object detection: ultralytics' letterbox
            src.preprocessing["resize"] = resize
        src.postprocessing = task_spec.postprocessing(src.outputs[0].name, labels)
    else:
        if tokenizer is None:
            raise SourceError(
                f"a {src.task} model from a {fmt} file needs its tokenizer",
                "pass --tokenizer DIR (a folder with tokenizer.json)",
            )
        files = _tokenizer_files(tokenizer)
        src.files = {f"tokenizer/{k}": v for k, v in files.items()}
        tok_config = (
            read_json(files["tokenizer_config.json"], "tokenizer config") if "tokenizer_config.json" in files else {}
        )
        pad_token, pad_id = _pad_token(files, tok_config, None)
        src.preprocessing = {
            "kind": "text",
            "tokenizer": "tokenizer/tokenizer.json",
            "max_length": max_length or DEFAULT_MAX_LENGTH,
            "pad_id": pad_id,
            "pad_token": pad_token,
        }
        src.postprocessing = task_spec.postprocessing(src.outputs[0].name, labels)
    return src


def _run_module(module, feeds):
    import torch

    try:
        with torch.inference_mode():
            result = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    except Exception as e:  # the user's model rejected inputs of the declared shapes
        shapes = ", ".join(f"{k}={'x'.join(map(str, v.shape))}" for k, v in feeds.items())
        raise SourceError(
            f"the model fails on inputs {shapes}: {type(e).__name__}: "
            f"{str(e).strip().splitlines()[0][:200] if str(e).strip() else ''}",
            "check --input-shape (NAME=1x3x224x224, one per input)",
        ) from None
    return [t.numpy() for t in (result if isinstance(result, (tuple, list)) else (result,))]


def _specs_from_shapes(input_shapes: dict[str, list[int]], what: str) -> list[TensorSpec]:
    if not input_shapes:
        raise SourceError(
            f"{what} does not record its input shapes", "pass --input-shape NAME=1x3x224x224 (one per input)"
        )
    return [TensorSpec(name, "float32", ["batch", *shape[1:]]) for name, shape in input_shapes.items()]


def _from_onnx(
    path: Path, task=None, input_shapes=None, max_length=None, labels=None, mean=None, std=None, tokenizer=None
) -> Source:
    try:
        import onnx

        onnx.checker.check_model(str(path))
    except Exception as e:
        raise SourceError(
            f"{path} is not a valid ONNX model ({str(e).splitlines()[0][:200]})", "re-export the model"
        ) from None
    specs = _onnx_specs(path, outputs=False)
    for spec in specs:
        if spec.name in (input_shapes or {}):
            spec.shape = ["batch", *input_shapes[spec.name][1:]]
    src = _generic_source("onnx", path, None, specs, task, labels, mean, std, tokenizer, max_length, onnx_path=path)
    src._session = _onnx_session(path)
    return src


def _onnx_session(path: Path):
    """The source's reference session, opened now so that an op onnxruntime lacks is a source error, not a late
    crash."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidGraph types
        raise SourceError(
            f"onnxruntime cannot run {path} ({str(e).strip().splitlines()[0][:200]})",
            "export with standard ONNX ops only (custom-domain ops need an extension bmsdk does not load)",
        ) from None


def _onnx_specs(path: Path, outputs: bool) -> list[TensorSpec]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    values = model.graph.output if outputs else [i for i in model.graph.input if i.name not in initializers]
    specs = []
    for value in values:
        t = value.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
        shape = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or f"dim{i}") for i, d in enumerate(t.shape.dim)
        ]
        if shape and isinstance(shape[0], str):
            shape[0] = "batch"
        specs.append(TensorSpec(value.name, dtype, shape))
    return specs


def _from_torch_export(
    path: Path, task=None, input_shapes=None, max_length=None, labels=None, mean=None, std=None, tokenizer=None
) -> Source:
    program = load_exported_program(path)
    specs = []
    user_inputs = program.graph_signature.user_inputs
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    for name in user_inputs:
        val = placeholders[name].meta["val"]
        shape = [
            int(d) if isinstance(d, int) or str(d).isdigit() else ("batch" if i == 0 else f"dim{i}")
            for i, d in enumerate(val.shape)
        ]
        if name in (input_shapes or {}):
            shape = list(input_shapes[name])  # a copy: the caller's list stays as given
        shape[0] = "batch"
        specs.append(TensorSpec(name, str(val.dtype).replace("torch.", ""), shape))
    inner = program.module()
    # ExportedProgram.module() raises on train()/eval(); its mode was fixed at export, so make both no-ops
    inner.train = inner.eval = lambda *args, **kwargs: inner
    module = _named_forward(_PositionalAdapter(inner, [s.name for s in specs]), [s.name for s in specs])
    return _generic_source(
        "torch.export", path, module, specs, task, labels, mean, std, tokenizer, max_length, exported=program
    )


def _from_torchscript(
    path: Path, task=None, input_shapes=None, max_length=None, labels=None, mean=None, std=None, tokenizer=None
) -> Source:
    import torch

    _refuse_pickles(path)
    try:
        scripted = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as e:
        raise SourceError(
            f"{path} is not a loadable TorchScript file ({str(e).splitlines()[0][:200]})",
            "save it with torch.jit.save(torch.jit.trace(model, example), 'model.pt')",
        ) from None
    specs = _specs_from_shapes(input_shapes, f"TorchScript file {path.name}")
    module = _named_forward(_PositionalAdapter(scripted, [s.name for s in specs]), [s.name for s in specs])
    src = _generic_source("torchscript", path, module, specs, task, labels, mean, std, tokenizer, max_length)
    src.info["scripted"] = True
    src.script_module = scripted
    return src


def _refuse_pickles(path: Path) -> None:
    """torch.save() files are pickles that can run code on load: refuse them by default."""
    if not zipfile.is_zipfile(path):
        raise SourceError(
            f"{path} is neither TorchScript nor torch.export (it may be a legacy pickle)",
            "bmsdk never unpickles model files; export with torch.jit.save or torch.export.save, or use a factory",
        )
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    if not any(n.endswith("constants.pkl") or "/code/" in n for n in names):
        raise SourceError(
            f"{path} is a pickled PyTorch object (torch.save), not TorchScript",
            "bmsdk never unpickles model files: save TorchScript (torch.jit.save), torch.export (.pt2), "
            "or pass a factory 'pkg.module:function' with --weights state_dict.pt (loaded with weights_only=True)",
        )


class _PositionalAdapter:
    """Calls a module that takes positional inputs with keyword feeds in a fixed order."""

    def __new__(cls, inner, names):
        import torch

        class Adapter(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = inner

            def forward(self, **feeds):
                return self.inner(*[feeds[n] for n in names])

        return Adapter().eval()


def _from_factory(
    spec: str, weights, task=None, input_shapes=None, max_length=None, labels=None, mean=None, std=None, tokenizer=None
) -> Source:
    import torch

    module_name, func_name = spec.split(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - importing runs the user's module: anything can happen
        raise SourceError(
            f"cannot import factory {spec} ({type(e).__name__}: {str(e).strip()[:200]})",
            "check the module is importable and defines the function",
        ) from None
    try:
        model = func()
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a factory that calls sys.exit() must not end bmsdk
        raise SourceError(
            f"factory {spec} raised {type(e).__name__}: {str(e).strip()[:200]}",
            "fix the factory so that it returns the model",
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise SourceError(
            f"factory {spec} returned {type(model).__name__}, not a torch.nn.Module",
            "return the model from the factory",
        )
    if weights:
        try:
            if str(weights).endswith(".safetensors"):
                from safetensors.torch import load_file

                state = load_file(str(weights), device="cpu")
            else:
                state = torch.load(str(weights), map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as e:
            raise SourceError(
                f"cannot load weights {weights} ({str(e).splitlines()[0][:200]})",
                "pass a state_dict saved with safetensors' save_file or torch.save(model.state_dict(), path)",
            ) from None
    model.eval()
    hints = dict(getattr(model, "bmsdk_spec", {}) or {})
    shapes = input_shapes or {k: list(v) for k, v in (hints.get("input_shapes") or {}).items()}
    specs = _specs_from_shapes(shapes, f"factory {spec}")
    module = _named_forward(_PositionalAdapter(model, [s.name for s in specs]), [s.name for s in specs])
    src = _generic_source(
        "factory", spec, module, specs, task, labels, mean, std, tokenizer, max_length, spec_hints=hints
    )
    src.info["sha256"] = sha256_file(weights) if weights else None
    src.name = hints.get("name", func_name)
    return src


def example_feeds(specs: list[TensorSpec], batch: int = 2, sequence: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs of the declared shapes (dynamic dims get `batch` / `sequence`)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        shape = [dim_size(d, {"batch": batch}, sequence) for d in spec.shape]
        if spec.dtype.startswith("float"):
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        else:
            low, high = spec.value_range or (0, 1)
            feeds[spec.name] = rng.integers(low, min(high, low + 1) + 1, shape).astype(spec.dtype)
    return feeds


def _source_info(path, fmt: str, architectures=None) -> dict:
    import torch

    p = Path(str(path))
    info = {"path": str(path), "format": fmt, "torch": torch.__version__}
    if p.is_file():
        info["sha256"] = sha256_file(p)
    elif p.is_dir():
        weights = sorted(p.glob("*.safetensors")) or sorted(p.glob("*.bin"))
        info["sha256"] = sha256_file(weights[0]) if weights else None
    if architectures:
        info["architectures"] = architectures
    if fmt == "huggingface":
        import transformers

        info["transformers"] = transformers.__version__
    return info
