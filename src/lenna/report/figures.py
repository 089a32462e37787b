"""Figures and tables of the report: latency data, predictors, searches and the Pareto front.

Every function writes one file (SVG or HTML) and returns nothing; the captions in
workflow/report/ say how to read them.
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lenna.search.pareto import prediction_accuracy  # noqa: E402
from lenna.space import lenna_block, nb201  # noqa: E402
from lenna.space.cell import edge_list  # noqa: E402
from lenna.space.genotype import Genotype  # noqa: E402
from lenna.space.nb201 import Arch  # noqa: E402

matplotlib.use("Agg")


def _save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def label_distribution(table: pd.DataFrame, title: str, path) -> None:
    """Histogram of the labels (ms, log scale) per label kind."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    lat = table["latency_ms"].to_numpy()
    bins = np.geomspace(lat.min(), lat.max(), 40) if lat.min() > 0 and lat.max() > lat.min() else 40
    for kind, part in table.groupby("label_kind"):
        ax.hist(part["latency_ms"], bins=bins, alpha=0.6, label=f"{kind} (n={len(part)})")
    ax.set_xscale("log")
    ax.set_xlabel("cell latency (ms)")
    ax.set_ylabel("specs")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def label_dispersion(table: pd.DataFrame, title: str, path) -> None:
    """Histogram of each label's relative IQR (of its timed passes or of its per-reset values),
    with the median per label kind: the noise floor a predictor cannot beat."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for k, (kind, part) in enumerate(table.groupby("label_kind")):
        values = 100 * part["dispersion"].to_numpy()
        ax.hist(values, bins=40, alpha=0.6, color=f"C{k}", label=f"{kind}: median {np.median(values):.1f}%")
        ax.axvline(np.median(values), color=f"C{k}", ls="--", lw=1)
    ax.set_xlabel("label dispersion: relative IQR (%)")
    ax.set_ylabel("specs")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def convergence(table: pd.DataFrame, title: str, path, n_specs: int = 6) -> None:
    """Cumulative mean of the per-reset latencies of a few soft specs against the number of gate
    resets, relative to the final label (LENNA's convergence analysis), with the +-1% band."""
    soft = table[(table["label_kind"] == "expected") & (table["n_resets"] > 1)]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if len(soft):
        # Specs spread over the concentration range: near one-hot to near uniform.
        chosen = soft.sort_values("concentration").iloc[
            np.linspace(0, len(soft) - 1, min(n_specs, len(soft))).astype(int)
        ]
        for _, row in chosen.iterrows():
            values = np.asarray(row["replicates_ms"], dtype=float)
            cum = np.cumsum(values) / np.arange(1, len(values) + 1)
            ax.plot(
                np.arange(1, len(cum) + 1),
                100 * (cum / cum[-1] - 1),
                lw=1.2,
                label=f"concentration {row['concentration']:.2g}, {row['latency_ms']:.2f} ms",
            )
    ax.axhspan(-1, 1, color="grey", alpha=0.2, label="±1%")
    ax.set_xlabel("gate resets")
    ax.set_ylabel("cumulative mean vs final label (%)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    _save(fig, path)


def throughput_table(shards: pd.DataFrame, title: str, path) -> None:
    """HTML table of timing throughput per timing job (specs, seconds, specs per minute), with
    totals. ``shards`` has columns job (its file's name: ``shard-N``, ``round-N``), discrete,
    expected, seconds, in the order to show."""
    shards = shards.copy()
    shards["specs"] = shards["discrete"] + shards["expected"]
    total = {
        "job": "all",
        "discrete": shards["discrete"].sum(),
        "expected": shards["expected"].sum(),
        "seconds": shards["seconds"].sum(),
        "specs": shards["specs"].sum(),
    }
    shards = pd.concat([shards, pd.DataFrame([total])], ignore_index=True)
    shards["specs_per_minute"] = 60 * shards["specs"] / shards["seconds"]
    _write_html(path, title, "Timing jobs: specs labelled per minute of wall time.", shards)


def rank_table(table: pd.DataFrame, title: str, path) -> None:
    """HTML table of Spearman's rho of our timings against every public device column."""
    _write_html(
        path,
        title,
        "Spearman's rank correlation of the benchmark networks timed here with the same networks' "
        "public latencies, per batch size timed here and public device column.",
        table,
    )


def _write_html(path, title: str, text: str, table: pd.DataFrame) -> None:
    body = table.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0)
    Path(path).write_text(f"<h3>{html.escape(title)}</h3>\n<p>{html.escape(text)}</p>\n{body}\n")


def search_history(history: pd.DataFrame, title: str, path) -> None:
    """Losses, accuracies and predicted latency against epoch; warm-up epochs shaded."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    epochs = history["epoch"]
    warm = history.loc[~history["alpha_updates"], "epoch"]
    for ax in axes:
        if len(warm):
            ax.axvspan(warm.min() - 0.5, warm.max() + 0.5, color="grey", alpha=0.15, label="warm-up")
        ax.set_xlabel("epoch")
    axes[0].plot(epochs, history["train_loss"], label="weight half (train)")
    axes[0].plot(epochs, history["arch_loss"], label="alpha half (CE)")
    axes[0].set_ylabel("cross entropy")
    axes[1].plot(epochs, 100 * history["train_acc"], label="weight half")
    axes[1].plot(epochs, 100 * history["arch_acc"], label="alpha half")
    axes[1].set_ylabel("accuracy (%)")
    axes[2].plot(epochs, history["expected_latency_ms"], label="E[latency] of the mix")
    axes[2].plot(epochs, history["genotype_latency_ms"], label="derived genotype")
    axes[2].set_ylabel("predicted latency of the cells (ms)")
    ax2 = axes[2].twinx()
    ax2.step(epochs, history["skip_normal"], where="mid", color="crimson", alpha=0.6, label="skips (normal)")
    ax2.set_ylabel("skip connections in the normal cell", color="crimson")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle(title)
    _save(fig, path)


def alpha_evolution(history: pd.DataFrame, op_names, title: str, path) -> None:
    """Per cell type: the mean softmax(alpha) of each op over the edges against epoch (top), and
    the final softmax(alpha) per edge (bottom)."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for col, cell in enumerate(("normal", "reduce")):
        if not any(c.startswith(f"{cell}_e") for c in history.columns):  # NAS-Bench-201: one cell
            axes[0, col].axis("off")
            axes[1, col].axis("off")
            continue
        ax = axes[0, col]
        for j, op in enumerate(op_names):
            cols = [c for c in history.columns if c.startswith(f"{cell}_e") and c.endswith(f"_{op}")]
            ax.plot(history["epoch"], history[cols].mean(axis=1), label=op, color=f"C{j}")
        ax.set_title(f"{cell} cell: mean weight per op")
        ax.set_xlabel("epoch")
        ax.set_ylabel("softmax(alpha), mean over edges")
        ax.legend(fontsize=7, ncol=2)
        last = history.iloc[-1]
        n_edges = sum(
            1 for c in history.columns if c.startswith(f"{cell}_e") and c.endswith(f"_{op_names[0]}")
        )
        grid = np.array([[last[f"{cell}_e{k:02d}_{op}"] for op in op_names] for k in range(n_edges)])
        ax = axes[1, col]
        image = ax.imshow(grid, aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(op_names)), op_names, rotation=45, ha="right", fontsize=7)
        if tuple(op_names) == nb201.OPS:
            edges = [f"node {n + 1} <- {i}" for n, i in nb201.EDGES]
        elif tuple(op_names) == lenna_block.OPS:
            edges = [f"layer {n + 1} <- {i}" for n, i in lenna_block.EDGES]
        else:
            steps = int((np.sqrt(8 * n_edges + 9) - 3) / 2)
            edges = [f"node {n} <- {i}" for n, i in edge_list(steps)]
        ax.set_yticks(range(n_edges), edges, fontsize=6)
        ax.set_title(f"{cell} cell: final softmax(alpha)")
        fig.colorbar(image, ax=ax)
    fig.suptitle(title)
    _save(fig, path)


