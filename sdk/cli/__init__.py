"""The `bmsdk` command line. Exit codes: 0 success, 1 failure (validation failed, internal error), 2 bad input."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from pathlib import Path

from bmsdk import cleanup
from bmsdk.artifact import PUBLIC_KEY_ENV, load_samples, open_artifact, sign_artifact, verify_artifact
from bmsdk.benchmarks.api import benchmark
from bmsdk.benchmarks.optimize import optimize
from bmsdk.checks import check_convert_args, check_count
from bmsdk.cli.doctor import diagnose
from bmsdk.converters import all_targets, target_names
from bmsdk.converters.pipeline import convert
from bmsdk.converters.sources.loader import parse_input_shapes
from bmsdk.converters.validate import delta, validate_artifact
from bmsdk.data import AUDIO_SUFFIXES, IMAGE_SUFFIXES, load_dataset, read_npy
from bmsdk.errors import BmsdkError, DataError, InputError, SourceError, UnsupportedError
from bmsdk.image_pipeline import DEFAULT_0_1
from bmsdk.logs import configure_logging, third_party_output
from bmsdk.manifest import SIGNATURE_NAME
from bmsdk.progress import Progress
from bmsdk.runtimes.model import load
from bmsdk.sections import Compression, Quantization, Validation
from bmsdk.signing import fingerprint, generate_keypair, load_public_key
from bmsdk.tasks import get_task, task_names
from bmsdk.tasks.generation_vectors import artifact_vectors
from bmsdk.tasks.support import architectures_for, zoo_support
from bmsdk.tasks.vectors import export_vectors

EPILOG = (
    "Exit codes: 0 success, 1 failure (e.g. validation outside tolerance), 2 bad input. Add --debug for tracebacks."
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbosity = args.verbose - args.quiet
    configure_logging(verbosity)
    if not args.debug:
        third_party_output(verbosity)
    try:
        with cleanup.command_scope():
            return args.func(args)
    except BmsdkError as e:
        if args.debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an unexpected failure is a bug: one line, traceback with --debug
        if args.debug:
            traceback.print_exc()
        print(
            f"error: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''} (run with "
            "--debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _float_summary(quantization: Quantization) -> str:
    """What a quantized artifact left in float, in the terms its converter records."""
    if quantization.float_nodes is not None:
        return f"{len(quantization.float_nodes)} compute nodes left in float"
    text = f"{quantization.float_ops or 0} ops left in float as asked"
    search = quantization.tolerance_search
    if search and search.groups is not None:
        text += (
            f", {len(search.float_groups)} of {search.groups} op groups left float by the int8 tolerance check"
            f" ({'met' if search.met else 'NOT met'})"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", help="show tracebacks and third-party logs")
    common.add_argument("-q", "--quiet", action="count", default=0, help="no progress output, warnings and errors only")
    common.add_argument(
        "-v", "--verbose", action="count", default=0, help="debug logs, and dependencies' warnings (once each)"
    )
    parser = argparse.ArgumentParser(
        prog="bmsdk",
        parents=[common],
        epilog=EPILOG,
        description=f"Convert models to {', '.join(target_names())}; run, check and benchmark them.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _convert_parser(sub, common)
    _predict_parser(sub, common)
    _inspect_parser(sub, common)
    _validate_parser(sub, common)
    _bench_parser(sub, common)
    _optimize_parser(sub, common)
    _export_vectors_parser(sub, common)
    _keygen_parser(sub, common)
    _sign_parser(sub, common)
    _verify_parser(sub, common)
    _doctor_parser(sub, common)
    _tasks_parser(sub, common)
    return parser


def _convert_parser(sub, common) -> None:
    p = sub.add_parser(
        "convert",
        parents=[common],
        epilog=EPILOG,
        help="convert a model to a deployable artifact",
        description="Convert SOURCE (a Hugging Face checkpoint folder or model id 'org/name', .pt2, TorchScript .pt, "
        ".onnx, or a factory 'pkg.module:function') to an artifact folder, validated against the source.",
    )
    p.add_argument(
        "source",
        help="checkpoint folder, Hugging Face model id 'org/name', model file, or factory 'pkg.module:function'",
    )
    p.add_argument("--target", default="onnx", help=f"{', '.join(target_names())} (default onnx)")
    p.add_argument(
        "--precision",
        default="fp32",
        help="; ".join(f"{t.name}: {', '.join(t.precisions)}" for t in all_targets())
        + " (default fp32); auto: the fastest of the target's precisions within --max-accuracy-drop (default 0.5) "
        "on --eval data (as `bmsdk optimize`)",
    )
    p.add_argument(
        "--calibration", metavar="DATA", help="representative inputs for static int8 (.jsonl/.csv/.npz/image folder)"
    )
    p.add_argument("--eval", metavar="DATA", help="labelled data: report the task metric of source and artifact")
    p.add_argument("--task", help=f"{', '.join(task_names())} (default: inferred)")
    p.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224", help="input shape (repeat per input)")
    p.add_argument("--max-length", type=int, help="maximum tokens for text models (default 128)")
    p.add_argument("--labels", help="class names, comma-separated, or a file with one per line")
    p.add_argument("--mean", help="image mean per channel, comma-separated (on 0-1 pixels)")
    p.add_argument("--std", help="image std per channel, comma-separated")
    p.add_argument(
        "--tokenizer", metavar="DIR", help="tokenizer folder for text models from .onnx/.pt2/.pt/factory sources"
    )
    p.add_argument(
        "--weights",
        metavar="STATE_DICT",
        help="weights for a factory source: a .safetensors state dict or a torch.save one (weights_only=True)",
    )
    p.add_argument(
        "--revision",
        help="for a Hugging Face model id: the commit, branch or tag to use (pin a commit for reproducible builds)",
    )
    taken: set[str] = set()
    for target in all_targets():
        target.add_arguments(p, taken)
    p.add_argument(
        "--prune",
        metavar="RATIO|auto",
        help="remove this share of channels/heads (e.g. 0.5), or 'auto': the largest ratio within --max-accuracy-drop",
    )
    p.add_argument(
        "--prune-method",
        choices=["channels", "heads-ffn", "magnitude", "2:4"],
        help="channels (CNNs) or heads-ffn (transformers) remove weights for real (default by model); magnitude "
        "and 2:4 zero them, for coreml/tensorrt",
    )
    p.add_argument(
        "--importance",
        choices=["magnitude", "taylor"],
        default="magnitude",
        help="what to prune first: smallest weights (default) or first-order Taylor on --calibration data",
    )
    p.add_argument(
        "--recover", metavar="DATA", help="fine-tune the pruned model on these inputs, distilling from the unpruned one"
    )
    p.add_argument("--recover-steps", type=int, metavar="N", help="recovery steps (default 100)")
    p.add_argument(
        "--max-accuracy-drop",
        type=float,
        metavar="PT",
        help="accuracy budget in points against the source, "
        "measured on --eval data through the artifact's runtime; sensitive layers go back to float until it fits",
    )
    p.add_argument(
        "--objective",
        choices=["accuracy", "latency"],
        default="accuracy",
        help="latency: time the quantized artifact against its float twin and ship the faster one within budget",
    )
    p.add_argument(
        "--smooth-quant",
        type=float,
        metavar="ALPHA",
        help="int8 of a transformer: before export, move activation outliers into the weights (SmoothQuant, "
        "strength 0-1, e.g. 0.9; channel ranges from --calibration, else the samples)",
    )
    p.add_argument("--name", help="artifact name (default: from the source)")
    p.add_argument("-o", "--output", help="output folder (default: NAME-TARGET-PRECISION.bmsdk)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=cmd_convert)


def _predict_parser(sub, common) -> None:
    p = sub.add_parser(
        "predict",
        parents=[common],
        epilog=EPILOG,
        help="run an artifact on texts, images or .npy arrays",
        description="Each INPUT is an image file, a .npy array, or (for text models) a text. For a text-generation "
        "model each INPUT is a prompt, and the generated text streams as it comes (greedy unless --temperature).",
    )
    p.add_argument("artifact")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--backend", help="runtime backend (default: the target's)")
    p.add_argument("--threads", type=int, help="intra-op threads")
    p.add_argument("--json", action="store_true", help="print JSON")
    g = p.add_argument_group("text generation")
    g.add_argument("--max-new-tokens", type=int, default=64, help="tokens to generate at most (default 64)")
    g.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy; > 0: sample")
    g.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    g.add_argument("--top-p", type=float, help="sample among the most likely tokens totalling this probability")
    g.add_argument("--seed", type=int, help="random seed for sampling")
    g.add_argument("--stop", action="append", help="stop when this text appears (repeatable)")
    g.add_argument(
        "--cache",
        choices=("refuse", "slide"),
        default="refuse",
        help="when the KV cache is full: stop with an error (default) or drop the oldest tokens",
    )
    g = p.add_argument_group("token classification")
    g.add_argument(
        "--aggregation-strategy",
        choices=("none", "simple", "first", "average", "max"),
        help="how tokens make entities (default: the artifact's, simple): as transformers' pipeline",
    )
    g = p.add_argument_group("question answering")
    g.add_argument("--context", help="the text each INPUT question is asked about")
    _public_key_option(p)
    p.set_defaults(func=cmd_predict)


def _inspect_parser(sub, common) -> None:
    p = sub.add_parser(
        "inspect", parents=[common], epilog=EPILOG, help="show an artifact's manifest, I/O, size and validation"
    )
    p.add_argument("artifact")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    _public_key_option(p)
    p.set_defaults(func=cmd_inspect)


def _validate_parser(sub, common) -> None:
    p = sub.add_parser(
        "validate",
        parents=[common],
        epilog=EPILOG,
        help="re-check an artifact against its samples (and --eval data)",
        description="Runs the artifact on its backend and compares with the source outputs stored in samples.npz.",
    )
    p.add_argument("artifact")
    p.add_argument("--eval", metavar="DATA", help="labelled data: report the task metric")
    _public_key_option(p)
    p.set_defaults(func=cmd_validate)


def _bench_parser(sub, common) -> None:
    p = sub.add_parser(
        "bench",
        parents=[common],
        epilog=EPILOG,
        help="latency against accuracy for targets x precisions",
        description="Converts SOURCE (or takes the source and settings of a case file, e.g. "
        "benchmarks/cases/mnist-cnn.json) to every target x precision, measures each cell "
        "and writes report.json, report.md, report.html and plot.png. With --baseline, exits 1 "
        "naming the cells that lost more accuracy or latency than the budgets allow.",
    )
    p.add_argument("source", help="model source, or a benchmark case .json")
    p.add_argument("--targets", help="comma-separated (default onnx, or the case's)")
    p.add_argument("--precisions", help="comma-separated (default fp32, or the case's)")
    p.add_argument("--eval", metavar="DATA", help="labelled data for the task metric")
    p.add_argument("--calibration", metavar="DATA", help="calibration data for static int8")
    p.add_argument("--batch", help="batch sizes, comma-separated (default 1)")
    p.add_argument("--threads", type=int, help="intra-op threads for every runtime (default 1)")
    p.add_argument("--warmup", type=int, help="warm-up calls before timing (default 10)")
    p.add_argument("--iterations", type=int, help="timed calls per run (default 100)")
    p.add_argument("--seconds", type=float, help="time limit per timing run (default 10)")
    p.add_argument("--repeats", type=int, help="timing runs; percentiles are their medians (default 3)")
    p.add_argument(
        "--max-noise",
        type=float,
        metavar="PCT",
        help="add timing runs until the 95%% interval of each median is within PCT %% of it (or --max-repeats)",
    )
    p.add_argument("--max-repeats", type=int, metavar="N", help="at most this many timing runs with --max-noise (10)")
    p.add_argument(
        "--seq-lengths",
        metavar="N,N",
        help="text models: also time batch 1 at these sequence lengths, e.g. 16,32,64,128 (report.md, scaling.png)",
    )
    p.add_argument("--artifacts", metavar="DIR", help="reuse ready artifacts NAME-TARGET-PRECISION.bmsdk from DIR")
    p.add_argument("--baseline", metavar="OLD.json", help="a report.json to gate against")
    p.add_argument(
        "--max-accuracy-drop",
        type=float,
        metavar="PT",
        default=0.5,
        help="allowed accuracy drop in points (default 0.5)",
    )
    p.add_argument(
        "--max-latency-regression",
        type=float,
        metavar="PCT",
        default=25.0,
        help="allowed latency increase in %% relative to the source model measured in the same run (default 25)",
    )
    p.add_argument("--task", help="as for convert")
    p.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224", help="as for convert")
    p.add_argument("-o", "--output", default="reports/bench", help="report folder (default reports/bench)")
    g = p.add_argument_group("cluster (pip install 'bmsdk[cluster]')")
    g.add_argument(
        "--cluster",
        metavar="ADDRESS|local[:N]",
        help="run every cell as a Ray task: on the cluster at ADDRESS, or on a local one with N workers",
    )
    g.add_argument(
        "--device",
        action="append",
        metavar="TARGET=RESOURCE",
        help="run TARGET's cells on a worker holding this Ray resource, e.g. tflite=android:R58M (repeat per target)",
    )
    g.add_argument("--artifact-store", metavar="DIR", help="a folder every worker shares: artifacts stay there")
    g.add_argument("--resume", metavar="REPORT.json", help="finish an interrupted run: its finished cells are kept")
    g.add_argument(
        "--eval-shards",
        metavar="DIR",
        help="a folder of data files (.npz/.jsonl/.csv) too large for one machine: every classifier cell is scored "
        "shard by shard (one Ray task each with --cluster; a path every worker can read), metrics merged exactly",
    )
    p.set_defaults(func=cmd_bench)


def _export_vectors_parser(sub, common) -> None:
    p = sub.add_parser(
        "export-vectors",
        parents=[common],
        epilog=EPILOG,
        help="write test vectors for on-device runtimes",
        description="Writes JSON with each sample's raw input (text or pixels), the exact feeds bmsdk's "
        "pre-processing makes from it, the source outputs and the prediction: for Android/iOS unit tests.",
    )
    p.add_argument("artifact")
    p.add_argument("-o", "--output", help="JSON file (default: stdout)")
    _public_key_option(p)
    p.set_defaults(func=cmd_export_vectors)


def _keygen_parser(sub, common) -> None:
    p = sub.add_parser(
        "keygen",
        parents=[common],
        epilog=EPILOG,
        help="make an Ed25519 key pair for signing artifacts",
        description="Writes NAME.pem (the private key, PKCS8, mode 0600: keep it secret) and "
        "NAME.pub.pem (the public key: give it to whoever loads your artifacts). "
        "Never overwrites a file.",
    )
    p.add_argument("-o", "--output", required=True, metavar="NAME", help="path of the key pair without .pem")
    p.set_defaults(func=cmd_keygen)


def _sign_parser(sub, common) -> None:
    p = sub.add_parser(
        "sign",
        parents=[common],
        epilog=EPILOG,
        help="sign an artifact with a private key",
        description="Checks every file of ARTIFACT against bmsdk.json, then writes ARTIFACT/bmsdk.sig, "
        "an Ed25519 signature of bmsdk.json (which pins every file by sha256). Re-signing "
        "replaces the old signature.",
    )
    p.add_argument("artifact")
    p.add_argument("--key", required=True, metavar="NAME.pem", help="the private key from `bmsdk keygen`")
    p.set_defaults(func=cmd_sign)


def _verify_parser(sub, common) -> None:
    p = sub.add_parser(
        "verify",
        parents=[common],
        epilog=EPILOG,
        help="check an artifact's signature and checksums",
        description="Exit 0 when ARTIFACT/bmsdk.sig is a valid signature of bmsdk.json by the public "
        "key and every file matches its sha256; exit 2 naming the problem otherwise.",
    )
    p.add_argument("artifact")
    p.add_argument("--public-key", metavar="NAME.pub.pem", help="the signer's public key (default: $BMSDK_PUBLIC_KEY)")
    p.set_defaults(func=cmd_verify)


def _doctor_parser(sub, common) -> None:
    p = sub.add_parser(
        "doctor", parents=[common], epilog=EPILOG, help="list installed converters and runtimes, and the GPU"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)


def _optimize_parser(sub, common) -> None:
    p = sub.add_parser(
        "optimize",
        parents=[common],
        epilog=EPILOG,
        help="the fastest (or smallest) artifact within an accuracy budget, across targets and precisions",
        description="Converts SOURCE to every precision of every target in --targets, validates and scores each "
        "on --eval and times it at batch 1 on the runtime that runs it; quantized candidates over the budget are "
        "rebuilt with sensitive layers in float, and with --prune the best ones are pruned. Ships the fastest "
        "(--objective size: the smallest) candidate within --max-accuracy-drop that is not slower than its float "
        "twin, and writes a report of every candidate (optimize.md, report.json, plot.png). Exits 1 when no "
        "candidate fits.",
    )
    p.add_argument("source", help="as for convert")
    p.add_argument("--targets", required=True, help=f"comma-separated, of {', '.join(target_names())}")
    p.add_argument("--eval", metavar="DATA", required=True, help="labelled held-out data the budget is measured on")
    p.add_argument(
        "--max-accuracy-drop", type=float, default=0.5, metavar="PT", help="task-metric budget in points (default 0.5)"
    )
    p.add_argument(
        "--objective",
        choices=["latency", "size"],
        default="latency",
        help="latency (default): the fastest at batch 1, among candidates timed on their real runtime here; size: "
        "the smallest model file",
    )
    p.add_argument("--precisions", help="comma-separated: only these (default: every precision of each target)")
    p.add_argument("--calibration", metavar="DATA", help="calibration data: static int8 candidates need it")
    p.add_argument("--prune", metavar="RATIOS", help="also try the best candidates pruned, e.g. 0.3,0.5")
    p.add_argument("--recover", metavar="DATA", help="fine-tune pruned candidates on these inputs")
    p.add_argument("--time-budget", type=float, metavar="MIN", help="stop starting candidates after this many minutes")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads for timing (default 1)")
    for flag, helptext in (
        ("--task", "as for convert"),
        ("--max-length", "as for convert"),
        ("--labels", "as for convert"),
        ("--mean", "as for convert"),
        ("--std", "as for convert"),
        ("--tokenizer", "as for convert"),
        ("--weights", "as for convert"),
        ("--name", "artifact name (default: from the source)"),
    ):
        p.add_argument(flag, type=int if flag == "--max-length" else str, help=helptext)
    p.add_argument("--input-shape", action="append", metavar="NAME=1x3x224x224", help="as for convert")
    p.add_argument("-o", "--output", help="the shipped artifact (default NAME-optimized.bmsdk)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output artifact")
    p.add_argument("--report", default="reports/optimize", help="report folder (default reports/optimize)")
    p.set_defaults(func=cmd_optimize)


def _tasks_parser(sub, common) -> None:
    p = sub.add_parser(
        "tasks",
        parents=[common],
        epilog=EPILOG,
        help="list the tasks, the architectures known to work for each, and the targets",
        description="The tasks bmsdk converts and runs (from the same registry convert uses), how a Hugging Face "
        "checkpoint is recognised as each, the targets that take it, and the architectures the test zoo converted "
        "and validated (tests/zoo/support_table.py).",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tasks)


def _public_key_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--public-key",
        metavar="NAME.pub.pem",
        help="refuse ARTIFACT unless it is signed by this Ed25519 public key (default: $BMSDK_PUBLIC_KEY; "
        "without either, a bmsdk.sig is not checked)",
    )


def _floats(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise SourceError(
            f"cannot read numbers from {option} '{text[:80]}'", "write them comma-separated, e.g. 0.485,0.456,0.406"
        ) from None


def _labels(text: str | None) -> list[str] | None:
    """--labels: comma-separated names, or a file with one name per line."""
    if text is None:
        return None
    path = Path(text)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. a long list of names is too long for a file name
        is_file = False
    if not is_file:
        return [label.strip() for label in text.split(",")]
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(
            f"cannot read the labels file {path} ({e})", "pass a UTF-8 text file with one name per line"
        ) from None
    return [line.strip() for line in lines if line.strip()]


def target_option_values(args) -> dict:
    """The values of every target's option flags (None where not given); the chosen target refuses others'."""
    names = {f.name for target in all_targets() for f in dataclasses.fields(target.options)}
    return {name: getattr(args, name) for name in sorted(names)}


def cmd_convert(args) -> int:
    labels, mean, std = _labels(args.labels), _floats(args.mean, "--mean"), _floats(args.std, "--std")
    check_convert_args(labels, mean, std, args.max_length)
    if args.precision == "auto":
        return _convert_auto(args, labels, mean, std)
    progress = Progress()
    progress.info(f"bmsdk convert {args.source} -> {args.target} {args.precision}")
    result = convert(
        args.source,
        target=args.target,
        output=args.output,
        precision=args.precision,
        calibration=args.calibration,
        eval_data=args.eval,
        task=args.task,
        input_shapes=parse_input_shapes(args.input_shape),
        max_length=args.max_length,
        labels=labels,
        mean=mean,
        std=std,
        tokenizer=args.tokenizer,
        weights=args.weights,
        revision=args.revision,
        name=args.name,
        overwrite=args.overwrite,
        progress=progress,
        **target_option_values(args),
        prune=args.prune,
        prune_method=args.prune_method,
        importance=args.importance,
        recover=args.recover,
        recover_steps=args.recover_steps,
        max_accuracy_drop=args.max_accuracy_drop,
        objective=args.objective,
        smooth_quant=args.smooth_quant,
    )
    print(result.path)
    for line in compression_summary(result.manifest.compression):
        print(line)
    note = getattr(result.manifest.target_config, "note", None)  # TensorRT: whether the engine was built
    if note:
        print(note)
    print(validation_summary(result.manifest.validation))
    return 0 if result.passed is not False else 1


def _convert_auto(args, labels, mean, std) -> int:
    """--precision auto: `optimize` over this target's precisions (report in reports/optimize)."""
    if args.prune is not None or args.recover is not None:
        raise UnsupportedError(
            "--precision auto searches precisions only", "use `bmsdk optimize --prune RATIOS` to search pruning too"
        )
    if args.smooth_quant is not None:
        raise UnsupportedError(
            "--precision auto does not try --smooth-quant yet", "ask for --precision int8 --smooth-quant ALPHA"
        )
    result = optimize(
        args.source,
        [args.target],
        args.eval,
        output=args.output,
        out_dir=Path("reports/optimize"),
        max_accuracy_drop=0.5 if args.max_accuracy_drop is None else args.max_accuracy_drop,
        calibration=args.calibration,
        overwrite=args.overwrite,
        progress=Progress(),
        task=args.task,
        input_shapes=parse_input_shapes(args.input_shape) or None,
        max_length=args.max_length,
        labels=labels,
        mean=mean,
        std=std,
        tokenizer=args.tokenizer,
        weights=args.weights,
        name=args.name,
        **{k: v for k, v in target_option_values(args).items() if v is not None},
    )
    return _optimize_summary(result)


