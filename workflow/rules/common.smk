import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The package of this checkout; its modules are rule inputs, so editing one re-runs the rules that
# run it. Every job imports it from here, whatever its interpreter (this one, a conda env's, a
# cluster node's): it is first on this process's path and on the PYTHONPATH that jobs inherit.
SRC = Path(workflow.basedir) / "src"
SCRIPTS = Path(workflow.basedir) / "workflow" / "scripts"
sys.path.insert(0, str(SRC))
_paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
if _paths[0] != str(SRC):
    os.environ.update(PYTHONPATH=os.pathsep.join([str(SRC), *filter(None, _paths)]))

from lenna import config as cfg  # noqa: E402
from lenna.imports import package_modules  # noqa: E402
from lenna.space.network import network_macro as macro_of  # noqa: E402
from lenna.timing.hardware import HardwareError, target_hardware  # noqa: E402

validate(config, "../schemas/config.schema.yaml")
try:
    cfg.complete_search_space(config)
except cfg.ConfigError as err:
    raise ValueError(f"invalid config: {err}") from None
# One key order whatever the YAML's, so that params (compared as text) change only with values.
_canonical = cfg.canonical(config)
config.clear()
config.update(_canonical)
try:
    cfg.check_config(config)
    # The hardware model of every measured target: part of what decides its labels. Not in a
    # cluster job: its params were fixed and recorded where the DAG was built, and a node may not
    # see the target's devices by their ids.
    HARDWARE = {
        t: s.get("hardware", "") if workflow.remote_exec else target_hardware(t, s)
        for t, s in config["targets"].items()
    }
except (cfg.ConfigError, HardwareError) as err:
    raise ValueError(f"invalid config: {err}") from None

MEASURED = sorted(config["targets"])
# Targets whose latency table comes from outside (a phone, an accelerator): no timing jobs.
IMPORTED = sorted(config.get("external_targets", {}))
# Targets of whole-network device tables (lenna.tables), one per device column.
TABLED = cfg.table_targets(config)
EXTERNAL = IMPORTED + sorted(TABLED)
TARGETS = MEASURED + EXTERNAL
# Targets with searches: the measured ones (their networks are timed), and device-table targets
# asked for (their networks' latency is looked up in the table).
SEARCHED = MEASURED + sorted(t for t, s in TABLED.items() if s["search"])
# Models that need the target's device, beyond its latency table.
DEVICE_MODELS = {"lut"}
# The few-shot transfer (lenna.predictors.transfer): a model of device-table targets only.
FEW_SHOT = "few_shot"
TRANSFER_DEVICES = (
    config["transfer"].get("devices")
    or cfg.table_devices(cfg.device_table_path(config, config["transfer"]["table"]))
    if "transfer" in config
    else []
)
TRANSFER_FAMILIES = (
    config["transfer"].get("families", []) if "transfer" in config else []
)
SHARDS = range(cfg.n_shards(config))
# Adaptive sampling (`sampling.adaptive`): the targets whose later specs it chooses.
ADAPTIVE = config["sampling"].get("adaptive")
ADAPTIVE_TARGETS = MEASURED if ADAPTIVE else []


wildcard_constraints:
    target="|".join(TARGETS),
    shard=r"\d+",
    round=r"\d+",
    model="|".join([*config["predictors"]["models"], FEW_SHOT]),
    lam="|".join(re.escape(cfg.lambda_label(v)) for v in config["search"]["lambdas"]),
    seed=r"\d+",


# Between-workflow output cache (`snakemake --cache`, cache folder in $SNAKEMAKE_OUTPUT_CACHE):
# the timing and predictor-training rules are eligible when it is on (`cache: CACHE`; written so
# to spare every other run a warning per rule). Everything that decides their output is in their
# params and inputs, the target's hardware model included. Snakemake refuses a benchmark file
# for a cacheable rule (a result taken from the cache has no run time), so these rules record
# their run time in their own output and log instead.
CACHE = workflow.enable_cache


def code_inputs(script):
    """The package modules that workflow script ``script`` runs: its `lenna` imports, followed
    transitively inside the package. Rules list them as inputs, so an edit of a module re-runs
    exactly the rules whose scripts import it, directly or not."""
    return [str(m) for m in package_modules(SCRIPTS / script, SRC)]


def spec_shard_params(wildcards):
    start, stop = cfg.shard_range(config, int(wildcards.shard))
    return {"seed": config["sampling"]["seed"], "start": start, "stop": stop}


def shard_device(wildcards):
    """The device a timing job runs on: its shard's, or the target's first for whole-target jobs."""
    shard = int(wildcards.shard) if "shard" in wildcards.keys() else 0
    return cfg.shard_device(config, wildcards.target, shard)


