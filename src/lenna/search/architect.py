"""The architect: the alpha step of latency-aware DARTS.

The alpha step minimises, on a batch of the alpha half of the training data,

    CE(alpha batch) + latency_term(E[lat](alpha))

where E[lat] is the frozen latency predictor's latency of the whole search network with op
probabilities softmax(alpha): its cells composed with the parts outside cells by the network
model (`LatencyPredictor.expected_network_latency`), differentiable in alpha. Latency-term
forms (``lam`` = lambda):

- ``additive``: ``lam * E[lat]`` (lambda in 1/ms);
- ``relative``: ``lam * (E[lat] - ref) / ref`` (ProxylessNAS ``add#linear``);
- ``mul_log``: the whole loss is ``CE * (log E[lat] / log ref) ** lam`` (ProxylessNAS ``mul#log``,
  latencies in ms, so ``ref`` must exceed 1 ms).

``ref`` is E[lat] at the initial alphas (the uniform mix). ``order: second`` uses DARTS' unrolled
gradient with the finite-difference Hessian-vector product.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from lenna.search.settings import SearchSettings
from lenna.search.supernet import SuperNet


def latency_term(form: str, lam: float, expected: torch.Tensor, ref: float, ce: torch.Tensor) -> torch.Tensor:
    """The architecture-step loss: cross entropy ``ce`` combined with the expected latency."""
    if form == "additive":
        return ce + lam * expected
    if form == "relative":
        return ce + lam * (expected - ref) / ref
    if ref <= 1.0:
        raise ValueError(f"mul_log needs a reference latency above 1 ms, got {ref:.3f} ms")
    return ce * (torch.log(expected) / math.log(ref)) ** lam


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == y).float().mean())


class SecondOrder:
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
        return ce.detach(), accuracy(logits, y_a)


class Architect:
    """Updates a supernet's alphas (Adam) on alpha batches, with the latency term of ``lam``.

    ``expected_latency(*net.alphas())`` is the differentiable predicted latency (ms)
    of the search network's cells. `seconds` accumulates the time spent in alpha steps and in the
    latency term, to report what the latency term costs.
    """

    def __init__(
        self,
        net: SuperNet,
        settings: SearchSettings,
        lam: float,
        expected_latency: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    ):
        self.net, self.settings, self.lam = net, settings, lam
        self.expected_latency = expected_latency
        self.optimizer = torch.optim.Adam(
            net.alphas(),
            settings.alpha_lr,
            betas=tuple(settings.alpha_betas),
            weight_decay=settings.alpha_weight_decay,
        )
        self.second = SecondOrder(net) if settings.order == "second" else None
        self.reference_ms = self.expected_ms()
        self.seconds = {"alpha_step_s": 0.0, "latency_term_s": 0.0, "alpha_steps": 0}

    def expected_ms(self) -> float:
        """The predicted latency (ms) of the current alphas."""
        with torch.no_grad():
            return float(self.expected_latency(*self.net.alphas()))

    def step(self, x_w, y_w, x_a, y_a, lr: float) -> tuple[float, float]:
        """One alpha update on the alpha batch ``(x_a, y_a)``; the second order also needs the
        weight batch ``(x_w, y_w)`` and the weights' learning rate ``lr``. Returns the batch's
        cross entropy and accuracy."""
        net, settings = self.net, self.settings
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        if self.second is not None:
            ce, acc = self.second.grads(lr, settings.w_weight_decay, x_w, y_w, x_a, y_a)
            base = ce.requires_grad_()
        else:
            logits = net(x_a)
            base = nn.functional.cross_entropy(logits, y_a)
            acc = accuracy(logits, y_a)
        t1 = time.perf_counter()
        expected = self.expected_latency(*net.alphas())
        loss = latency_term(settings.latency_form, self.lam, expected, self.reference_ms, base)
        self.seconds["latency_term_s"] += time.perf_counter() - t1
        if self.second is not None:
            # d loss / d alpha = (d loss / d CE) * (CE part already in .grad) + latency part.
            d_ce, *d_alpha = torch.autograd.grad(loss, [base, *net.alphas()], allow_unused=True)
            for a, d in zip(net.alphas(), d_alpha, strict=True):
                a.grad = a.grad * d_ce + (d if d is not None else 0.0)
        else:
            loss.backward(inputs=net.alphas())
        self.optimizer.step()
        self.seconds["alpha_step_s"] += time.perf_counter() - t0
        self.seconds["alpha_steps"] += 1
        return base.item(), acc