def compression_summary(c: Compression) -> list[str]:
    """One line each for pruning, the accuracy budget and the latency objective, as recorded in the manifest."""
    lines = []
    if c.smoothing:
        lines.append(
            f"smoothed {c.smoothing.layers} linear layer(s) (SmoothQuant alpha {c.smoothing.alpha}, "
            f"ranges from {c.smoothing.examples} examples)"
            + (
                f": {c.smoothing.scales} scale(s), {c.smoothing.folded} folded into an earlier layer"
                if c.smoothing.scales is not None
                else ""
            )
        )
    p = c.pruning
    if p:
        line = (
            f"pruned {p.ratio:.0%} ({p.method}): parameters {p.params.before:,} -> {p.params.after:,}, "
            f"MACs {p.macs.before:,} -> {p.macs.after:,}"
        )
        if p.metric and p.metric.source:
            line += "; accuracy " + ", ".join(f"{stage} {s.accuracy:.4f}" for stage, s in p.metric.stages())
        lines.append(line)
    b = c.budget
    if b:
        drop = "not measured" if b.drop_pt is None else f"{b.drop_pt:.2f} pt"
        lines.append(
            f"accuracy budget {b.max_drop_pt} pt {'met' if b.met else 'NOT met'}: drop {drop}, "
            f"{len(b.float_layers)} layer(s) kept in float" + ("" if b.met else f" ({b.reason})")
        )
    o = c.objective
    if o:
        lines.append(f"objective latency: shipped {o.shipped}: {o.reason}")
    return lines