def measure_threads(wildcards):
    """A CPU timing job holds every local core so that no other job runs beside it (the torch
    thread count it times with is the target's `threads`, a separate setting). Under a cluster
    executor it asks for the threads it times with, and for a node of its own (`slurm_extra`).
    """
    if shard_device(wildcards) != "cpu":
        return 1
    if workflow.local_exec:
        try:
            return workflow.cores
        except WorkflowError:  # no --cores: only possible where jobs are not run here
            pass
    return config["targets"][wildcards.target]["threads"]


def target_params(wildcards):
    """What decides a target's labels: its settings, name and hardware model. Device ids are
    not in it: devices of a target are interchangeable, so moving a shard to another device of
    the same model does not re-time it, while other hardware does."""
    settings = config["targets"][wildcards.target]
    return {
        **{k: v for k, v in settings.items() if k != "devices"},
        "name": wildcards.target,
        "hardware": HARDWARE[wildcards.target],
    }


def cluster_gpu(wildcards):
    """GPUs a timing job asks a cluster scheduler for (SLURM: `--gpus`); 0 on a CPU target."""
    return int(shard_device(wildcards) != "cpu")


def cluster_exclusive(wildcards):
    """A CPU timing job asks a cluster for a node of its own (on a GPU the GPU is its own)."""
    return "--exclusive" if shard_device(wildcards) == "cpu" else None


def cluster_gpu_model(wildcards):
    """The GPU type a timing job asks a cluster for: the target's declared `hardware`."""
    settings = config["targets"][wildcards.target]
    if shard_device(wildcards) == "cpu" or not settings.get("hardware"):
        return None
    return settings["hardware"]


def device_slot(device):
    return f"dev_{device.replace(':', '')}"


# Devices where searches and final trainings run (search.device, train_final.device).
COMPUTE_DEVICES = {
    section: config[section].get("device", "cpu")
    for section in ("search", "train_final")
}
DEVICE_SLOTS = sorted(
    {device_slot(d) for t in config["targets"].values() for d in t["devices"]}
    | {device_slot(d) for d in COMPUTE_DEVICES.values() if d != "cpu"}
)


def compute_resources(section):
    """Resources of a search (``search``) or final-training (``train_final``) job: the device it
    runs on (`device`); on a GPU also that device's slot, so it never shares the GPU with a timing
    job or another such job, and under SLURM a GPU (`gpu`). On the CPU they hold no slot: they
    run beside each other, and timing jobs hold every core anyway."""
    device = COMPUTE_DEVICES[section]
    if device == "cpu":
        return {"device": device, "gpu": 0}
    return {"device": device, "gpu": 1, device_slot(device): 1}


def device_resources():
    """Resources of a job that runs on a target's device. Locally: one unit of a resource per
    device (e.g. `dev_cuda0`), of which the job holds its own device's, and which profiles cap at
    1 so that no two timing jobs share a device; `device` tells the job which one it is. Under
    SLURM: `gpu` / `gpu_model`, with which the executor plugin asks for a GPU of the target's
    model (the scheduler then pins it), and `slurm_extra` that gives a CPU timing job a node of
    its own."""
    slots = {
        slot: (
            lambda wildcards, slot=slot: int(
                device_slot(shard_device(wildcards)) == slot
            )
        )
        for slot in DEVICE_SLOTS
    }
    return {
        **slots,
        "device": shard_device,
        "gpu": cluster_gpu,
        "gpu_model": cluster_gpu_model,
        "slurm_extra": cluster_exclusive,
    }


def sampler_params():
    """What decides a spec of the stream (not how many are drawn, nor which are timed later)."""
    return {
        k: v for k, v in config["sampling"].items() if k not in ("n_specs", "adaptive")
    }


def pool_params():
    """The stream indices of adaptive sampling's candidates: the ``pool`` specs after the random ones."""
    if not ADAPTIVE:
        return {}
    n = config["sampling"]["n_specs"]
    return {
        "seed": config["sampling"]["seed"],
        "start": n,
        "stop": n + ADAPTIVE["pool"],
    }


def timed_rounds(target, before=None):
    """The adaptive rounds whose specs ``target`` times: every round up to the first whose
    checkpoint (`choose_specs`) decided to stop; with ``before``, the rounds before that one
    (each was timed, or round ``before`` would not have been asked for)."""
    if before is not None:
        return list(range(1, before))
    if target not in ADAPTIVE_TARGETS:
        return []
    rounds = []
    for r in range(1, ADAPTIVE["rounds"] + 1):
        decision = checkpoints.choose_specs.get(target=target, round=r).output.decision
        if json.loads(Path(decision).read_text())["stop"]:
            break
        rounds.append(r)
    return rounds


