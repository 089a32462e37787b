"""Latency-aware DARTS: the supernet, the bilevel search with a predicted-latency term, derivation.

The supernet mixes every candidate op on every edge with softmax(alpha) weights; one alpha matrix
(n_edges, n_ops) is shared by all normal cells and one by all reduction cells. The training part
of the data is cut in two halves: one trains the weights (SGD, cosine schedule, gradient clipping),
the other the alphas (Adam). The alpha step minimises

    CE(alpha half) + latency_term(E[lat](alpha))

where E[lat] is the frozen latency predictor's latency of every cell of the search network with
op probabilities softmax(alpha) (`LatencyPredictor.expected_network_latency`), differentiable in
alpha. Latency-term forms (``lam`` = lambda):

- ``additive``: ``lam * E[lat]`` (lambda in 1/ms);
- ``relative``: ``lam * (E[lat] - ref) / ref`` (ProxylessNAS ``add#linear``);
- ``mul_log``: the whole loss is ``CE * (log E[lat] / log ref) ** lam`` (ProxylessNAS ``mul#log``,
  latencies in ms, so ``ref`` must exceed 1 ms).

``ref`` is E[lat] at the initial alphas (the uniform mix). Alpha updates start after
``warmup_epochs`` of weight-only training. ``order: second`` uses DARTS' unrolled gradient with
the finite-difference Hessian-vector product.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call

from lenna.cell import CellShape, edge_list
from lenna.data import ImageData, Split, batches
from lenna.genotype import Genotype
from lenna.network import Macro, cell_shapes
from lenna.ops import NONE, FactorizedReduce, ReLUConvBN, make_op

LATENCY_FORMS = ("additive", "relative", "mul_log")
SKIP = "skip_connect"


@dataclass(frozen=True)
class SearchSettings:
    """Search hyper-parameters; the defaults are those of the DARTS reference implementation."""

    epochs: int = 50
    warmup_epochs: int = 0
    batch_size: int = 64
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-4
    alpha_betas: tuple[float, float] = (0.5, 0.999)
    alpha_weight_decay: float = 1e-3
    order: str = "first"
    latency_form: str = "relative"
    max_skip_normal: int | None = 2

    def __post_init__(self):
        if self.order not in ("first", "second"):
            raise ValueError(f"order: {self.order!r} is neither 'first' nor 'second'")
        if self.latency_form not in LATENCY_FORMS:
            raise ValueError(f"latency_form: {self.latency_form!r}; known: {list(LATENCY_FORMS)}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs: {self.warmup_epochs} is not within 0..epochs ({self.epochs})")


class MixedOp(nn.Module):
    """Every candidate op of an edge, summed with the edge's softmax weights (pools get a BN, as in
    the reference)."""

    def __init__(self, c: int, stride: int, op_names: Sequence[str]):
        super().__init__()
        self.ops = nn.ModuleList()
        for name in op_names:
            op = make_op(name, c, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            self.ops.append(op)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))


class SearchCell(nn.Module):
    def __init__(self, shape: CellShape, steps: int, op_names: Sequence[str]):
        super().__init__()
        self.shape, self.steps = shape, steps
        c = shape.c
        if shape.reduction_prev:
            self.preprocess0 = FactorizedReduce(shape.c_prev_prev, c, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(shape.c_prev_prev, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(shape.c_prev, c, 1, 1, 0, affine=False)
        self.edges = edge_list(steps)
        self.mixed = nn.ModuleList(
            MixedOp(c, 2 if shape.reduction and inp < 2 else 1, op_names) for _, inp in self.edges
        )
        self.multiplier = steps

    def forward(self, s0, s1, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        k = 0
        for node in range(self.steps):
            out = 0
            for inp in range(node + 2):
                out = out + self.mixed[k](states[inp], weights[k])
                k += 1
            states.append(out)
        return torch.cat(states[2:], dim=1)


class SuperNet(nn.Module):
    """The DARTS search network at macro settings ``macro`` with architecture parameters
    ``alpha_normal`` and ``alpha_reduce`` (initialised 1e-3 * randn, as in the reference)."""

    def __init__(self, macro: Macro, op_names: Sequence[str], steps: int, generator: torch.Generator):
        super().__init__()
        self.macro, self.op_names, self.steps = macro, tuple(op_names), steps
        c_stem = macro.stem_multiplier * macro.init_channels
        self.stem = nn.Sequential(
            nn.Conv2d(macro.input_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        shapes = cell_shapes(macro, steps, steps)
        self.cells = nn.ModuleList(SearchCell(s, steps, op_names) for s in shapes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(steps * shapes[-1].c, macro.num_classes)
        n_edges = len(edge_list(steps))
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(n_edges, len(op_names), generator=generator))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(n_edges, len(op_names), generator=generator))

    def alphas(self) -> list[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce]

    def weights(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("alpha_")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_normal = torch.softmax(self.alpha_normal, dim=-1)
        w_reduce = torch.softmax(self.alpha_reduce, dim=-1)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.shape.reduction else w_normal)
        return self.classifier(self.global_pooling(s1).flatten(1))


def derive_cell(alpha: torch.Tensor | np.ndarray, op_names: Sequence[str], steps: int, max_skip=None):
    """The DARTS derivation: per node the 2 input edges with the largest non-none weight, on each
    the argmax op other than none. With ``max_skip``, while the cell has more skip connections than
    that, the skip with the smallest weight is forbidden and the cell derived again (the skip cap
    remedy against skip-connect collapse). Returns the (op, input) pairs."""
    weights = torch.softmax(torch.as_tensor(alpha, dtype=torch.float64), dim=-1).numpy().copy()
    edges = edge_list(steps)
    banned = np.zeros_like(weights, dtype=bool)
    banned[:, list(op_names).index(NONE)] = True
    while True:
        masked = np.where(banned, -np.inf, weights)
        pairs, chosen = [], []
        for node in range(steps):
            ks = [k for k, (n, _) in enumerate(edges) if n == node]
            best = sorted(ks, key=lambda k: -masked[k].max())[:2]
            for k in sorted(best, key=lambda k: edges[k][1]):
                j = int(masked[k].argmax())
                pairs.append((op_names[j], edges[k][1]))
                chosen.append((k, j))
        skips = [(weights[k, j], k, j) for k, j in chosen if op_names[j] == SKIP]
        if max_skip is None or len(skips) <= max_skip:
            return tuple(pairs)
        _, k, j = min(skips)
        banned[k, j] = True


def derive_genotype(net: SuperNet, max_skip_normal: int | None = None) -> Genotype:
    concat = tuple(range(2, net.steps + 2))
    with torch.no_grad():
        normal = derive_cell(net.alpha_normal, net.op_names, net.steps, max_skip_normal)
        reduce = derive_cell(net.alpha_reduce, net.op_names, net.steps)
    return Genotype(normal=normal, normal_concat=concat, reduce=reduce, reduce_concat=concat)


def latency_term(form: str, lam: float, expected: torch.Tensor, ref: float, ce: torch.Tensor) -> torch.Tensor:
    """The architecture-step loss: cross entropy ``ce`` combined with the expected latency."""
    if form == "additive":
        return ce + lam * expected
    if form == "relative":
        return ce + lam * (expected - ref) / ref
    if ref <= 1.0:
        raise ValueError(f"mul_log needs a reference latency above 1 ms, got {ref:.3f} ms")
    return ce * (torch.log(expected) / math.log(ref)) ** lam


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == y).float().mean())


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


def halves(split: Split, generator: torch.Generator) -> tuple[Split, Split]:
    """The training part cut in a weight half and an alpha half (a seeded permutation)."""
    order = torch.randperm(len(split), generator=generator)
    mid = len(split) // 2
    return split.subset(order[:mid]), split.subset(order[mid:])


class _SecondOrder:
    """DARTS' unrolled alpha gradient: grad_alpha L_val(w - xi * grad_w L_train(w)), with the
    Hessian-vector product by finite differences (epsilon 0.01 / |grad_w' L_val|)."""

    def __init__(self, net: SuperNet):
        self.net = net
        self.names = [n for n, _ in net.weights()]

    def _loss(self, params, x, y):
        return nn.functional.cross_entropy(functional_call(self.net, params, (x,)), y)

    def grads(self, xi: float, weight_decay: float, x_w, y_w, x_a, y_a) -> tuple[torch.Tensor, float, float]:
        """Returns (the architecture CE at w', its accuracy) after accumulating the CE part of the
        alpha gradient in ``.grad``."""
        net = self.net
        weights = [p for _, p in net.weights()]
        g_train = torch.autograd.grad(self._loss(dict(net.weights()), x_w, y_w), weights)
        unrolled = {
            n: (w - xi * (g + weight_decay * w)).detach().requires_grad_()
            for n, w, g in zip(self.names, weights, g_train, strict=True)
        }
        logits = functional_call(net, unrolled, (x_a,))
        ce = nn.functional.cross_entropy(logits, y_a)
        alphas = net.alphas()
        grads = torch.autograd.grad(ce, [*alphas, *unrolled.values()])
        d_alpha, d_w = grads[: len(alphas)], grads[len(alphas) :]
        eps = 0.01 / torch.sqrt(sum((g * g).sum() for g in d_w)).clamp_min(1e-12)
        shifted = {}
        for sign in (1.0, -1.0):
            params = {
                n: w.detach() + sign * eps * d for n, w, d in zip(self.names, weights, d_w, strict=True)
            }
            shifted[sign] = torch.autograd.grad(self._loss(params, x_w, y_w), alphas)
        for a, da, gp, gm in zip(alphas, d_alpha, shifted[1.0], shifted[-1.0], strict=True):
            a.grad = da - xi * (gp - gm) / (2 * eps)
        return ce.detach(), _accuracy(logits, y_a)


def alpha_table(net: SuperNet) -> dict:
    """softmax(alpha) of both cells as flat columns ``{normal,reduce}_e{k:02d}_{op}``."""
    row = {}
    with torch.no_grad():
        for cell, alpha in (("normal", net.alpha_normal), ("reduce", net.alpha_reduce)):
            probs = torch.softmax(alpha, dim=-1)
            for k in range(probs.shape[0]):
                for j, op in enumerate(net.op_names):
                    row[f"{cell}_e{k:02d}_{op}"] = float(probs[k, j])
    return row


def run_search(
    data: ImageData,
    macro: Macro,
    op_names: Sequence[str],
    steps: int,
    settings: SearchSettings,
    lam: float,
    seed: int,
    expected_latency: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    genotype_latency: Callable[[Genotype], float],
    log: Callable[[str], None] = lambda s: None,
    device: torch.device | str = "cpu",
) -> tuple[Genotype, pd.DataFrame, dict]:
    """Search a cell pair; returns the derived genotype, the per-epoch history and a summary.

    ``expected_latency(alpha_normal, alpha_reduce)`` is the differentiable predicted latency (ms)
    of the search network's cells; ``genotype_latency`` predicts a discrete genotype's.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = SuperNet(macro, op_names, steps, gen).to(device)
    w_half, a_half = halves(data.train, gen)
    w_params = [p for _, p in net.weights()]
    w_opt = torch.optim.SGD(
        w_params, settings.w_lr, momentum=settings.w_momentum, weight_decay=settings.w_weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, settings.epochs, eta_min=settings.w_lr_min)
    a_opt = torch.optim.Adam(
        net.alphas(),
        settings.alpha_lr,
        betas=tuple(settings.alpha_betas),
        weight_decay=settings.alpha_weight_decay,
    )
    second = _SecondOrder(net) if settings.order == "second" else None
    with torch.no_grad():
        ref = float(expected_latency(net.alpha_normal, net.alpha_reduce))
    history = []
    timing = {"weight_step_s": 0.0, "alpha_step_s": 0.0, "latency_term_s": 0.0, "alpha_steps": 0}
    for epoch in range(settings.epochs):
        net.train()
        lr = sched.get_last_lr()[0]
        update_alpha = epoch >= settings.warmup_epochs
        sums = {"train_loss": 0.0, "train_acc": 0.0, "arch_loss": 0.0, "arch_acc": 0.0, "n_w": 0, "n_a": 0}
        alpha_batches = batches(a_half, settings.batch_size, gen)
        for x_w, y_w in batches(w_half, settings.batch_size, gen):
            x_w, y_w = x_w.to(device), y_w.to(device)
            if update_alpha:
                try:
                    x_a, y_a = next(alpha_batches)
                except StopIteration:
                    alpha_batches = batches(a_half, settings.batch_size, gen)
                    x_a, y_a = next(alpha_batches)
                x_a, y_a = x_a.to(device), y_a.to(device)
                t0 = time.perf_counter()
                a_opt.zero_grad(set_to_none=True)
                if second is not None:
                    ce, acc = second.grads(lr, settings.w_weight_decay, x_w, y_w, x_a, y_a)
                    base = ce.requires_grad_()
                else:
                    logits = net(x_a)
                    base = nn.functional.cross_entropy(logits, y_a)
                    acc = _accuracy(logits, y_a)
                t1 = time.perf_counter()
                expected = expected_latency(net.alpha_normal, net.alpha_reduce)
                loss = latency_term(settings.latency_form, lam, expected, ref, base)
                timing["latency_term_s"] += time.perf_counter() - t1
                if second is not None:
                    # d loss / d alpha = (d loss / d CE) * (CE part already in .grad) + latency part.
                    d_ce, *d_alpha = torch.autograd.grad(loss, [base, *net.alphas()], allow_unused=True)
                    for a, d in zip(net.alphas(), d_alpha, strict=True):
                        a.grad = a.grad * d_ce + (d if d is not None else 0.0)
                else:
                    loss.backward(inputs=net.alphas())
                a_opt.step()
                timing["alpha_step_s"] += time.perf_counter() - t0
                timing["alpha_steps"] += 1
                sums["arch_loss"] += base.item() * len(y_a)
                sums["arch_acc"] += acc * len(y_a)
                sums["n_a"] += len(y_a)
            t0 = time.perf_counter()
            w_opt.zero_grad(set_to_none=True)
            logits = net(x_w)
            loss = nn.functional.cross_entropy(logits, y_w)
            loss.backward(inputs=w_params)
            nn.utils.clip_grad_norm_(w_params, settings.grad_clip)
            w_opt.step()
            timing["weight_step_s"] += time.perf_counter() - t0
            sums["train_loss"] += loss.item() * len(y_w)
            sums["train_acc"] += _accuracy(logits, y_w) * len(y_w)
            sums["n_w"] += len(y_w)
        sched.step()
        genotype = derive_genotype(net, settings.max_skip_normal)
        uncapped = derive_genotype(net, None)
        with torch.no_grad():
            expected_ms = float(expected_latency(net.alpha_normal, net.alpha_reduce))
        row = {
            "epoch": epoch,
            "lr": lr,
            "alpha_updates": update_alpha,
            "train_loss": sums["train_loss"] / sums["n_w"],
            "train_acc": sums["train_acc"] / sums["n_w"],
            "arch_loss": sums["arch_loss"] / sums["n_a"] if sums["n_a"] else float("nan"),
            "arch_acc": sums["arch_acc"] / sums["n_a"] if sums["n_a"] else float("nan"),
            "expected_latency_ms": expected_ms,
            "genotype_latency_ms": genotype_latency(genotype),
            "skip_normal": sum(op == SKIP for op, _ in uncapped.normal),
            "skip_normal_capped": sum(op == SKIP for op, _ in genotype.normal),
            "genotype": str(genotype),
            **alpha_table(net),
        }
        history.append(row)
        log(
            f"epoch {epoch}: loss {row['train_loss']:.3f} acc {row['train_acc']:.3f} "
            f"arch acc {row['arch_acc']:.3f} E[lat] {expected_ms:.3f} ms "
            f"genotype {row['genotype_latency_ms']:.3f} ms skips {row['skip_normal']}"
        )
    summary = {
        "lambda": lam,
        "seed": seed,
        "reference_latency_ms": ref,
        "final_expected_latency_ms": history[-1]["expected_latency_ms"],
        "genotype_latency_ms": history[-1]["genotype_latency_ms"],
        "settings": asdict(settings),
        "data": data.sizes() | {"weight_half": len(w_half), "alpha_half": len(a_half)},
        **timing,
    }
    return genotype, pd.DataFrame(history), summary


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


def train_final(
    genotype: Genotype,
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
