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
from lenna.space.build import build_network
from lenna.space.genotype import Genotype
from lenna.space.layers import GatedCell
from lenna.space.lenna_layers import LennaNetwork
from lenna.space.nb201 import Arch
from lenna.space.nb201_layers import NB201Network, ResNetBasicBlock
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
    # The DARTS recipe (Liu et al., 2019: cutout 16 on CIFAR-10, drop-path 0.2, auxiliary 0.4);
    # 0 switches each off.
    cutout: int = 0  # side (pixels) of the square zeroed at a random place of every training image
    drop_path: float = 0.0  # drop-path probability, ramped linearly from 0 over the epochs
    auxiliary_weight: float = 0.0  # weight of the auxiliary head's loss, at two thirds of the depth


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier on the features at two thirds of the network (its
    AuxiliaryHeadCIFAR, with adaptive pooling to 2x2 so that it fits any input size)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def auxiliary_tap(net: nn.Module) -> nn.Module:
    """The module whose output feeds the auxiliary head: DARTS's second reduction cell, or the
    second reduction block of a NAS-Bench-201 network or of a LENNA network (the start of its
    last stage)."""
    if isinstance(net, NB201Network):
        return [m for m in net.layers if isinstance(m, ResNetBasicBlock)][-1]
    if isinstance(net, LennaNetwork):
        return [m for m in net.cells if m.shape.reduction][-1]
    return net.cells[2 * net.macro.layers // 3]


def cutout(x: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    """Every image with a ``length`` x ``length`` square (clipped at the border) set to zero at
    a random centre (DeVries & Taylor, 2017)."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=generator)
    cx = torch.randint(0, w, (n,), generator=generator)
    rows = torch.arange(h)[None, :, None]
    cols = torch.arange(w)[None, None, :]
    half = length // 2
    inside = (
        (rows >= (cy - half)[:, None, None])
        & (rows < (cy - half + length)[:, None, None])
        & (cols >= (cx - half)[:, None, None])
        & (cols < (cx - half + length)[:, None, None])
    )
    return x * (~inside)[:, None].to(x.dtype)


def set_drop_path(net: nn.Module, prob: float) -> None:
    for module in net.modules():
        if isinstance(module, GatedCell):
            module.drop_prob = prob


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
    net = build_network(genotype, macro).to(device)
    params = list(net.parameters())
    aux_loss = None
    if settings.auxiliary_weight > 0:
        aux, aux_loss = _auxiliary_head(net, macro, data.train.x[:2], device)
        params += list(aux.parameters())
    opt = torch.optim.SGD(params, settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.epochs, eta_min=settings.lr_min)
    history = []
    started = time.perf_counter()
    for epoch in range(settings.epochs):
        net.train()
        set_drop_path(net, settings.drop_path * epoch / settings.epochs)
        train_loss, train_acc = _train_epoch(net, opt, params, data.train, settings, gen, device, aux_loss)
        sched.step()
        val_loss, val_acc = evaluate(net, _on(data.val, device))
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "val_loss": val_loss,
                "val_acc": val_acc,
            }
        )
        log(f"epoch {epoch}: loss {train_loss:.3f} val acc {val_acc:.4f}")
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


def _auxiliary_head(
    net: nn.Module, macro: Macro, x: torch.Tensor, device: torch.device
) -> tuple[AuxiliaryHead, Callable[[torch.Tensor], torch.Tensor]]:
    """DARTS's auxiliary head on the features of ``net`` at `auxiliary_tap`, sized by a forward
    pass of the images ``x``; and the cross entropy of its logits, on the features of the net's
    latest forward pass, against labels ``y``."""
    tapped = {}
    auxiliary_tap(net).register_forward_hook(lambda module, inputs, output: tapped.__setitem__("x", output))
    with torch.no_grad():
        net.eval()
        net(x.to(device))
    head = AuxiliaryHead(tapped["x"].shape[1], macro.num_classes).to(device)
    return head, lambda y: nn.functional.cross_entropy(head(tapped["x"]), y)


def _train_epoch(
    net: nn.Module,
    opt: torch.optim.Optimizer,
    params: list[nn.Parameter],
    train: Split,
    settings: FinalSettings,
    gen: torch.Generator,
    device: torch.device,
    aux_loss: Callable[[torch.Tensor], torch.Tensor] | None,
) -> tuple[float, float]:
    """One epoch of SGD steps over the shuffled ``train`` split (cutout where set, the auxiliary
    loss weighted in where there is one, gradients clipped); the mean cross entropy of the main
    head and the accuracy over the epoch."""
    total = correct = loss_sum = 0.0
    for x, y in batches(train, settings.batch_size, gen):
        if settings.cutout:
            x = cutout(x, settings.cutout, gen)
        x, y = x.to(device), y.to(device)
        opt.zero_grad(set_to_none=True)
        logits = net(x)
        main = nn.functional.cross_entropy(logits, y)
        loss = main
        if aux_loss is not None:
            loss = main + settings.auxiliary_weight * aux_loss(y)
        loss.backward()
        nn.utils.clip_grad_norm_(params, settings.grad_clip)
        opt.step()
        loss_sum += main.item() * len(y)
        correct += float((logits.argmax(1) == y).sum())
        total += len(y)
    return loss_sum / total, correct / total


def _on(split: Split, device: torch.device) -> Split:
    return Split(split.x.to(device), split.y.to(device))
