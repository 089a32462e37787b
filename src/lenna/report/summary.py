"""The headline numbers of a run, per target, as Markdown (results/summary.md) and HTML (report)."""

from __future__ import annotations

import html

import pandas as pd

from lenna.datasets import describe_label_quality

PREDICTOR_COLUMNS = [
    "model",
    "rmse_ms",
    "median_ape",
    "within_10pct",
    "spearman",
    "network_model",
    "network_within_10pct",
    "network_sum_within_10pct",
]


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


JOB_COLUMNS = [
    "job",
    "n_labels",
    "noise_floor",
    "share_retimed",
    "share_unstable",
    "retime_s",
    "other_cpu_share",
    "reference_spread",
]


def _label_quality(target: str, summary: dict) -> list:
    """The label-quality paragraph of a target and its table of timing jobs."""
    parts = [" ".join(describe_label_quality(target, {**summary, "label_quality_by_job": {}}))]
    jobs = summary.get("label_quality_by_job") or {}
    if jobs:
        table = pd.DataFrame([{"job": job.rsplit("/", 1)[-1], **q} for job, q in jobs.items()])
        table["warnings"] = table["warnings"].map("; ".join)
        parts.append(table[[c for c in (*JOB_COLUMNS, "warnings") if c in table.columns]])
    return parts


def _adaptive(rounds: list[dict]) -> str:
    """The sentence on adaptive sampling: how many specs and seconds the rounds took, the MLP's
    validation accuracy after each, and why they stopped."""
    first, last = rounds[0], rounds[-1]
    chosen = sum(r["n_chosen"] for r in rounds)
    path = " -> ".join(f"{100 * r['val_within_10pct']:.1f}%" for r in rounds)
    ending = f"stopped at round {last['round']}: {last['reason']}" if last["stop"] else "every round ran"
    protocol = first.get("protocol")
    passes = (
        f", {protocol['rounds']} visits x {protocol['repeats']} passes per discrete label" if protocol else ""
    )
    return (
        f"Adaptive sampling ({first['method']}{passes}): {first['n_timed']} random specs "
        f"({first['timing_s']:.0f} s of timing), then {chosen} chosen in "
        f"{sum(not r['stop'] for r in rounds)} round(s); the MLP's validation cells within ±10% "
        f"before each round: {path}; {ending}."
    )


def _public(table: pd.DataFrame) -> list:
    """The rank agreement with the public devices: a sentence and a device x batch table of rho."""
    pivot = table.pivot_table(index=["kind", "device"], columns="batch_size", values="spearman_rho")
    pivot.columns = [f"rho_batch_{b}" for b in pivot.columns]
    pivot = pivot.reset_index()
    cpus = table[table["kind"] == "cpu"]
    text = (
        f"NAS-Bench-201 networks timed here ({table['n_archs'].max()} architectures) against the "
        f"public devices: Spearman's rho with the public CPUs {cpus['spearman_rho'].min():.3f} to "
        f"{cpus['spearman_rho'].max():.3f}."
    )
    return [text, pivot]


def _noise(best: dict) -> str:
    """Whether an accuracy change against lambda 0 is more than the seeds' spread (pareto.paired_change)."""
    if best.get("paired_seeds", 0) < 2 or best.get("change_sd_points") is None:
        return " (fewer than two seeds paired with lambda 0: the change cannot be told from seed noise)"
    verdict = "beyond" if best["beyond_seed_noise"] else "within"
    return (
        f" (paired over {best['paired_seeds']} seeds: {best['accuracy_change_points']:+.2f} ± "
        f"{best['change_sd_points']:.2f} points, {verdict} seed noise"
        + (
            f"; paired t-test p = {best['change_p_value']:.2g})"
            if best.get("change_p_value") is not None
            else ")"
        )
    )


