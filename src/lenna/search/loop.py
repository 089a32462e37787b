"""The search loop of latency-aware DARTS: weight steps and alpha steps in turn, per epoch.

The training part of the data is cut in two halves: one trains the supernet's weights (SGD,
cosine schedule, gradient clipping), the other its alphas (`Architect`, Adam). Alpha updates
start after ``warmup_epochs`` of weight-only training. After every epoch the current genotype is
derived (`derive_genotype`) and recorded with the predicted latencies, and whether the plain
argmax of the alphas would have been a disconnected cell (`argmax_disconnected`, NAS-Bench-201).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict

import pandas as pd
import torch
from torch import nn

from lenna.search.architect import Architect, accuracy
from lenna.search.images import ImageData, Split, batches
from lenna.search.settings import SearchSettings
from lenna.search.supernet import (
    SKIP,
    SuperNet,
    alpha_table,
    argmax_disconnected,
    derive_genotype,
    make_supernet,
)
from lenna.space import lenna_block
from lenna.space.genotype import Genotype
from lenna.space.nb201 import Arch
from lenna.space.network import Macro
from lenna.space.spaces import get_space


def halves(split: Split, generator: torch.Generator) -> tuple[Split, Split]:
    """The training part cut in a weight half and an alpha half (a seeded permutation)."""
    order = torch.randperm(len(split), generator=generator)
    mid = len(split) // 2
    return split.subset(order[:mid]), split.subset(order[mid:])


class WeightStep:
    """SGD on the supernet's weights (momentum, weight decay, gradient clipping, cosine schedule)."""

    def __init__(self, net: SuperNet, settings: SearchSettings):
        self.net, self.grad_clip = net, settings.grad_clip
        self.params = [p for _, p in net.weights()]
        self.optimizer = torch.optim.SGD(
            self.params, settings.w_lr, momentum=settings.w_momentum, weight_decay=settings.w_weight_decay
        )
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, settings.epochs, eta_min=settings.w_lr_min
        )
        self.seconds = 0.0

    @property
    def lr(self) -> float:
        return self.schedule.get_last_lr()[0]

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """One update on the batch; returns its cross entropy and accuracy."""
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.net(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward(inputs=self.params)
        nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.optimizer.step()
        self.seconds += time.perf_counter() - t0
        return loss.item(), accuracy(logits, y)


def _cycle(split: Split, batch_size: int, generator: torch.Generator) -> Iterator[tuple]:
    """Batches of ``split`` without end: a new shuffled pass whenever one is used up."""
    while True:
        yield from batches(split, batch_size, generator)


class _Mean:
    """Sample-weighted means of per-batch values."""

    def __init__(self):
        self.sums, self.n = {}, {}

    def add(self, n: int, **values: float) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + value * n
            self.n[key] = self.n.get(key, 0) + n

    def get(self, key: str) -> float:
        return self.sums[key] / self.n[key] if self.n.get(key) else float("nan")


def search_epoch(
    weights: WeightStep,
    architect: Architect | None,
    halves_: tuple[Split, Split],
    batch_size: int,
    gen: torch.Generator,
    device: torch.device,
) -> dict:
    """One pass over the weight half of ``halves_`` (weight half, alpha half): before each weight
    step, an alpha step on the next alpha batch (none when ``architect`` is None, during warm-up).
    Returns the epoch's mean losses and accuracies."""
    w_half, a_half = halves_
    alpha_batches = _cycle(a_half, batch_size, gen)
    mean = _Mean()
    weights.net.train()
    for x_w, y_w in batches(w_half, batch_size, gen):
        x_w, y_w = x_w.to(device), y_w.to(device)
        if architect is not None:
            x_a, y_a = (t.to(device) for t in next(alpha_batches))
            ce, acc = architect.step(x_w, y_w, x_a, y_a, weights.lr)
            mean.add(len(y_a), arch_loss=ce, arch_acc=acc)
        loss, acc = weights(x_w, y_w)
        mean.add(len(y_w), train_loss=loss, train_acc=acc)
    weights.schedule.step()
    return {k: mean.get(k) for k in ("train_loss", "train_acc", "arch_loss", "arch_acc")}


def skip_count(arch) -> int:
    """Skip connections of the normal cell (of the NAS-Bench-201 cell; identities of LENNA's
    normal block)."""
    if isinstance(arch, lenna_block.Arch):
        return arch.identities()
    ops = arch.ops if isinstance(arch, Arch) else [op for op, _ in arch.normal]
    return sum(op == SKIP for op in ops)


def epoch_record(net: SuperNet, settings: SearchSettings, architect: Architect, genotype_latency) -> dict:
    """What an epoch ends with: the derived genotype (with and without the skip cap), its
    predicted latency, the expected latency of the alphas, whether the plain argmax cell would
    have been disconnected (a collapse the connected derivation hides) and the alphas themselves."""
    genotype = derive_genotype(net, settings.max_skip_normal)
    uncapped = derive_genotype(net, None)
    return {
        "expected_latency_ms": architect.expected_ms(),
        "genotype_latency_ms": genotype_latency(genotype),
        "skip_normal": skip_count(uncapped),
        "skip_normal_capped": skip_count(genotype),
        "argmax_disconnected": argmax_disconnected(net),
        "genotype": str(genotype),
        **alpha_table(net),
    }


def run_search(
    data: ImageData,
    macro: Macro,
    op_names: Sequence[str],
    steps: int,
    settings: SearchSettings,
    lam: float,
    seed: int,
    expected_latency: Callable[..., torch.Tensor],
    genotype_latency: Callable[[Genotype], float],
    log: Callable[[str], None] = lambda s: None,
    device: torch.device | str = "cpu",
) -> tuple[Genotype | Arch, pd.DataFrame, dict]:
    """Search a cell pair; returns the derived genotype, the per-epoch history and a summary.

    ``expected_latency(*alphas)`` is the differentiable predicted latency (ms) of the search
    network's cells (DARTS: alpha_normal, alpha_reduce; NAS-Bench-201: its one alpha);
    ``genotype_latency`` predicts a discrete architecture's (a `Genotype` or an `Arch`).
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = make_supernet(get_space(op_names, steps), macro, gen).to(device)
    w_half, a_half = halves(data.train, gen)
    weights = WeightStep(net, settings)
    architect = Architect(net, settings, lam, expected_latency)
    history = []
    for epoch in range(settings.epochs):
        lr, update_alpha = weights.lr, epoch >= settings.warmup_epochs
        means = search_epoch(
            weights, architect if update_alpha else None, (w_half, a_half), settings.batch_size, gen, device
        )
        row = {"epoch": epoch, "lr": lr, "alpha_updates": update_alpha, **means}
        history.append(row | epoch_record(net, settings, architect, genotype_latency))
        log(
            f"epoch {epoch}: loss {row['train_loss']:.3f} acc {row['train_acc']:.3f} "
            f"arch acc {row['arch_acc']:.3f} E[lat] {history[-1]['expected_latency_ms']:.3f} ms "
            f"genotype {history[-1]['genotype_latency_ms']:.3f} ms skips {history[-1]['skip_normal']}"
            + (" (the argmax cell is disconnected)" if history[-1]["argmax_disconnected"] else "")
        )
    summary = {
        "lambda": lam,
        "seed": seed,
        "reference_latency_ms": architect.reference_ms,
        "final_expected_latency_ms": history[-1]["expected_latency_ms"],
        "genotype_latency_ms": history[-1]["genotype_latency_ms"],
        "argmax_disconnected": bool(history[-1]["argmax_disconnected"]),
        "argmax_disconnected_epochs": sum(row["argmax_disconnected"] for row in history),
        "settings": asdict(settings),
        "data": data.sizes() | {"weight_half": len(w_half), "alpha_half": len(a_half)},
        "weight_step_s": weights.seconds,
        **architect.seconds,
    }
    return derive_genotype(net, settings.max_skip_normal), pd.DataFrame(history), summary
