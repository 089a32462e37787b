"""Benchmark: what the latency term adds to a search step.

Usage: python benchmarks/search_overhead.py [--target cpu] [--model mlp] [--steps 30] [--threads 1]
On the config's search network and batch, times the search steps the pipeline runs
(`lenna.search.architect.Architect.step` then `lenna.search.loop.WeightStep`, with the config's
search settings: optimisers, order, latency form, the largest lambda of the sweep) with the
predictor's latency term and with a constant one (no predictor call), interleaved step by step
so that machine drift hits both alike, and the latency term's own share of the alpha step.
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

from lenna.predictors.model import load_predictor
from lenna.search.architect import Architect
from lenna.search.images import batches, load_data
from lenna.search.loop import WeightStep
from lenna.search.settings import search_settings
from lenna.search.supernet import SuperNet
from lenna.space.network import Macro, network_macro
from lenna.space.ops import op_set


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
    batch_size = config["targets"][args.target]["batch_size"]
    predictor = load_predictor(Path("results/predictors") / args.target / args.model)
    data = load_data(config["data"])
    settings = search_settings(config["search"])
    lam = max(config["search"]["lambdas"])
    net = SuperNet(macro, op_set(space["op_set"]), space["steps"], torch.Generator().manual_seed(0))
    weights = WeightStep(net, settings)

    def expected(a_normal, a_reduce):
        return predictor.expected_cells_latency(a_normal, a_reduce, macro, batch_size)

    with_term = Architect(net, settings, lam, expected)
    # The same alpha step with a latency that does not depend on alpha: no predictor call.
    without_term = Architect(net, settings, lam, lambda a_normal, a_reduce: torch.tensor(2.0))
    bs = settings.batch_size
    gen = torch.Generator().manual_seed(0)
    (x_w, y_w), (x_a, y_a) = next(batches(data.train, bs, gen)), next(batches(data.train, bs, gen))

    def step(architect: Architect) -> tuple[float, float]:
        """(seconds of one alpha + weight step, seconds of its latency term)."""
        term_before = architect.seconds["latency_term_s"]
        t0 = time.perf_counter()
        architect.step(x_w, y_w, x_a, y_a, weights.lr)
        weights(x_w, y_w)
        return time.perf_counter() - t0, architect.seconds["latency_term_s"] - term_before

    for _ in range(3):
        step(with_term), step(without_term)
    timed = {"with": [], "without": [], "term": []}
    for _ in range(args.steps):
        seconds, term = step(with_term)
        timed["with"].append(seconds)
        timed["term"].append(term)
        timed["without"].append(step(without_term)[0])
    result = {
        "target": args.target,
        "model": args.model,
        "threads": args.threads,
        "batch_size": bs,
        "order": settings.order,
        "latency_form": settings.latency_form,
        "lambda": lam,
        "steps": args.steps,
        "step_with_term_s": float(np.median(timed["with"])),
        "step_without_term_s": float(np.median(timed["without"])),
        "latency_term_s": float(np.median(timed["term"])),
    }
    result["ratio"] = result["step_with_term_s"] / result["step_without_term_s"]
    result["term_share"] = result["latency_term_s"] / result["step_without_term_s"]
    out = Path("benchmarks/out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "search_overhead.json").write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"search step ({settings.order}-order alpha + weight step, batch {bs}, {args.threads} thread(s), "
        f"{settings.latency_form} term, lambda {lam:g}), median of {args.steps}:\n"
        f"  with the {args.model} latency term  {1000 * result['step_with_term_s']:.1f} ms\n"
        f"  without                      {1000 * result['step_without_term_s']:.1f} ms\n"
        f"  ratio                        {result['ratio']:.4f}\n"
        f"  latency term (forward)       {1000 * result['latency_term_s']:.2f} ms "
        f"= {100 * result['term_share']:.2f}% of a step"
    )


if __name__ == "__main__":
    main()