def _prediction(prediction: dict | None) -> str:
    """The found networks' predicted latency against their measured one, in a sentence."""
    if not prediction or "predicted" not in prediction:
        return ""
    raw = prediction["predicted"]
    text = (
        f" The predictor's whole-network latency of the found networks: {100 * raw['within_10pct']:.0f}% "
        f"of {raw['n']} within ±10% of measured (median error {100 * raw['median_ape']:.1f}%)"
    )
    if "sum" in prediction:
        plain = prediction["sum"]
        text += (
            f"; the plain sum of their cells, stem and head: {100 * plain['within_10pct']:.0f}% "
            f"(median error {100 * plain['median_ape']:.1f}%)"
        )
    if "stable" in prediction:
        stable = prediction["stable"]
        text += f". The timing protocol marked {stable['n_unstable']} of the {raw['n']} labels unstable"
        if stable["n"]:
            text += (
                f"; over the {stable['n']} stable ones the predictor is {100 * stable['within_10pct']:.0f}% "
                f"within ±10% (median error {100 * stable['median_ape']:.1f}%)"
            )
    return text + "."


def _networks(row) -> str:
    """Whole networks of a predictor, the network model beside the plain sum, in a sentence."""
    return (
        f"Whole networks no network model was fitted on ({int(row['network_n_test'])}: the test split, "
        f"the held-out macro and the published architectures), with {row['model']}'s cells: the "
        f"network model ({row['network_model']}) predicts {100 * row['network_within_10pct']:.0f}% "
        f"within ±10% (median error {100 * row['network_median_ape']:.1f}%), the plain sum of cells, "
        f"stem and head {100 * row['network_sum_within_10pct']:.0f}%."
    )


def _degenerate(entry: dict) -> str:
    """The found networks that are degenerate (`lenna.search.pareto.degenerate_reason`), in a
    sentence; "" when there are none."""
    found = entry.get("degenerate") or []
    if not found:
        return ""
    total = sum(row["seeds"] for row in entry["sweep"])
    listed = "; ".join(f"lambda {d['lambda']:g} seed {d['seed']}: {d['reason']}" for d in found)
    return (
        f" **{len(found)} of the {total} found networks are degenerate**, no trade-off and off the "
        f"Pareto front ({listed})."
    )


def _sections(
    comparisons: dict[str, pd.DataFrame],
    pareto: dict[str, dict],
    datasets: dict[str, dict] | None = None,
    public: dict[str, pd.DataFrame] | None = None,
) -> list:
    """[(heading, [paragraph or DataFrame, ...]), ...] shared by both renderings."""
    sections = []
    for target, table in comparisons.items():
        parts = []
        if target in (datasets or {}):
            parts += _label_quality(target, datasets[target])
            if datasets[target].get("adaptive"):
                parts.append(_adaptive(datasets[target]["adaptive"]))
        # A device table's target (lenna.tables): its rows are whole networks, its latencies the table's.
        network = (datasets or {}).get(target, {}).get("unit") == "network"
        rows, source = ("networks", "from the table") if network else ("cells", "measured")
        parts += _predictors(table, rows)
        if target in (public or {}):
            parts += _public(public[target])
        for model, entry in (pareto.get(target) or {}).get("models", {}).items():
            parts += _search(model, entry, source)
        sections.append((f"Target {target}", parts))
    return sections


def _predictors(table: pd.DataFrame, rows: str) -> list:
    """The most accurate predictor of a target on its held-out ``rows`` (cells or networks) in
    a sentence, its whole networks in another where the table has them, and the table."""
    best = table.loc[table["rmse_ms"].idxmin()]
    parts = [
        f"Most accurate latency predictor on held-out {rows}: **{best['model']}**, RMSE "
        f"{best['rmse_ms']:.3g} ms, {100 * best['within_10pct']:.0f}% of {rows} within ±10%, "
        f"Spearman {best['spearman']:.3f}."
    ]
    if "network_sum_within_10pct" in table:
        parts.append(_networks(best))
    parts.append(table[[c for c in PREDICTOR_COLUMNS if c in table.columns]])
    return parts