def round_decisions(target):
    """The decisions of every round ``target`` visited: the timed ones and the one that stopped."""
    if target not in ADAPTIVE_TARGETS:
        return []
    rounds = timed_rounds(target)
    visited = rounds + [len(rounds) + 1] if len(rounds) < ADAPTIVE["rounds"] else rounds
    return [f"results/adaptive/{target}/round-{r}.json" for r in visited]


def round_specs(target, before=None):
    return [
        f"results/specs/{target}/round-{r}.parquet"
        for r in timed_rounds(target, before)
    ]


def round_latency(target, before=None):
    return [
        f"results/latency/{target}/round-{r}.parquet"
        for r in timed_rounds(target, before)
    ]


def spec_shards(wildcards=None):
    return expand("results/specs/shard-{shard}.parquet", shard=SHARDS)


def latency_shards(wildcards):
    return expand(
        "results/latency/{target}/shard-{shard}.parquet",
        target=wildcards.target,
        shard=SHARDS,
    )


def macro_ranges():
    """The macro settings that decide which cell shapes exist."""
    return {k: v for k, v in config["macro"].items() if k not in ("search", "final")}


def target_batch_size(wildcards):
    """The batch size a measured target times with; None for an external table (its rows say)."""
    return config["targets"].get(wildcards.target, {}).get("batch_size")


def target_models(target):
    """The configured predictors that can be trained for a target."""
    models = config["predictors"]["models"]
    if target in EXTERNAL:
        models = [m for m in models if m not in DEVICE_MODELS]
    if target in TABLED and TABLED[target]["few_shot"]:
        models = [*models, FEW_SHOT]
    return models


def predictor_metrics(wildcards):
    return expand(
        "results/predictors/{target}/{model}/metrics.json",
        target=wildcards.target,
        model=target_models(wildcards.target),
    )


def network_files(target, name, models):
    """File ``name`` of the network stage of each of ``models`` (none for a target without
    timing jobs, which has no network stage): ``network.json`` in the predictor's directory,
    the rest under results/networks."""
    if target in EXTERNAL:
        return []
    folder = "predictors" if name == "network.json" else "networks"
    return expand(
        f"results/{folder}/{{target}}/{{model}}/{{name}}",
        target=target,
        model=models,
        name=name,
    )


def network_metrics(wildcards):
    return network_files(
        wildcards.target, "metrics.json", target_models(wildcards.target)
    )


def network_model_file(wildcards):
    """The network model of a search's predictor (`LatencyPredictor.predict_network`); none for
    a target without timing jobs, whose predictors model whole networks already."""
    return network_files(wildcards.target, "network.json", [wildcards.model])


def table_device(wildcards):
    """What a device-table target's rules need: its table, column, batch size, few-shot settings."""
    return TABLED[wildcards.target]


def few_shot_sources(wildcards):
    """The table a few-shot target's source devices are columns of (`cfg.few_shot_source_path`)."""
    settings = TABLED[wildcards.target]
    return cfg.few_shot_source_path(settings["path"], settings["few_shot"])


def transfer_table_path(wildcards):
    return cfg.device_table_path(config, wildcards.table)


def transfer_protocol(wildcards):
    return config["device_tables"][wildcards.table].get("protocol", {})


# The measurement kit (lenna.kit), where the config asks for one; {} where not.
KIT = config.get("kit", {})


def kit_choice():
    """What decides the kit's architectures (not its files: a new format re-exports only)."""
    keys = ("n", "choice", "check", "seed", "batch_size", "source")
    return {k: KIT[k] for k in keys if k in KIT}


def kit_feedback():
    """The config lines the kit's README gives for feeding its table back (`cfg.kit_feedback`)."""
    return cfg.kit_feedback(config) if KIT else {}


def search_data():
    """The data section as the search sees it: ``search.limit``, when given, caps its parts
    instead of ``data.limit`` (a subset for the search, the final training on more)."""
    if "limit" in config["search"]:
        return {**config["data"], "limit": config["search"]["limit"]}
    return config["data"]


def search_params():
    """What decides one search besides its lambda and seed: the sweep lists are not in it, so
    adding a lambda or a seed leaves the other searches as they are."""
    sweep = ("predictors", "lambdas", "seeds", "threads", "device", "limit")
    return {k: v for k, v in config["search"].items() if k not in sweep}


def network_macro(name):
    """The complete macro settings of the search or the final network."""
    return macro_of(config["macro"], name)


