"""Evaluation of a found architecture: its network trained from scratch, scored once on test.

Takes only a genotype and the final macro settings; knows nothing of the search that found it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from torch import nn

from lenna.search.images import ImageData, Split, batches
from lenna.space.genotype import Genotype
from lenna.space.nb201 import Arch
from lenna.space.network import Macro


@dataclass(frozen=True)
class FinalSettings:
    """Training from scratch of a derived network."""

    epochs: int = 50
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0


def evaluate(model: nn.Module, split: Split, batch_size: int = 256) -> tuple[float, float]:
    """(mean cross entropy, accuracy) of a model on a split, in eval mode."""
    was_training = model.training
    model.eval()
    loss = correct = 0.0
    with torch.no_grad():
        for x, y in batches(split, batch_size, None, shuffle=False):
            logits = model(x)
            loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            correct += float((logits.argmax(dim=1) == y).sum())
    model.train(was_training)
    return loss / len(split), correct / len(split)


def train_final(
    genotype: Genotype | Arch,
    macro: Macro,
    data: ImageData,
    settings: FinalSettings,
    seed: int,
    log: Callable[[str], None] = lambda s: None,
    device: torch.device | str = "cpu",
) -> tuple[pd.DataFrame, dict]:
    """Train a genotype's network from scratch on the train part, report val each epoch and the
    test accuracy once at the end. Returns the history and the metrics."""
    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = genotype.network(macro).to(device)
    opt = torch.optim.SGD(
        net.parameters(), settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.epochs, eta_min=settings.lr_min)
    history = []
    started = time.perf_counter()
    for epoch in range(settings.epochs):
        net.train()
        total = correct = loss_sum = 0.0
        for x, y in batches(data.train, settings.batch_size, gen):
            x, y = x.to(device), y.to(device)
            opt.zero_grad(set_to_none=True)
            logits = net(x)
            loss = nn.functional.cross_entropy(logits, y)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), settings.grad_clip)
            opt.step()
            loss_sum += loss.item() * len(y)
            correct += float((logits.argmax(1) == y).sum())
            total += len(y)
        sched.step()
        val_loss, val_acc = evaluate(net, _on(data.val, device))
        history.append(
            {
                "epoch": epoch,
                "train_loss": loss_sum / total,
                "train_acc": correct / total,
                "val_loss": val_loss,
                "val_acc": val_acc,
            }
        )
        log(f"epoch {epoch}: loss {loss_sum / total:.3f} val acc {val_acc:.4f}")
    test_loss, test_acc = evaluate(net, _on(data.test, device))
    metrics = {
        "test_accuracy": test_acc,
        "test_loss": test_loss,
        "val_accuracy": history[-1]["val_acc"],
        "n_test": len(data.test),
        "parameters": sum(p.numel() for p in net.parameters()),
        "train_seconds": time.perf_counter() - started,
        "seed": seed,
        "settings": asdict(settings),
    }
    return pd.DataFrame(history), metrics


def _on(split: Split, device: torch.device) -> Split:
    return Split(split.x.to(device), split.y.to(device))
