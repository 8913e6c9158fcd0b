"""Benchmark reports: report.json (the data), report.md (the table), report.html and plot.png (latency against
accuracy, one point per cell, the Pareto front drawn)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

TASK_METRICS = ("accuracy", "entity_f1", "answer_f1", "mean_iou", "map_50_95")  # what each task's accuracy column shows


def task_metric_name(metric: dict) -> str | None:
    """Which metric the accuracy column shows: accuracy, a token classifier's entity F1, a reader's SQuAD F1, a
    segmenter's mean IoU or a detector's COCO mAP@0.5:0.95."""
    return next((name for name in TASK_METRICS if name in metric), None)


def task_metric(metric: dict) -> float | None:
    name = task_metric_name(metric)
    return metric[name] if name else None


def rows(report: dict) -> list[dict]:
    """The source model first, then every cell: one flat row each, for tables and plots."""
    batch = str(report["batches"][0])
    out = []
    entries = ([report["source_model"]] if report.get("source_model") else []) + report["cells"]
    for entry in entries:
        latency = entry.get("latency", {}).get(batch, {})
        metric = entry.get("metric", {})
        out.append(
            {
                "target": entry["target"],
                "task": entry.get("task", ""),
                "precision": entry["precision"],
                "variant": entry.get("variant", ""),
                "status": entry.get("status", "reference"),
                "reason": entry.get("reason", ""),
                "backend": entry.get("backend", ""),
                "reference_executor": entry.get("device_real") is False,
                "size_mb": entry.get("size_mb"),
                "load_ms": entry.get("load_ms"),
                "p50": latency.get("p50_ms"),
                "noise_pct": latency.get("noise_pct"),
                "p90": latency.get("p90_ms"),
                "p99": latency.get("p99_ms"),
                "throughput": latency.get("throughput_per_s"),
                "rss_mb": entry.get("rss_delta_mb"),
                "e2e": entry.get("end_to_end", {}).get("p50_ms"),
                "accuracy": task_metric(metric),
                "eval_examples": entry.get("eval_examples"),  # set when the cell scored fewer than the eval set
                "metric_name": task_metric_name(metric),
                "macro_f1": metric.get("macro_f1"),
                "delta_pt": entry.get("accuracy_change_pt", 0.0 if entry is report.get("source_model") else None),
                "agreement": entry.get("top1_agreement", entry.get("mean_cosine")),
                "slower_than_float": (entry.get("speed_vs_float") or {}).get("accelerated") is False,
                "speedup": entry.get("speedup_vs_source", {}).get(
                    batch, 1.0 if entry is report.get("source_model") else None
                ),
                **_generation_row(entry, entry is report.get("source_model")),
            }
        )
    return out


def _generation_row(entry: dict, is_source: bool) -> dict:
    """Text generation's columns: perplexity and its change, time to first token, prefill and decode speed."""
    gen = entry.get("generation") or {}
    return {
        "perplexity": (entry.get("metric") or {}).get("perplexity"),
        "perplexity_change_pct": entry.get("perplexity_change_pct", 0.0 if is_source else None),
        "ttft_ms": gen.get("time_to_first_token_ms"),
        "prefill_tps": gen.get("prefill_tokens_per_s"),
        "decode_tps": gen.get("decode_tokens_per_s"),
        "decode_speedup": entry.get("decode_speedup_vs_source", 1.0 if is_source and gen else None),
    }


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats on both latency (lower) and accuracy (higher)."""
    front = []
    for i, (lat, acc) in enumerate(points):
        dominated = any(
            l2 <= lat and a2 >= acc and (l2 < lat or a2 > acc) for j, (l2, a2) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def _fmt(value, spec: str, none: str = "–") -> str:
    return none if value is None else format(value, spec)


def markdown(report: dict) -> str:
    if any(r["perplexity"] is not None or r["decode_tps"] is not None for r in rows(report)):
        return generation_markdown(report)
    batch = report["batches"][0]
    env = report["environment"]
    lines = [
        f"### {report['name']}: latency (batch {batch}, {env['threads']} thread(s)) against accuracy",
        "",
        "| target | precision | status | size (MB) | load (ms) | p50 (ms) | p90 (ms) | p99 (ms) | items/s | e2e "
        "p50 (ms) "
        "| RSS +MB | accuracy | Δ acc (pt) | agreement | speed-up vs torch |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows(report):
        lines.append(
            f"| {r['target']} | {(r['precision'] + ' ' + r['variant']).strip()} | {_status(r)} | "
            f"{_fmt(r['size_mb'], '.2f')} | {_fmt(r['load_ms'], '.0f')} "
            f"| {_fmt(r['p50'], '.3f')}{_noise(r)} | {_fmt(r['p90'], '.3f')} | {_fmt(r['p99'], '.3f')} | "
            f"{_fmt(r['throughput'], '.0f')} "
            f"| {_fmt(r['e2e'], '.3f')} | {_fmt(r['rss_mb'], '.1f')} | {_fmt(r['accuracy'], '.4f')} "
            f"| {_fmt(r['delta_pt'], '+.2f')} | {_fmt(r['agreement'], '.4f')} | "
            f"{_fmt(r['speedup'], '.2f')}{'×' if r['speedup'] is not None else ''} |"
        )
    lines.append("")
    lines.append(
        f"{env['cpu']}, {env['cores']} cores; latency = model call on pre-processed input (median of "
        f"{report['settings']['repeats']} runs' p50; ± the 95% interval of the median over all calls); "
        "e2e includes pre/post-processing; "
        "speed-up relative to the source model in torch eager fp32, measured in the same run."
    )
    return "\n".join(lines + scaling_markdown(report) + shards_markdown(report) + workers_markdown(report))


def _scaled(report: dict) -> list[dict]:
    """The entries (source first) timed at more than one batch size or sequence length."""
    entries = ([report["source_model"]] if report.get("source_model") else []) + report["cells"]
    return [e for e in entries if len(e.get("latency") or {}) > 1 or e.get("sequence_latency")]


def scaling_markdown(report: dict) -> list[str]:
    """p50 per batch size (and per sequence length at batch 1 for text models): how latency grows."""
    scaled = _scaled(report)
    if not scaled:
        return []
    batches = sorted({int(b) for e in scaled for b in e.get("latency", {})})
    lengths = sorted({int(n) for e in scaled for n in e.get("sequence_latency") or {}})
    header = [f"batch {b}" for b in batches] + [f"seq {n}" for n in lengths]
    lines = ["", "#### Scaling: p50 (ms) by batch size, and by sequence length at batch 1", ""]
    lines.append("| target | precision | " + " | ".join(header) + " |")
    lines.append("|---|---|" + "---:|" * len(header))
    for e in scaled:
        values = [e.get("latency", {}).get(str(b), {}).get("p50_ms") for b in batches]
        values += [(e.get("sequence_latency") or {}).get(str(n)) for n in lengths]
        label = (e["precision"] + " " + e.get("variant", "")).strip()
        lines.append(f"| {e['target']} | {label} | " + " | ".join(_fmt(v, ".3f") for v in values) + " |")
    return lines


def shards_markdown(report: dict) -> list[str]:
    """Accuracy over every shard of --eval-shards (confusion counts summed across shards)."""
    scored = [c for c in report["cells"] if c.get("sharded_metric")]
    if not scored:
        return []
    where = report.get("eval_shards") or {}
    lines = ["", f"Over all {where.get('shards', '?')} shards of {where.get('data', '?')}:", ""]
    lines += ["| target | precision | examples | accuracy | macro-F1 |", "|---|---|---:|---:|---:|"]
    for c in scored:
        m = c["sharded_metric"]
        name = f"{c['precision']}{' ' + c['variant'] if c.get('variant') else ''}"
        if "error" in m:
            lines.append(f"| {c['target']} | {name} | – | not scored: {m['error'][:80]} | – |")
        else:
            lines.append(
                f"| {c['target']} | {name} | {m['n']} | {_fmt(m['accuracy'], '.4f')} | {_fmt(m['macro_f1'], '.4f')} |"
            )
    return lines


def workers_markdown(report: dict) -> list[str]:
    """Where each cell ran (a --cluster run): its worker node, device and the worker's fingerprint."""
    entries = [e for e in [report.get("source_model") or {}, *report["cells"]] if e.get("worker")]
    if not entries:
        return []
    lines = ["", "| target | precision | worker | device | CPU | ISA | OS | retries |", "|---" * 8 + "|"]
    for e in entries:
        w = e["worker"]
        name = f"{w.get('host', '?')} {w.get('node', '')[:8]}".strip()
        retries = sum(a != "finished" for a in e.get("attempts", []))
        lines.append(
            f"| {e['target']} | {e['precision']}{' ' + e['variant'] if e.get('variant') else ''} | {name} | "
            f"{e.get('device', 'any CPU worker')} | {w.get('cpu', '')} | {' '.join(w.get('isa', []))} | "
            f"{w.get('os', '')} | {retries} |"
        )
    return lines


