"""Recovery: a brief fine-tune of a pruned model on CPU, distilling from the unpruned model (and labels where given)."""

from __future__ import annotations

import time

import numpy as np

from bmsdk.sections import Recovery

TEMPERATURE = 2.0
LABEL_WEIGHT = 0.5  # weight of the cross-entropy on labels, next to the distillation loss
LEARNING_RATES = {"text": 1e-4, "image": 1e-3}
SEED = 0


def recover(
    student,
    teacher,
    batches: list[dict[str, np.ndarray]],
    labels: list[np.ndarray] | None,
    steps: int,
    kind: str | None,
) -> Recovery:
    """`steps` AdamW steps over `batches` (cycled); the loss is KL(teacher || student) at temperature 2, plus CE on
    labels."""
    import torch

    lr = LEARNING_RATES.get(kind or "", 1e-4)
    params = [p for p in student.parameters() if p.is_floating_point()]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    teacher.eval()
    student.train()
    start = time.perf_counter()
    with torch.random.fork_rng():  # dropout draws from torch's global generator: seed it, and leave the caller's alone
        torch.manual_seed(SEED)
        losses = [
            _step(
                student,
                teacher,
                optimizer,
                batches[step % len(batches)],
                labels[step % len(batches)] if labels is not None else None,
            )
            for step in range(steps)
        ]
    student.eval()
    for p in params:
        p.requires_grad_(False)
    head = losses[: max(1, len(losses) // 10)]
    tail = losses[-max(1, len(losses) // 10) :]
    loss = "distillation (KL, T=2) from the unpruned model"
    if labels is not None:
        loss += f" + {LABEL_WEIGHT} x cross-entropy on labels"
    return Recovery(
        steps=steps,
        optimizer=f"AdamW lr {lr:g}",
        seed=SEED,
        loss=loss,
        examples=int(sum(len(next(iter(b.values()))) for b in batches)),
        loss_first=float(np.mean(head)),
        loss_last=float(np.mean(tail)),
        seconds=round(time.perf_counter() - start, 1),
    )


def _step(student, teacher, optimizer, batch: dict[str, np.ndarray], labels: np.ndarray | None) -> float:
    import torch
    import torch.nn.functional as F

    feeds = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}
    with torch.no_grad():
        target = _logits(teacher(**feeds))
    out = _logits(student(**feeds))
    if out.ndim == 2:
        loss = (
            F.kl_div(F.log_softmax(out / TEMPERATURE, -1), F.softmax(target / TEMPERATURE, -1), reduction="batchmean")
            * TEMPERATURE**2
        )
        if labels is not None:
            loss = loss + LABEL_WEIGHT * F.cross_entropy(out, torch.from_numpy(labels).long())
    else:  # embeddings: match the teacher's
        loss = F.mse_loss(out, target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss)


def _logits(out):
    return out[0] if isinstance(out, (tuple, list)) else out