def _draw_edge(ax, start, end, op: str, muted: bool = False) -> None:
    """An arrow from ``start`` to ``end`` labelled ``op`` at its middle (greyed when ``muted``)."""
    (x0, y0), (x1, y1) = start, end
    ax.annotate(
        "",
        xy=(x1, y1),
        xytext=(x0, y0),
        arrowprops={
            "arrowstyle": "->",
            "color": "lightgrey" if muted else "grey",
            "shrinkA": 14,
            "shrinkB": 14,
        },
    )
    ax.text(
        (x0 + x1) / 2,
        (y0 + y1) / 2,
        op,
        fontsize=7,
        ha="center",
        va="center",
        color="grey" if muted else "black",
        bbox={"boxstyle": "round,pad=0.15", "fc": "lightyellow", "ec": "none"},
    )


def _draw_cell(ax, pairs, concat, title: str) -> None:
    steps = len(pairs) // 2
    pos = {0: (0.0, 0.75), 1: (0.0, 0.25)}
    for n in range(steps):
        pos[n + 2] = (0.3 + 0.45 * n / max(steps - 1, 1), 0.9 - 0.8 * n / max(steps - 1, 1))
    pos["out"] = (1.05, 0.5)
    names = {0: "c_{k-2}", 1: "c_{k-1}", "out": "c_{k}"}
    for k, (op, inp) in enumerate(pairs):
        node = k // 2 + 2
        _draw_edge(ax, pos[inp], pos[node], op)
    for node in concat:
        (x0, y0), (x1, y1) = pos[node], pos["out"]
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={"arrowstyle": "->", "color": "lightgrey", "ls": "--", "shrinkA": 14, "shrinkB": 14},
        )
    for key, (x, y) in pos.items():
        label = names.get(key, str(key - 2) if isinstance(key, int) else key)
        color = "lightblue" if key in (0, 1) else ("lightgreen" if key == "out" else "white")
        ax.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "circle,pad=0.3", "fc": color, "ec": "black"},
        )
    ax.set_xlim(-0.15, 1.2)
    ax.set_ylim(0.0, 1.0)
    ax.axis("off")
    ax.set_title(title)