def _search(model: str, entry: dict, source: str) -> list:
    """The searches with one predictor (an entry of `lenna.search.pareto.headline`): the best
    trade-off against plain DARTS in a paragraph, and the sweep's table; latencies ``source``
    (measured, or from the table)."""
    base, best = entry.get("baseline"), entry.get("best")
    if base is None:
        return [f"Search with {model}: no lambda 0 run, so no baseline to compare with." + _degenerate(entry)]
    text = (
        f"Search with the {model} predictor: plain DARTS (lambda 0) reaches "
        f"{100 * base['test_accuracy']:.2f}% test accuracy at {base['latency_ms']:.3g} ms {source}. "
    )
    if best:
        text += (
            f"The fastest lambda > 0 within {entry['tolerance_points']} accuracy points is lambda "
            f"{best['lambda']:g}: {best['latency_ms']:.3g} ms, **{best['latency_ratio']:.2f}x the "
            f"baseline's latency** ({1 / best['latency_ratio']:.2f}x faster) at "
            f"{best['accuracy_change_points']:+.2f} accuracy points"
        )
        text += _noise(best) + "."
    else:
        text += f"No lambda > 0 stays within {entry['tolerance_points']} accuracy points of it."
    rho = entry.get("spearman_lambda_latency")
    if rho is not None:
        text += f" Spearman correlation of lambda and latency ({source}) over the sweep: {rho:.2f}."
    text += _prediction(entry.get("prediction"))
    text += _degenerate(entry)
    return [text, _sweep(entry["sweep"])]


SWEEP_COLUMNS = [
    "lambda",
    "seeds",
    "degenerate",
    "test_accuracy_%",
    "sd_points",
    "change_points",
    "change_sd_points",
    "beyond_seed_noise",
    "change_p_value",
    "latency_ms",
    "latency_std",
    "predicted_latency_ms",
]


def _sweep(rows: list[dict]) -> pd.DataFrame:
    """The sweep of one predictor's searches as a table, accuracies in points, with each
    lambda's change against lambda 0 where the sweep has its paired spread."""
    sweep = pd.DataFrame(rows)
    sweep["test_accuracy"] *= 100
    sweep["accuracy_std"] *= 100
    sweep = sweep.rename(columns={"test_accuracy": "test_accuracy_%", "accuracy_std": "sd_points"})
    if "change_sd_points" in sweep:
        base_acc = sweep.loc[sweep["lambda"] == 0, "test_accuracy_%"]
        sweep["change_points"] = sweep["test_accuracy_%"] - (
            base_acc.iloc[0] if len(base_acc) else float("nan")
        )
    return sweep[[c for c in SWEEP_COLUMNS if c in sweep]]


def to_markdown(comparisons, pareto, datasets=None, public=None) -> str:
    lines = ["# LENNA run summary", ""]
    for heading, parts in _sections(comparisons, pareto, datasets, public):
        lines += [f"## {heading}", ""]
        for part in parts:
            if isinstance(part, pd.DataFrame):
                cols = list(part.columns)
                lines.append("| " + " | ".join(cols) + " |")
                lines.append("|" + " --- |" * len(cols))
                for _, row in part.iterrows():
                    lines.append("| " + " | ".join(_fmt(row[c]) for c in cols) + " |")
            else:
                lines.append(part)
            lines.append("")
    return "\n".join(lines)


def to_html(comparisons, pareto, datasets=None, public=None) -> str:
    out = ["<h2>LENNA run summary</h2>"]
    for heading, parts in _sections(comparisons, pareto, datasets, public):
        out.append(f"<h3>{html.escape(heading)}</h3>")
        for part in parts:
            if isinstance(part, pd.DataFrame):
                out.append(part.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0))
            else:
                text = html.escape(part)
                while "**" in text:
                    text = text.replace("**", "<b>", 1).replace("**", "</b>", 1)
                out.append(f"<p>{text}</p>")
    return "\n".join(out) + "\n"