def search_runs(wildcards, name):
    """File ``name`` of every search run of a target (predictor x lambda x seed)."""
    return run_files(wildcards.target, name)


def search_models(target):
    """The search's predictors that the target has."""
    return [m for m in config["search"]["predictors"] if m in target_models(target)]


def sweep_files(name):
    """File ``name`` of every run of one predictor's sweep (lambda x seed), the target and the
    predictor left as wildcards: what one job of the sweep's found networks reads or writes.
    """
    return expand(
        "results/search/{{target}}/{{model}}/lambda-{lam}/seed-{seed}/{name}",
        lam=[cfg.lambda_label(v) for v in config["search"]["lambdas"]],
        seed=config["search"]["seeds"],
        name=name,
    )


def run_files(target, name):
    """File ``name`` of every search run of a target, predictor by predictor (`sweep_files`)."""
    return [
        path
        for model in search_models(target)
        for path in expand(sweep_files(name), target=target, model=model)
    ]


def all_outputs():
    predictors = expand(
        "results/predictors/{target}/{name}",
        target=TARGETS,
        name=["comparison.csv", "comparison.html"],
    )
    # The learning curve: only where the config asks for shares (an empty list skips it).
    curves = expand(
        "results/predictors/{target}/learning_curve.{ext}",
        target=TARGETS if config["predictors"]["learning_curve"] else [],
        ext=["csv", "svg"],
    )
    pareto = expand(
        "results/pareto/{target}/{name}",
        target=SEARCHED,
        name=["pareto.csv", "pareto.svg", "pareto.html", "summary.json"],
    )
    public = expand(
        "results/public/{target}/{name}",
        target=MEASURED if "public_check" in config else [],
        name=["rank.csv", "rank.html"],
    )
    # Made for the report: data figures per measured target, figures per search run, summary.
    figures = (
        expand(
            "results/datasets/{target}/{name}",
            target=MEASURED,
            name=[
                "label_distribution.svg",
                "label_dispersion.svg",
                "convergence.svg",
                "throughput.html",
            ],
        )
        + [f"results/adaptive/{target}/rounds.svg" for target in ADAPTIVE_TARGETS]
        + [
            path
            for target in SEARCHED
            for name in ("history.svg", "alphas.svg", "cells.svg")
            for path in run_files(target, name)
        ]
    )
    figures += [
        f"results/{stage}/{target}/{model}/{name}"
        for target in TARGETS
        for model in target_models(target)
        for stage, names in (
            ("predictors", ["predicted_vs_measured.svg", "errors.svg"]),
            ("networks", [] if target in EXTERNAL else ["predicted_vs_measured.svg"]),
        )
        for name in names
    ]
    transfer = (
        expand(
            "results/transfer/{table}/{name}",
            table=config["transfer"]["table"],
            name=["loo.csv", "summary.csv", "summary.html", "loo.svg"],
        )
        if "transfer" in config
        else []
    )
    kit = (
        expand(
            "results/kit/{table}/{name}",
            table=KIT["table"],
            name=["architectures.csv", "kit"],
        )
        if KIT
        else []
    )
    return (
        transfer
        + kit
        + ["results/summary.md", "results/summary.html"]
        + figures
        + pareto
        + public
        + predictors
        + curves
        + expand(
            "results/datasets/{target}/{name}",
            target=TARGETS,
            name=[
                "latency.parquet",
                "summary.json",
                "train.parquet",
                "val.parquet",
                "test.parquet",
                "normaliser.json",
            ],
        )
    )


REPORT = "results/report.html"


def say_label_quality():
    """At the end of a run: every measured target's label quality, loud when poor
    (docs/measurement.md, "Label quality")."""
    from lenna.datasets import describe_label_quality

    for target in MEASURED:
        path = Path(f"results/datasets/{target}/summary.json")
        if path.exists():
            for line in describe_label_quality(target, json.loads(path.read_text())):
                print(line, file=sys.stderr)


def build_report():
    """Build the browsable report after a successful run of the whole workflow (README,
    "Report"), with the same Snakefile, directory and effective config as the run."""
    missing = [f for f in all_outputs() if not os.path.exists(f)]
    if missing:
        print(
            f"report not built: {len(missing)} outputs of the full workflow are missing"
        )
        return
    config_copy = Path(".snakemake") / "report-config.yaml"
    config_copy.parent.mkdir(exist_ok=True)
    config_copy.write_text(yaml.safe_dump(config))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        workflow.main_snakefile,
        "--directory",
        os.getcwd(),
        "--configfile",
        str(config_copy),
        "--report",
        REPORT,
        "--nolock",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        print(f"building the report failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
    else:
        print(f"report: {REPORT}")