def _noise(r: dict) -> str:
    """± the half-width of the median's 95% interval, in % of the median."""
    return f" ±{r['noise_pct']:.0f}%" if r.get("noise_pct") is not None and r.get("p50") is not None else ""


def _status(r: dict) -> str:
    status = r["status"] + (" (reference executor)" if r["reference_executor"] else "")
    if r.get("slower_than_float"):
        status += " (slower than its fp32 twin)"
    if r["reason"]:  # the problem only; the fix is in report.json
        reason = r["reason"].split(". Fix:")[0].replace("|", "/")  # a pipe would end the table cell
        status += f": {reason[:100]}" + ("…" if len(reason) > 100 else "")
    return status


def _generated(report: dict) -> str:
    counts = sorted({(c.get("generation") or {}).get("new_tokens") for c in report["cells"]} - {None})
    return "/".join(str(c) for c in counts) or "no"


def generation_markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        f"### {report['name']}: text generation ({env['threads']} thread(s)), speed against perplexity",
        "",
        "| target | precision | status | size (MB) | load (ms) | first token (ms) | prefill tok/s | decode tok/s "
        "| RSS +MB | perplexity | Δ perplexity | next-token agreement | decode speed-up vs torch |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows(report):
        lines.append(
            f"| {r['target']} | {(r['precision'] + ' ' + r['variant']).strip()} | {_status(r)} | "
            f"{_fmt(r['size_mb'], '.2f')} | {_fmt(r['load_ms'], '.0f')} | {_fmt(r['ttft_ms'], '.2f')} | "
            f"{_fmt(r['prefill_tps'], '.0f')} | {_fmt(r['decode_tps'], '.1f')} | {_fmt(r['rss_mb'], '.1f')} | "
            f"{_fmt(r['perplexity'], '.3f')} | {_fmt(r['perplexity_change_pct'], '+.2f')}% | "
            f"{_fmt(r['agreement'], '.4f')} | {_fmt(r['decode_speedup'], '.2f')}"
            f"{'×' if r['decode_speedup'] is not None else ''} |"
        )
    lines.append("")
    lines.append(
        f"{env['cpu']}, {env['cores']} cores; greedy decoding of {_generated(report)} tokens; perplexity on the eval "
        "texts; speed-up relative to the source model in torch eager fp32 (same generation loop), measured in the "
        "same run."
    )
    return "\n".join(lines)