def validation_summary(v: Validation) -> str:
    if not v.validated or v.samples is None:
        return f"not validated: {v.reason or 'unknown reason'}"
    s = v.samples
    line = f"validation {'passed' if v.passed else 'FAILED'} on {v.backend}: {s.n} samples"
    if s.max_rel_error is not None:
        line += f", max rel error {s.max_rel_error:.2e}, min cosine {s.min_cosine:.6f}"
    if not v.passed:
        line += f" ({s.reason or v.reason or ''})"
    ev = v.eval
    agreement = "n/a" if ev is None or ev.top1_agreement is None else f"{ev.top1_agreement:.4f}"
    if ev and ev.artifact:
        line += f"\neval on {ev.n} examples: accuracy {ev.artifact.accuracy:.4f}, macro-F1 {ev.artifact.macro_f1:.4f}"
        if ev.source and ev.delta:
            line += (
                f" (source {ev.source.accuracy:.4f} / {ev.source.macro_f1:.4f}, "
                f"accuracy change {ev.delta.accuracy * 100:+.2f} pt, top-1 agreement {agreement})"
            )
    elif ev and ev.mean_cosine is not None:
        line += f"\neval on {ev.n} examples: mean cosine to source {ev.mean_cosine:.6f}"
    elif ev and ev.exact_match is not None:
        line += f"\neval on {ev.n} questions: exact match {ev.exact_match:.4f}, F1 {ev.answer_f1:.4f}"
        if ev.source_exact_match is not None:
            line += f" (source {ev.source_exact_match:.4f} / {ev.source_answer_f1:.4f}, same answer span {agreement})"
    elif ev and ev.mean_iou is not None:
        line += (
            f"\neval on {ev.n} images ({ev.pixels} labelled pixels): mean IoU {ev.mean_iou:.4f}, pixel accuracy "
            f"{ev.pixel_accuracy:.4f}, mean accuracy {ev.mean_accuracy:.4f}"
        )
        if ev.source_mean_iou is not None:
            line += (
                f" (source mean IoU {ev.source_mean_iou:.4f}, pixel accuracy {ev.source_pixel_accuracy:.4f}, "
                f"pixel agreement {agreement})"
            )
    elif ev and ev.map_50 is not None:
        line += (
            f"\neval on {ev.n} images ({ev.objects} objects): mAP@0.5 {ev.map_50:.4f}, mAP@0.5:0.95 {ev.map_50_95:.4f}"
        )
        if ev.source_map_50 is not None:
            line += (
                f" (source mAP@0.5 {ev.source_map_50:.4f}, mAP@0.5:0.95 {ev.source_map_50_95:.4f}, matched-detection "
                f"agreement {agreement})"
            )
    elif ev and ev.entity_f1 is not None:
        line += (
            f"\neval on {ev.n} examples ({ev.entities} entities): entity F1 {ev.entity_f1:.4f}, precision "
            f"{ev.entity_precision:.4f}, recall {ev.entity_recall:.4f}"
        )
        if ev.source_entity_f1 is not None:
            line += f" (source F1 {ev.source_entity_f1:.4f}, token agreement {agreement})"
    return line + speed_summary(v.speed)