def _draw_one_input_cell(ax, ops, edges, title: str) -> None:
    """A one-input cell (a NAS-Bench-201 cell, a LENNA block): nodes 0..n on a zigzag, every
    edge i -> j labelled by its op; node 0 is the input, node n the output."""
    last = max(node for node, _ in edges) + 1
    pos = {j: (0.1 + 0.8 * j / last, 0.3 + 0.4 * (j % 2)) for j in range(last + 1)}
    for op, (node, inp) in zip(ops, edges, strict=True):
        _draw_edge(ax, pos[inp], pos[node + 1], op, muted=op == "none")
    for j, (x, y) in pos.items():
        color = "lightblue" if j == 0 else ("lightgreen" if j == last else "white")
        ax.text(
            x,
            y,
            str(j),
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "circle,pad=0.3", "fc": color, "ec": "black"},
        )
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.1, 0.9)
    ax.axis("off")
    ax.set_title(title)


def draw_genotype(genotype: Genotype | Arch, title: str, path) -> None:
    """The derived normal and reduction cells as graphs: inputs left, nodes, output right (a
    NAS-Bench-201 cell: its one cell, with its string and official index)."""
    if isinstance(genotype, Arch):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        _draw_one_input_cell(
            ax, genotype.ops, nb201.EDGES, f"{genotype}\nNAS-Bench-201 index {genotype.index}"
        )
        fig.suptitle(title)
        _save(fig, path)
        return
    if isinstance(genotype, lenna_block.Arch):
        fig, axes = plt.subplots(1, 2, figsize=(14, 5))
        _draw_one_input_cell(axes[0], genotype.normal, lenna_block.EDGES, "normal block")
        _draw_one_input_cell(axes[1], genotype.reduce, lenna_block.EDGES, "reduction block")
        fig.suptitle(title)
        _save(fig, path)
        return
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    _draw_cell(axes[0], genotype.normal, genotype.normal_concat, "normal cell")
    _draw_cell(axes[1], genotype.reduce, genotype.reduce_concat, "reduction cell")
    fig.suptitle(title)
    _save(fig, path)