def plot_png(report: dict, path: Path) -> Path | None:
    """Latency (log x) against accuracy; the Pareto front as a line. None if no cell has both numbers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    points = [r for r in rows(report) if r["p50"] is not None and r["accuracy"] is not None]
    if not points:
        return None
    coords = [(r["p50"], r["accuracy"]) for r in points]
    front = pareto_front(coords)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for i, r in enumerate(points):
        marker = "*" if r["target"] == "torch" else ("s" if r["reference_executor"] else "o")
        ax.scatter(
            r["p50"],
            r["accuracy"],
            s=70 if i in front else 40,
            marker=marker,
            edgecolors="black" if i in front else "none",
            zorder=3,
        )
        ax.annotate(
            f"{r['target']} {r['precision']} {r['variant']}".strip(),
            (r["p50"], r["accuracy"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    ax.plot(
        [coords[i][0] for i in front], [coords[i][1] for i in front], "--", color="grey", zorder=2, label="Pareto front"
    )
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_xlabel(f"p50 latency, batch {report['batches'][0]} (ms, log)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{report['name']}: latency against accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def scaling_png(report: dict, path: Path) -> Path | None:
    """p50 against batch size (and against sequence length, for text models), one line per cell; log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scaled = _scaled(report)
    if not scaled:
        return None
    panels = [("latency", "batch size")] + (
        [("sequence_latency", "sequence length (batch 1)")] if any(e.get("sequence_latency") for e in scaled) else []
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), dpi=120, squeeze=False)
    for ax, (key, xlabel) in zip(axes[0], panels):
        for e in scaled:
            series = e.get(key) or {}
            points = sorted((int(k), v["p50_ms"] if isinstance(v, dict) else v) for k, v in series.items())
            if len(points) > 1:
                label = f"{e['target']} {e['precision']} {e.get('variant', '')}".strip()
                ax.plot(*zip(*points), marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("p50 latency (ms, log)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{report['name']}: scaling")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def html_page(report: dict, png: Path | None) -> str:
    header = [
        "target",
        "precision",
        "status",
        "size_mb",
        "p50",
        "p90",
        "p99",
        "throughput",
        "e2e",
        "accuracy",
        "delta_pt",
        "agreement",
        "speedup",
    ]
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r[h]))}</td>" for h in header) + "</tr>" for r in rows(report)
    )
    image = (
        '<img alt="latency against accuracy" '
        f'src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">'
        if png
        else "<p>No cell has both latency and accuracy to plot.</p>"
    )
    env = html.escape(json.dumps(report["environment"]))
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>bmsdk bench: {html.escape(report["name"])}</title><style>{style}</style>
</head><body><h1>bmsdk bench: {html.escape(report["name"])}</h1>{image}
<table><tr>{"".join(f"<th>{h}</th>" for h in header)}</tr>{body}</table>
<p>Environment: <code>{env}</code></p></body></html>
"""


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_reports(report: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "md": out_dir / "report.md", "html": out_dir / "report.html"}
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["md"].write_text(markdown(report) + "\n")
    png = plot_png(report, out_dir / "plot.png")
    if png:
        paths["png"] = png
    scaling = scaling_png(report, out_dir / "scaling.png")
    if scaling:
        paths["scaling"] = scaling
    paths["html"].write_text(html_page(report, png))
    return paths