def speed_summary(speed) -> str:
    """The quantized artifact against its float twin, loudly when it is slower."""
    if speed is None or not speed.measured:
        return ""
    times = f"{speed.artifact_ms:.3f} ms vs {speed.float_ms:.3f} ms, batch 1, 1 thread, {speed.backend}"
    if speed.accelerated:
        return f"\nspeed: {speed.speedup:.2f}x its fp32 twin ({times})"
    return (
        f"\nWARNING: {1 / speed.speedup:.2f}x SLOWER than its fp32 twin ({times}): on this CPU and runtime "
        "--precision fp32 ships a faster model"
    )


def _entities_lines(text: str, entities: list[dict]) -> str:
    """A text, then one line per entity: label, score, character span and the span's text."""
    lines = [text]
    for e in entities:
        label = e.get("entity_group", e.get("entity"))
        lines.append(f"  {label}\t{e['score']:.4f}\t{e['start']}-{e['end']}\t{text[e['start'] : e['end']]!r}")
    return "\n".join(lines if entities else [text, "  (no entities)"])


def _answer_each(model, questions: list[str], context: str | None) -> list[tuple[str, dict]]:
    if not context:
        raise InputError("a question-answering model needs the text to answer from", 'pass --context "..."')
    return [(q, model.predict({"question": q, "context": context})) for q in questions]


