"""Benchmark: what the latency term adds to a search step.

Usage: python benchmarks/search_overhead.py [--target cpu] [--model mlp] [--steps 30] [--threads 1]
On the default config's search network and batch, times complete search steps (alpha step +
weight step, first order) with and without the latency term, interleaved step by step so that
machine drift hits both alike, and the latency term alone (predictor forward + backward).
Prints medians and the ratio (with term / without); writes benchmarks/out/search_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from lenna.config import network_macro
from lenna.data import load_data
from lenna.network import Macro
from lenna.ops import op_set
from lenna.predictor import load_predictor
from lenna.search import SuperNet, latency_term


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(Path(args.config).read_text())
    macro = Macro(**network_macro(config["macro"], "search"))
    space = config["search_space"]
    search = config["search"]
    batch_size = config["targets"][args.target]["batch_size"]
    predictor = load_predictor(Path("results/predictors") / args.target / args.model)
    data = load_data(config["data"])
    net = SuperNet(macro, op_set(space["op_set"]), space["steps"], torch.Generator().manual_seed(0))
    w_params = [p for _, p in net.weights()]
    w_opt = torch.optim.SGD(w_params, 0.025, momentum=0.9, weight_decay=3e-4)
    a_opt = torch.optim.Adam(net.alphas(), search["alpha_lr"], betas=(0.5, 0.999), weight_decay=1e-3)
    bs = search["batch_size"]
    x, y = data.train.x[:bs], data.train.y[:bs]

    def expected():
        return predictor.expected_network_latency(net.alpha_normal, net.alpha_reduce, macro, batch_size)

    with torch.no_grad():
        ref = float(expected())

    def step(with_term: bool) -> float:
        t0 = time.perf_counter()
        a_opt.zero_grad(set_to_none=True)
        ce = torch.nn.functional.cross_entropy(net(x), y)
        loss = latency_term(search["latency_form"], 1.0, expected(), ref, ce) if with_term else ce
        loss.backward(inputs=net.alphas())
        a_opt.step()
        w_opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward(inputs=w_params)
        torch.nn.utils.clip_grad_norm_(w_params, 5.0)
        w_opt.step()
        return time.perf_counter() - t0

    def term_alone() -> float:
        t0 = time.perf_counter()
        net.alpha_normal.grad = net.alpha_reduce.grad = None
        expected().backward(inputs=net.alphas())
        return time.perf_counter() - t0

    for _ in range(3):
        step(True), step(False), term_alone()
    with_term, without, alone = [], [], []
    for _ in range(args.steps):
        with_term.append(step(True))
        without.append(step(False))
        alone.append(term_alone())
    result = {
        "target": args.target,
        "model": args.model,
        "threads": args.threads,
        "batch_size": bs,
        "steps": args.steps,
        "step_with_term_s": float(np.median(with_term)),
        "step_without_term_s": float(np.median(without)),
        "latency_term_s": float(np.median(alone)),
    }
    result["ratio"] = result["step_with_term_s"] / result["step_without_term_s"]
    result["term_share"] = result["latency_term_s"] / result["step_without_term_s"]
    out = Path("benchmarks/out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_overhead.json").write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"search step (alpha + weight, batch {bs}, {args.threads} thread(s)), median of {args.steps}:\n"
        f"  with the {args.model} latency term  {1000 * result['step_with_term_s']:.1f} ms\n"
        f"  without                      {1000 * result['step_without_term_s']:.1f} ms\n"
        f"  ratio                        {result['ratio']:.4f}\n"
        f"  latency term alone (fwd+bwd) {1000 * result['latency_term_s']:.2f} ms "
        f"= {100 * result['term_share']:.2f}% of a step"
    )


if __name__ == "__main__":
    main()