def predicted_vs_measured(true_ms, pred_ms, labels, title: str, path) -> None:
    """Scatter of predicted against measured latency with the +-10% band, by label kind."""
    true_ms, pred_ms, labels = np.asarray(true_ms), np.asarray(pred_ms), np.asarray(labels)
    fig, ax = plt.subplots(figsize=(5, 5))
    lo, hi = float(min(true_ms.min(), pred_ms.min())), float(max(true_ms.max(), pred_ms.max()))
    grid = np.linspace(lo, hi, 2)
    ax.plot(grid, grid, color="black", lw=1, label="exact")
    ax.fill_between(grid, grid * 0.9, grid * 1.1, color="grey", alpha=0.25, label="±10%")
    for kind in sorted(set(labels)):
        mask = labels == kind
        ax.scatter(true_ms[mask], pred_ms[mask], s=8, alpha=0.7, label=f"{kind} (n={mask.sum()})")
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_networks(table: pd.DataFrame, title: str, path) -> None:
    """Whole networks, predicted against measured: left the plain sum of cells and parts, right
    the network model, coloured by split (train and val fitted the model; test, held_out and
    published did not); the share within ±10% of the networks no model saw in each title."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), sharex=True, sharey=True)
    values = pd.concat([table["latency_ms"], table["predicted_sum_ms"], table["predicted_ms"]])
    grid = np.linspace(float(values.min()), float(values.max()), 2)
    unseen = table["split"].isin(["test", "held_out", "published"])
    scored = table[unseen] if unseen.any() else table
    for ax, column, name in (
        (axes[0], "predicted_sum_ms", "plain sum"),
        (axes[1], "predicted_ms", "network model"),
    ):
        ax.plot(grid, grid, color="black", lw=1, label="exact")
        ax.fill_between(grid, grid * 0.9, grid * 1.1, color="grey", alpha=0.25, label="±10%")
        for split, rows in table.groupby("split"):
            ax.scatter(rows["latency_ms"], rows[column], s=12, alpha=0.8, label=f"{split} (n={len(rows)})")
        within = float(((scored[column] / scored["latency_ms"] - 1).abs() <= 0.1).mean())
        ax.set_title(f"{name}: {100 * within:.0f}% of {len(scored)} unseen within ±10%", fontsize=10)
        ax.set_xlabel("measured latency (ms)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("predicted latency (ms)")
    axes[0].legend(loc="upper left", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def relative_errors(true_ms, pred_ms, title: str, path) -> None:
    """Histogram of relative errors (pred - true) / true, with the +-5% and +-10% bounds."""
    rel = (np.asarray(pred_ms) - np.asarray(true_ms)) / np.asarray(true_ms)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(rel * 100, bins=40, color="tab:blue", alpha=0.8)
    for bound, style in ((5, ":"), (10, "--")):
        for sign in (-1, 1):
            ax.axvline(sign * bound, color="black", ls=style, lw=1)
    ax.set_xlabel("relative error (%)")
    ax.set_ylabel("test specs")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_learning_curve(table, title: str, path) -> None:
    """Test RMSE and share within +-10% against training-set size, one line per model."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for model, part in table.groupby("model"):
        left.plot(part["n_train"], part["rmse_ms"], marker="o", label=model)
        right.plot(part["n_train"], part["within_10pct"], marker="o", label=model)
    left.set_xscale("log")
    right.set_xscale("log")
    left.set_xlabel("training specs")
    right.set_xlabel("training specs")
    left.set_ylabel("test RMSE (ms)")
    right.set_ylabel("test share within ±10%")
    left.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_rounds(decisions: list[dict], title: str, path) -> None:
    """Adaptive sampling's rounds: the MLP's validation share within ±10% when each round was
    planned, against the timing seconds spent by then, each point labelled with the specs timed."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    seconds = [d["timing_s"] for d in decisions]
    within = [d["val_within_10pct"] for d in decisions]
    ax.plot(seconds, within, marker="o")
    for d in decisions:
        note = f"{d['n_timed']} specs" + (" (stop)" if d["stop"] else "")
        ax.annotate(
            note,
            (d["timing_s"], d["val_within_10pct"]),
            fontsize=7,
            xytext=(4, -10),
            textcoords="offset points",
        )
    ax.set_xlabel("timing seconds spent (timing jobs' wall time)")
    ax.set_ylabel("validation share within ±10% (MLP)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _count(score: dict) -> int:
    """The number of networks within ±10% of a `prediction_accuracy` score."""
    return round(score["within_10pct"] * score["n"])


def plot_pareto(table: pd.DataFrame, title: str, path) -> None:
    """`pareto_figure`, written to ``path``."""
    fig = pareto_figure(table, title)
    fig.savefig(path)
    plt.close(fig)


def _mark_degenerate(ax, table: pd.DataFrame) -> None:
    """A red cross on every degenerate network (`lenna.search.pareto.degenerate_reason`):
    disconnected or at chance, never on the front, so its low latency does not read as a
    trade-off."""
    if "degenerate" in table and table["degenerate"].any():
        bad = table[table["degenerate"].astype(bool)]
        ax.scatter(
            bad["latency_ms"],
            100 * bad["test_accuracy"],
            marker="x",
            color="red",
            s=90,
            zorder=3,
            label="degenerate (disconnected or at chance)",
        )


def pareto_figure(table: pd.DataFrame, title: str):
    """Left: test accuracy (%) against measured latency, colour = lambda, marker = predictor
    model, the Pareto front as a step line. Right, where the networks have a prediction: their
    predicted against measured latency, with the ±10% band (filled: the network model's
    prediction; open: the plain sum of cells and parts, where the table has it), so a latency
    target missed through the predictor shows which lambdas and seeds it misses."""
    scores = prediction_accuracy(table) or {}
    has_prediction, plain = "predicted" in scores, "sum" in scores
    fig, axes = plt.subplots(1, 2 if has_prediction else 1, figsize=(12.4 if has_prediction else 7.6, 4.4))
    ax = axes[0] if has_prediction else axes
    lambdas = sorted(table["lambda"].unique())
    cmap = plt.get_cmap("viridis", max(len(lambdas), 2))
    markers = "osD^v<>p"
    for m, (model, group) in enumerate(table.groupby("model")):
        for k, lam in enumerate(lambdas):
            sel = group[group["lambda"] == lam]
            if len(sel):
                style = dict(
                    color=cmap(k), marker=markers[m % len(markers)], edgecolor="black", linewidth=0.5, s=45
                )
                ax.scatter(
                    sel["latency_ms"], 100 * sel["test_accuracy"], label=f"{model}, λ={lam:g}", **style
                )
                if has_prediction:
                    axes[1].scatter(sel["latency_ms"], sel["predicted_latency_ms"], **style)
                    if plain:
                        style.update(facecolor="none", edgecolor=cmap(k), linewidth=1.2)
                        axes[1].scatter(sel["latency_ms"], sel["predicted_sum_ms"], **style)
    _mark_degenerate(ax, table)
    front = table[table["on_front"]].sort_values("latency_ms")
    ax.step(
        front["latency_ms"], 100 * front["test_accuracy"], where="post", color="crimson", label="Pareto front"
    )
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if has_prediction:
        right = axes[1]
        values = pd.concat([table["latency_ms"], table["predicted_latency_ms"]]).dropna()
        line = np.linspace(0.9 * values.min(), 1.1 * values.max(), 2)
        right.plot(line, line, color="black", linewidth=0.8, label="predicted = measured")
        right.fill_between(line, 0.9 * line, 1.1 * line, color="grey", alpha=0.2, label="±10%")
        raw = scores["predicted"]
        text = f"prediction of the found networks: {_count(raw)} of {raw['n']} within ±10%"
        if plain:
            summed = scores["sum"]
            text += f"\n(open: the plain sum of cells and parts, {_count(summed)} of {summed['n']})"
        right.set_xlabel("measured latency (ms)")
        right.set_ylabel("predicted latency (ms)")
        right.set_title(text, fontsize=10)
        right.grid(alpha=0.3)
        right.legend(fontsize=7, loc="upper left")
        ax.legend(fontsize=7, loc="lower right")
    else:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig


def plot_transfer(summary: pd.DataFrame, title: str, path) -> None:
    """Leave-one-device-out: Spearman's rho and share within +-10% against the held-out device's
    labels, per method; the mean over devices bold, each device faint."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colours = {"few_shot": "tab:blue", "alone": "tab:orange", "flops": "tab:grey"}
    for ax, metric, label in (
        (axes[0], "spearman", "Spearman's rho"),
        (axes[1], "within_10pct", "share within ±10%"),
    ):
        for method, colour in colours.items():
            column = f"{method}_{metric}"
            if column not in summary:
                continue
            for device, part in summary.groupby("device"):
                mean = device == "mean"
                ax.plot(
                    part["n_labels"],
                    part[column],
                    color=colour,
                    alpha=1.0 if mean else 0.15,
                    linewidth=2.5 if mean else 0.8,
                    marker="o" if mean else None,
                    label=method if mean else None,
                )
        ax.set_xscale("log")
        ax.set_xlabel("labelled architectures of the held-out device")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def transfer_table(summary: pd.DataFrame, title: str, path) -> None:
    _write_html(
        path,
        title,
        "Each device held out in turn: its few-shot predictor (learnt from the other devices, then "
        "n of its labels), the same MLP trained on its n labels alone, and FLOPs; Spearman's rho "
        "and share within ±10% on the scored architectures, means over seeds; rank_cap is the "
        "highest rho the column's ties allow. The rows 'mean' average the devices.",
        summary,
    )