def _predict_each(model, inputs: list[str], options: dict | None = None) -> list[tuple[str, object]]:
    """(shown name, prediction) for each input; a .npy batch gives one row per item."""

    rows = []
    is_text = model.manifest.data_kind == "text"
    for text in inputs:
        path = Path(text)
        if path.suffix == ".npy" and not is_text:
            array = read_npy(path)
            _, single = model.batch_of(array)
            result = model.predict(array)
            rows.extend([(str(path), result)] if single else [(f"{path}[{i}]", r) for i, r in enumerate(result)])
        elif path.suffix.lower() in IMAGE_SUFFIXES | AUDIO_SUFFIXES and not is_text:
            rows.append((str(path), model.predict(path)))
        elif is_text:
            rows.append((text, model.predict(text, **(options or {}))))
        else:
            raise InputError(
                f"'{text[:80]}' is not an image, .wav or .npy file",
                f"this model takes {model.manifest.data_kind or 'arrays'}: pass image or .wav paths, or .npy files",
            )
    return rows


def _generate_each(model, args) -> int:
    """Each prompt's generation, streamed to stdout (or one JSON list at the end), with its speed on stderr."""
    check_count("--max-new-tokens", args.max_new_tokens, 1)
    options = dict(
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        stop=args.stop,
        cache=args.cache,
        stream=True,
    )
    results = []
    for prompt in args.inputs:
        stream = model.generate(prompt, **options)
        for piece in stream:
            if not args.json:
                print(piece, end="", flush=True)
        result = stream.result
        results.append({"prompt": prompt, **{k: v for k, v in vars(result).items() if k != "timings"}})
        if not args.json:
            speed = f", {result.decode_tokens_per_s:.1f} tokens/s" if result.decode_tokens_per_s else ""
            print()
            print(
                f"[{len(result.token_ids)} tokens, {result.finish_reason}; first token after "
                f"{result.time_to_first_token_s * 1000:.1f} ms{speed}]",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def cmd_predict(args) -> int:
    import numpy as np

    check_count("--threads", args.threads, 1)
    with load(args.artifact, backend=args.backend, threads=args.threads, public_key=args.public_key) as model:
        if model.manifest.input_kind == "generation":
            return _generate_each(model, args)
        options = {"aggregation_strategy": args.aggregation_strategy} if args.aggregation_strategy else {}
        if options and "aggregation_strategy" not in model.task_spec.predict_options:
            raise InputError(f"--aggregation-strategy applies to token classifiers, not to {model.task}", "drop it")
        if model.task == "question-answering":
            rows = _answer_each(model, args.inputs, args.context)
        elif args.context is not None:
            raise InputError(f"--context applies to question-answering models, not to {model.task}", "drop it")
        else:
            rows = _predict_each(model, args.inputs, options)
    rows = [(name, r.tolist() if isinstance(r, np.ndarray) else r) for name, r in rows]
    rows = [(name, {**r, "mask": r["mask"].tolist()} if isinstance(r, dict) and "mask" in r else r) for name, r in rows]
    if args.json:
        print(json.dumps([{"input": name, "output": r} for name, r in rows], indent=2))
        return 0
    for name, result in rows:
        if model.task_spec.name == "token-classification":
            print(_entities_lines(name, result))
        elif model.task_spec.name == "semantic-segmentation":
            height, width = len(result["mask"]), len(result["mask"][0])
            shares = ", ".join(f"{k} {v:.3f}" for k, v in result["fractions"].items())
            print(f"{height}x{width} mask: {shares}\t{name}")
        elif model.task_spec.name == "object-detection":
            print(_detections_line(name, result))
        elif model.task_spec.name == "question-answering":
            print(f"{result['answer']}\t{result['score']:.4f}\t{result['start']}-{result['end']}\t{name}")
        elif isinstance(result, dict):
            print(f"{result['label']}\t{result['score']:.4f}\t{name}")
        else:
            print(f"[{', '.join(f'{v:.4f}' for v in result[:4])}, ...] (dim {len(result)})\t{name}")
    return 0


def _detections_line(name: str, found: list[dict]) -> str:
    """`3 objects: disc 0.91 [12,4,30,22], ...<TAB>image` (boxes xmin,ymin,xmax,ymax rounded to pixels)."""
    parts = [
        f"{d['label']} {d['score']:.2f} [{','.join(str(round(d['box'][k])) for k in ('xmin', 'ymin', 'xmax', 'ymax'))}]"
        for d in found
    ]
    return f"{len(found)} object{'s' if len(found) != 1 else ''}: {', '.join(parts) or '-'}\t{name}"


def cmd_inspect(args) -> int:
    folder, m = open_artifact(args.artifact, verify=True, public_key=args.public_key)
    if args.json:
        print(json.dumps(m.to_dict(), indent=2))
        return 0
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    model_size = (
        sum(p.stat().st_size for p in (folder / m.model_file).rglob("*"))
        if (folder / m.model_file).is_dir()
        else (folder / m.model_file).stat().st_size
    )
    print(f"{m.name}  ({folder})")
    print(
        f"  task {m.task}, target {m.target}, precision {m.precision}, schema v{m.schema_version}, bmsdk "
        f"{m.bmsdk_version}"
    )
    print(f"  model file {m.model_file}: {model_size / 1e6:.2f} MB (artifact {size / 1e6:.2f} MB), checksums verified")
    print(f"  signature: {_signature_status(folder, args.public_key)}")
    for kind, specs in (("input", m.inputs), ("output", m.outputs)):
        for spec in specs:
            print(f"  {kind:6} {spec.describe()}")
    pre = {k: v for k, v in m.preprocessing.items() if k != "kind"}
    print(f"  pre-processing {m.preprocessing.get('kind', 'none')}: {json.dumps(pre)}")
    if m.preprocessing.get("normalization") == DEFAULT_0_1:
        print("  note: image mean/std were left at 0/1 (none given at conversion: --mean/--std)")
    if m.labels:
        print(f"  labels: {', '.join(m.labels)}")
    q = m.compression.quantization
    if q:
        print(f"  quantization: {q.scheme}, {_float_summary(q)}")
    print(f"  source: {m.source.get('format')} {m.source.get('path')}")
    print("  " + validation_summary(m.validation).replace("\n", "\n  "))
    return 0


def cmd_validate(args) -> int:
    folder, manifest = open_artifact(args.artifact, verify=True, public_key=args.public_key)
    eval_set = load_dataset(args.eval) if args.eval else None
    kind = manifest.input_kind
    if eval_set is not None and kind and eval_set.kind not in (kind, "tensor"):
        raise DataError(
            f"{args.eval} holds {eval_set.kind} inputs but the model takes {kind}", f"pass {kind} data for this model"
        )
    inputs, outputs, _ = load_samples(folder)
    result = validate_artifact(folder, manifest, inputs, outputs, eval_set, None, Progress())
    recorded, ev = manifest.validation.eval, result.eval
    if ev and ev.artifact and recorded and recorded.source and recorded.data == ev.data:
        ev.source, ev.delta = recorded.source, delta(ev.artifact, recorded.source)
        ev.top1_agreement = recorded.top1_agreement
    if ev and ev.mean_iou is not None and recorded and recorded.data == ev.data:
        ev.source_mean_iou, ev.top1_agreement = recorded.source_mean_iou, recorded.top1_agreement
        ev.source_pixel_accuracy = recorded.source_pixel_accuracy
    if ev and ev.map_50 is not None and recorded and recorded.data == ev.data:
        ev.source_map_50, ev.source_map_50_95 = recorded.source_map_50, recorded.source_map_50_95
        ev.top1_agreement = recorded.top1_agreement
    if ev and (ev.entity_f1 is not None or ev.exact_match is not None) and recorded and recorded.data == ev.data:
        ev.source_entity_f1, ev.top1_agreement = recorded.source_entity_f1, recorded.top1_agreement
        ev.source_exact_match, ev.source_answer_f1 = recorded.source_exact_match, recorded.source_answer_f1
    print(validation_summary(result).replace("top-1 agreement n/a", "top-1 agreement as recorded: n/a"))
    if not result.validated:
        return 1
    return 0 if result.passed else 1


def _list(text: str | None) -> list[str] | None:
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


def _batches(text: str | None, flag: str = "--batch") -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise UnsupportedError(
            f"{flag} must be whole numbers, got '{text[:80]}'", "write them comma-separated, e.g. 1,8"
        ) from None


def cmd_bench(args) -> int:
    is_case = args.source.endswith(".json")
    result = benchmark(
        None if is_case else args.source,
        args.output,
        case=args.source if is_case else None,
        targets=_list(args.targets),
        precisions=_list(args.precisions),
        eval_data=args.eval,
        calibration=args.calibration,
        batches=_batches(args.batch),
        threads=args.threads,
        warmup=args.warmup,
        iterations=args.iterations,
        seconds=args.seconds,
        repeats=args.repeats,
        max_noise_pct=args.max_noise,
        max_repeats=args.max_repeats,
        seq_lengths=_batches(args.seq_lengths, "--seq-lengths"),
        baseline=args.baseline,
        max_accuracy_drop=args.max_accuracy_drop,
        max_latency_regression=args.max_latency_regression,
        artifacts_dir=args.artifacts,
        progress=Progress(),
        cluster=args.cluster,
        eval_shards=args.eval_shards,
        artifact_store=args.artifact_store,
        devices=_devices(args.device),
        resume=args.resume,
        task=args.task,
        input_shapes=parse_input_shapes(args.input_shape) or None,
    )
    print(result.paths["md"].read_text())
    print("reports: " + ", ".join(str(p) for p in result.paths.values()))
    skipped = result.report["gate"].get("latency_not_compared")
    if skipped:
        print(f"latency not gated: {skipped}; accuracy is", file=sys.stderr)
    if result.regressions:
        print(f"gate FAILED against {args.baseline}:", file=sys.stderr)
        for line in result.regressions:
            print(f"  - {line}", file=sys.stderr)
        return 1
    if args.baseline:
        print(f"gate passed against {args.baseline}")
    return 0


def cmd_optimize(args) -> int:
    labels, mean, std = _labels(args.labels), _floats(args.mean, "--mean"), _floats(args.std, "--std")
    check_convert_args(labels, mean, std, args.max_length)
    result = optimize(
        args.source,
        _list(args.targets),
        args.eval,
        output=args.output,
        out_dir=args.report,
        max_accuracy_drop=args.max_accuracy_drop,
        objective=args.objective,
        precisions=_list(args.precisions),
        calibration=args.calibration,
        prune=_floats(args.prune, "--prune"),
        recover=args.recover,
        time_budget_s=args.time_budget * 60 if args.time_budget is not None else None,
        threads=args.threads,
        overwrite=args.overwrite,
        progress=Progress(),
        task=args.task,
        input_shapes=parse_input_shapes(args.input_shape) or None,
        max_length=args.max_length,
        labels=labels,
        mean=mean,
        std=std,
        tokenizer=args.tokenizer,
        weights=args.weights,
        name=args.name,
    )
    return _optimize_summary(result)


def _optimize_summary(result) -> int:
    print(result.paths["optimize"].read_text())
    print("reports: " + ", ".join(str(p) for p in result.paths.values()))
    if result.path is None:
        print("error: no candidate fits the budget; optimize.md says why each was turned down", file=sys.stderr)
        return 1
    print(result.path)
    return 0


def _devices(values: list[str] | None) -> dict[str, str]:
    devices = {}
    for value in values or []:
        target, sep, resource = value.partition("=")
        if not sep or not target or not resource:
            raise InputError(f"--device {value}: expected TARGET=RESOURCE", "e.g. --device tflite=android:R58M")
        devices[target.strip()] = resource.strip()
    return devices


def cmd_export_vectors(args) -> int:
    folder, manifest = open_artifact(args.artifact, public_key=args.public_key)
    if manifest.input_kind == "generation":  # vectors from generating on the artifact's own runtime
        with load(args.artifact, public_key=args.public_key) as model:
            vectors = artifact_vectors(model.folder, model.manifest, model.run)
    else:
        vectors = export_vectors(args.artifact, public_key=args.public_key)
    text = json.dumps(vectors, indent=1)
    if args.output:
        try:
            Path(args.output).write_text(text + "\n")
        except OSError as e:
            raise BmsdkError(
                f"cannot write {args.output} ({e.strerror or e})", "pass a path in an existing folder you can write to"
            ) from None
        print(args.output)
    else:
        print(text)
    return 0


def cmd_keygen(args) -> int:
    private, public = generate_keypair(args.output)
    print(f"{private}  private key (mode 0600): keep it secret, sign with `bmsdk sign ARTIFACT --key {private}`")
    print(
        f"{public}  public key sha256:{fingerprint(load_public_key(public))[:16]}: "
        f"load with `--public-key {public}` or BMSDK_PUBLIC_KEY={public}"
    )
    return 0


def cmd_sign(args) -> int:
    path = sign_artifact(args.artifact, args.key)
    signer = json.loads(path.read_text())["public_key_sha256"]
    print(f"signed {args.artifact} with key sha256:{signer[:16]} ({path})")
    return 0


def cmd_verify(args) -> int:
    key = args.public_key or os.environ.get(PUBLIC_KEY_ENV)
    if not key:
        raise BmsdkError(
            "bmsdk verify needs the signer's public key", f"pass --public-key NAME.pub.pem or set {PUBLIC_KEY_ENV}"
        )
    signer = verify_artifact(args.artifact, key)
    print(f"signature good: {args.artifact} signed by key sha256:{signer[:16]}, every file matches bmsdk.json")
    return 0


def _signature_status(folder: Path, public_key: str | None) -> str:
    if public_key or os.environ.get(PUBLIC_KEY_ENV):
        return "verified against the public key"
    if (folder / SIGNATURE_NAME).exists():
        return f"{SIGNATURE_NAME} present, not checked (pass --public-key to verify it)"
    return "unsigned"


def cmd_tasks(args) -> int:
    rows = []
    for name in task_names():
        task = get_task(name)
        rows.append(
            {
                "task": name,
                "huggingface": {"architectures": [f"*{s}" for s in task.hf_suffixes], "auto_class": task.hf_auto_class},
                "inputs": task.hf_inputs,
                "targets": [t.name for t in all_targets() if t.tasks is None or name in t.tasks],
                "architectures": architectures_for(name),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    record = zoo_support()
    for row in rows:
        print(f"{row['task']}  ({row['inputs']}; {', '.join(row['huggingface']['architectures'])})")
        print(f"  targets: {', '.join(row['targets'])}")
        if row["architectures"]:
            known = ", ".join(f"{a} {v['passed']}/{v['cells']}" for a, v in row["architectures"].items())
            print(f"  architectures (cells passed in the test zoo, transformers {record.get('transformers')}): {known}")
    return 0


def cmd_doctor(args) -> int:
    report = diagnose()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"bmsdk {report['bmsdk']} on Python {report['python']} ({report['platform']})")
    print(f"GPU: {report['gpu'] or 'none found'}")
    for section in ("runtimes", "converters"):
        print(f"{section}:")
        for name, version in report[section].items():
            print(f"  {name:20} {version or 'not installed'}")
    print(
        "targets: "
        + ", ".join(f"{t} ({'ready' if ok else 'missing: ' + why})" for t, (ok, why) in report["targets"].items())
    )
    print(
        "native runtimes: "
        + ", ".join(
            f"{t} ({'ready' if ok else 'missing: ' + why})" for t, (ok, why) in report.get("run_targets", {}).items()
        )
    )
    return 0
