"""Checks of the workflow config beyond its JSON schema, and the objects built from it.

The schema (workflow/schemas/config.schema.yaml) checks types and ranges; `check_config` checks
what a schema cannot: names that must exist in the code, sums, and cross-references. Every
error names the offending key and value.
"""

from __future__ import annotations

import math
import os
import re

from lenna.search.settings import DATASET_SHAPES, FASHION_MNIST_DIR, FASHION_MNIST_NAMES
from lenna.space.cell import CellShape
from lenna.space.network import Macro, network_macro
from lenna.space.ops import CELL_OPS, OP_SETS
from lenna.space.spaces import DEFAULT_STEPS, FIXED_STEPS, SPACE_OF_OP_SET, SPACES, config_space
from lenna.space.specs import SAMPLERS
from lenna.timing.network_plan import covered, held_out_macro
from lenna.timing.protocol import Target, TimingProtocol

DEVICE_PATTERN = re.compile(r"^(cpu|cuda:\d+)$")


class ConfigError(ValueError):
    """An invalid config value; the message starts with the key it concerns."""


def canonical(node):
    """``node`` with every mapping's keys in sorted order, recursively. The workflow's params
    are compared by their text between runs, so without this a config whose keys were merely
    reordered (a YAML tool that sorts them, say) would look changed and re-run everything."""
    if isinstance(node, dict):
        return {key: canonical(node[key]) for key in sorted(node)}
    if isinstance(node, list):
        return [canonical(value) for value in node]
    return node


def complete_search_space(config: dict) -> None:
    """Fill the ``search_space`` section in place: ``name`` (default darts), and the space's
    own op set and node count where ``op_set`` / ``steps`` are left out."""
    space = config.setdefault("search_space", {})
    name = space.setdefault("name", "darts")
    if name not in SPACES:
        raise ConfigError(f"search_space.name: unknown space {name!r}; known: {list(SPACES)}")
    space.setdefault("op_set", name)
    space.setdefault("steps", DEFAULT_STEPS[name])


def check_config(config: dict) -> None:
    """Raise `ConfigError` naming the key of the first invalid value found."""
    complete_search_space(config)
    _check_space(config["search_space"])
    _check_macro(config)
    _check_sampling(config["sampling"])
    _check_targets(config)
    _check_public(config)
    _check_kit(config)
    split = config["datasets"]["split"]
    if not math.isclose(sum(split.values()), 1.0, abs_tol=1e-9):
        raise ConfigError(f"datasets.split: shares {split} sum to {sum(split.values())}, not 1")
    _check_adaptive(config)
    check_search(config)
    _check_networks(config)


def _check_space(space: dict) -> None:
    """The completed ``search_space`` section: an implemented op set of the named space, and the
    node count of a space whose cells have a fixed one."""
    if space["op_set"] not in OP_SETS:
        raise ConfigError(
            f"search_space.op_set: unknown op set {space['op_set']!r}; known: {sorted(OP_SETS)}"
        )
    # LENNA's ops map C to 2C on strided edges and are built by lenna.space.lenna_layers instead.
    unknown_ops = [op for op in OP_SETS[space["op_set"]] if op not in CELL_OPS and space["op_set"] != "lenna"]
    if unknown_ops:
        raise ConfigError(f"search_space.op_set: op(s) {unknown_ops} have no implementation")
    owner = SPACE_OF_OP_SET.get(space["op_set"], "darts")
    if owner != space["name"]:
        raise ConfigError(
            f"search_space.op_set: {space['op_set']!r} is an op set of the {owner} space, "
            f"not of {space['name']}"
        )
    fixed = FIXED_STEPS[space["name"]]
    if fixed is not None and space["steps"] != fixed:
        raise ConfigError(
            f"search_space.steps: a {space['name']} cell has {fixed} nodes, not {space['steps']}"
        )


def _check_macro(config: dict) -> None:
    """The ``macro`` section: input sizes a network can halve twice, what a space other than
    DARTS cannot build (a stem multiplier, derived samples), and search and final networks inside
    the ranges the latency specs cover."""
    space, macro = config["search_space"], config["macro"]
    for size in macro["input_size"]:
        if size % 4:
            raise ConfigError(f"macro.input_size: {size} is not divisible by 4 (a network reduces twice)")
    if space["name"] != "darts":
        if macro["stem_multiplier"] != 1:
            raise ConfigError(
                f"macro.stem_multiplier: {macro['stem_multiplier']}, but a {space['name']} stem has "
                "init_channels channels (1)"
            )
        if "derived" in config["sampling"]["samplers"]:
            raise ConfigError(
                f"sampling.samplers: 'derived' is DARTS's derivation (two inputs per node); a "
                f"{space['name']} discrete cell has one op on every edge already: use discrete"
            )
    for name in ("search", "final"):
        for key in ("init_channels", "layers", "input_size"):
            value = macro[name][key]
            if value not in macro[key]:
                raise ConfigError(
                    f"macro.{name}.{key}: {value} is outside macro.{key} {macro[key]}, "
                    "so no latency spec covers that network"
                )


def _check_sampling(sampling: dict) -> None:
    """The ``sampling`` section: known samplers with shares that sum above zero, and an
    increasing concentration range."""
    weights = sampling["samplers"]
    for name in weights:
        if name not in SAMPLERS:
            raise ConfigError(f"sampling.samplers: unknown sampler {name!r}; known: {list(SAMPLERS)}")
    if not sum(weights.values()) > 0:
        raise ConfigError(f"sampling.samplers: shares {weights} sum to zero")
    lo, hi = sampling["soft_concentration"]
    if not lo < hi:
        raise ConfigError(f"sampling.soft_concentration: {[lo, hi]} is not an increasing [low, high] pair")


def _check_adaptive(config: dict) -> None:
    """``sampling.adaptive``: a batch the pool can give (its training-split share), a measured
    target to time it on, and an MLP to choose with."""
    adaptive = config["sampling"].get("adaptive")
    if not adaptive:
        return
    train = config["datasets"]["split"].get("train", 0.0)
    if adaptive["batch"] > adaptive["pool"] * train:
        raise ConfigError(
            f"sampling.adaptive.batch: {adaptive['batch']} specs per round, but the pool of "
            f"{adaptive['pool']} gives about {adaptive['pool'] * train:.0f} candidates (its training "
            "split): raise sampling.adaptive.pool"
        )
    if not config["targets"]:
        raise ConfigError("sampling.adaptive: no measured target (targets) to time the chosen specs on")
    if "mlp" not in config["predictors"]:
        raise ConfigError("sampling.adaptive: the rounds choose with the MLP; predictors.mlp is missing")


def _check_targets(config: dict) -> None:
    """Every kind of target: measured ones on known devices of one kind, at least one target of
    any kind, external tables that exist under names of their own, readable device tables, and
    a transfer from one of them."""
    for target, settings in config["targets"].items():
        for device in settings["devices"]:
            if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
                raise ConfigError(
                    f"targets.{target}.devices: unknown device {device!r}; expected 'cpu' or 'cuda:N'"
                )
        kinds = {d.split(":")[0] for d in settings["devices"]}
        if len(kinds) > 1:
            raise ConfigError(f"targets.{target}.devices: {settings['devices']} mixes CPU and GPU devices")

    if not (config["targets"] or config.get("external_targets") or config.get("device_tables")):
        raise ConfigError("targets: no target (nor external_targets or device_tables) to work for")
    for name, settings in config.get("external_targets", {}).items():
        if name in config["targets"]:
            raise ConfigError(f"external_targets.{name}: the name is also a measured target in targets")
        table = settings["table"]
        if not os.path.isfile(table):
            raise ConfigError(f"external_targets.{name}.table: no such file {table!r}")

    table_targets(config)  # raises on a bad device table
    transfer = config.get("transfer")
    if transfer is not None and transfer["table"] not in config.get("device_tables", {}):
        raise ConfigError(f"transfer.table: {transfer['table']!r} is not a table of device_tables")


def _check_public(config: dict) -> None:
    """The ``public_check`` section, where there is one: a NAS-Bench-201 run, and its table."""
    public, space = config.get("public_check"), config["search_space"]
    if public is not None:
        if space["name"] != "nb201":
            raise ConfigError(
                f"public_check: the public table holds NAS-Bench-201 networks, not {space['name']}"
            )
        table = public_table_path(config)
        if not os.path.isfile(table):
            raise ConfigError(f"public_check.table: no such file {table!r}")


def _check_networks(config: dict) -> None:
    """The held-out macro of the network stage must be a network the cell predictors cover."""
    held_out = config["networks"].get("held_out_macro")
    if held_out and not covered(
        config_space(config["search_space"]), held_out_macro(config["macro"], held_out), config["macro"]
    ):
        raise ConfigError(
            f"networks.held_out_macro: {held_out} has cells of shapes that no network of the macro "
            "ranges has, so the cell predictors do not cover it"
        )


def table_columns(path: str) -> list[str]:
    """The column names of a device table file (Parquet or CSV), read without its rows."""
    if path.endswith(".csv"):
        with open(path) as f:
            return f.readline().strip().split(",")
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def table_devices(path: str) -> list[str]:
    """The device (latency) columns of a device table file: every column but its keys."""
    from lenna.tables import KEY_COLUMNS

    return [c for c in table_columns(path) if c not in KEY_COLUMNS]


def device_table_path(config: dict, name: str) -> str:
    """The file of device table ``name``: its ``table``, or the public table this package ships."""
    from lenna.space.nb201 import PUBLIC_TABLE

    return config["device_tables"][name].get("table", str(PUBLIC_TABLE))


def table_targets(config: dict) -> dict[str, dict]:
    """The targets of ``device_tables`` (lenna.tables): one per device column of each table, named
    by its column (or, for a table of one device's ``latency_ms``, by the table's name). Each
    maps to what its import and its predictors need. Raises `ConfigError` naming the key."""
    from lenna.tables import KEY_COLUMNS, SINGLE_COLUMN, batch_size_of

    out = {}
    for name, settings in config.get("device_tables", {}).items():
        key = f"device_tables.{name}"
        if config["search_space"]["name"] != "nb201":
            raise ConfigError(
                f"{key}: device tables hold NAS-Bench-201 networks; search_space.name must be nb201"
            )
        path = device_table_path(config, name)
        if not os.path.isfile(path):
            raise ConfigError(f"{key}.table: no such file {path!r}")
        try:
            columns = table_columns(path)
        except Exception as err:  # noqa: BLE001 - any unreadable file is the same error to a user
            raise ConfigError(f"{key}.table: {path} is not a readable table ({err})") from None
        if not any(c in columns for c in KEY_COLUMNS):
            raise ConfigError(f"{key}.table: {path} has no column 'arch' or 'index'")
        devices = table_devices(path)
        chosen = settings.get("devices") or devices
        unknown = [d for d in chosen if d not in devices]
        if unknown:
            raise ConfigError(f"{key}.devices: {unknown} are not columns of {path}; it has {devices}")
        few_shot = settings.get("few_shot")
        if few_shot is not None:
            _check_few_shot_sources(f"{key}.few_shot", few_shot, path, devices, chosen)
        for column in chosen:
            target = name if column == SINGLE_COLUMN else column
            if target in out or target in config["targets"] or target in config.get("external_targets", {}):
                raise ConfigError(f"{key}: target {target!r} is named twice (targets are named by column)")
            out[target] = {
                "table": name,
                "path": path,
                "column": column,
                "batch_size": settings.get("batch_size") or batch_size_of(column),
                "few_shot": few_shot,
                "protocol": settings.get("protocol", {}),
                "search": bool(settings.get("search", False)),
            }
    return out


def few_shot_source_path(path: str, few_shot: dict) -> str:
    """The table the few-shot sources of a device table at ``path`` come from: ``source_table``;
    by default the table itself, or for a table of one device (a measurement kit's) the public
    table this package ships."""
    from lenna.space.nb201 import PUBLIC_TABLE

    if few_shot.get("source_table"):
        return few_shot["source_table"]
    return path if len(table_devices(path)) > 1 else str(PUBLIC_TABLE)


def _check_few_shot_sources(
    key: str, few_shot: dict, path: str, devices: list[str], chosen: list[str]
) -> None:
    """The few-shot sources: a readable source table, and source devices that are its columns
    (and, in the target's own table, not a target)."""
    source_path = few_shot_source_path(path, few_shot)
    if not os.path.isfile(source_path):
        raise ConfigError(f"{key}.source_table: no such file {source_path!r}")
    own = source_path == path
    available = devices if own else table_devices(source_path)
    bad = [s for s in few_shot.get("sources") or [] if s not in available or (own and s in chosen)]
    if bad:
        raise ConfigError(
            f"{key}.sources: {bad} are not {'other ' if own else ''}device columns of {source_path} "
            f"(a target is never its own source)"
        )


def _check_kit(config: dict) -> None:
    """The ``kit`` section, where there is one: a table of device_tables, label and check counts
    its protocol's ranges hold, and TorchScript among the formats (what the timing script runs)."""
    from lenna.tables import Protocol

    kit = config.get("kit")
    if kit is None:
        return
    if kit["table"] not in config.get("device_tables", {}):
        raise ConfigError(f"kit.table: {kit['table']!r} is not a table of device_tables")
    protocol = Protocol.from_config(config["device_tables"][kit["table"]].get("protocol"))
    (lo, hi), (s_lo, s_hi) = protocol.pool, protocol.score
    if not 2 <= kit["n"] <= hi - lo:
        raise ConfigError(
            f"kit.n: {kit['n']} label architectures; a few-shot predictor needs at least 2, and the "
            f"pool (indices {lo}..{hi - 1}) holds {hi - lo}"
        )
    check = kit["check"]
    if not 5 <= check <= s_hi - s_lo:
        raise ConfigError(
            f"kit.check: {check} check architectures; scoring the few-shot predictor needs at least 5 "
            f"(the scored ones lie within the latency percentiles), and indices {s_lo}..{s_hi - 1} hold "
            f"{s_hi - s_lo}"
        )
    if "torchscript" not in kit["formats"]:
        raise ConfigError(
            f"kit.formats: {kit['formats']} lacks torchscript, the format the timing script runs"
        )


def kit_feedback(config: dict) -> dict:
    """What a measurement kit's README puts in the config that feeds its table back: the label
    count ``n``, the kit table's ``protocol``, and its file as ``source_table`` where that is not
    the default (the public table) of a table of one device."""
    from lenna.space.nb201 import PUBLIC_TABLE

    kit = config["kit"]
    path = device_table_path(config, kit["table"])
    return {
        "n": kit["n"],
        "protocol": config["device_tables"][kit["table"]].get("protocol", {}),
        "source_table": None if path == str(PUBLIC_TABLE) else path,
    }


def public_table_path(config: dict) -> str:
    """The public NAS-Bench-201 latency table of ``public_check``: its ``table``, or the one this
    package ships."""
    from lenna.space.nb201 import PUBLIC_TABLE

    return config["public_check"].get("table", str(PUBLIC_TABLE))


def reference_shape(config: dict) -> CellShape:
    """Where the timing jobs' reference cell sits: the first cell of the search network."""
    search = Macro(**network_macro(config["macro"], "search"))
    return config_space(config["search_space"]).cell_shapes(search)[0]


def found_span_s(config: dict) -> float:
    """The seconds over which a sweep's found networks' job spreads its rounds:
    ``networks.found_span_s``, else ``networks.span_s``, else 0 (back to back)."""
    networks = config["networks"]
    return float(networks.get("found_span_s", networks.get("span_s", 0)))


def n_shards(config: dict) -> int:
    sampling = config["sampling"]
    return -(-sampling["n_specs"] // sampling["specs_per_shard"])


def shard_range(config: dict, shard: int) -> tuple[int, int]:
    """Indices [start, stop) of the specs of ``shard`` in the seed's spec stream."""
    size = config["sampling"]["specs_per_shard"]
    return shard * size, min((shard + 1) * size, config["sampling"]["n_specs"])


def shard_device(config: dict, target: str, shard: int) -> str:
    devices = config["targets"][target]["devices"]
    return devices[shard % len(devices)]


def target_settings(config: dict, name: str) -> Target:
    settings = config["targets"][name]
    return Target(
        name,
        settings["batch_size"],
        settings["threads"],
        settings.get("dtype", "float32"),
        settings.get("memory_format", "contiguous"),
    )


def timing_protocol(config: dict) -> TimingProtocol:
    return TimingProtocol(**config["measurement"])


def check_search(config: dict) -> None:
    """The data, search and train_final sections: dataset against macro, predictor names."""
    data = config["data"]
    split = data["split"]
    if not math.isclose(sum(split.values()), 1.0, abs_tol=1e-9):
        raise ConfigError(f"data.split: shares {split} sum to {sum(split.values())}, not 1")
    if data["dataset"] == "cifar10":
        directory = data.get("cifar10_dir")
        if not directory:
            raise ConfigError("data.cifar10_dir: dataset cifar10 needs the directory of its python batches")
        if not os.path.isdir(directory):
            raise ConfigError(f"data.cifar10_dir: no such directory {directory!r}")
    if data["dataset"] == "fashion_mnist":
        directory = data.get("fashion_mnist_dir") or FASHION_MNIST_DIR
        missing = [f for f in FASHION_MNIST_NAMES if not os.path.isfile(os.path.join(directory, f))]
        if missing:
            raise ConfigError(
                f"data.fashion_mnist_dir: {directory} lacks {missing}; install the Debian package "
                "dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or name a directory "
                "holding the four IDX files"
            )
    elif data.get("input_size"):
        raise ConfigError(
            f"data.input_size: only fashion_mnist images are down-sampled, not {data['dataset']}"
        )
    channels, pixels, classes = DATASET_SHAPES[data["dataset"]]
    pixels = data.get("input_size") or pixels
    macro = config["macro"]
    if macro["input_channels"] != channels:
        raise ConfigError(
            f"macro.input_channels: {macro['input_channels']}, but {data['dataset']} images have {channels}"
        )
    if macro["num_classes"] != classes:
        raise ConfigError(f"macro.num_classes: {macro['num_classes']}, but {data['dataset']} has {classes}")
    for name in ("search", "final"):
        if macro[name]["input_size"] != pixels:
            raise ConfigError(
                f"macro.{name}.input_size: {macro[name]['input_size']}, but {data['dataset']} images "
                f"are {pixels}x{pixels}"
            )
    search = config["search"]
    models = config["predictors"]["models"]
    few_shot = any(t.get("few_shot") for t in config.get("device_tables", {}).values())
    for model in search["predictors"]:
        if model not in models and not (model == "few_shot" and few_shot):
            raise ConfigError(
                f"search.predictors: {model!r} is not a trained predictor (predictors.models: {models}"
                f"{'' if few_shot else '; few_shot needs a device table with few_shot'})"
            )
    if search["warmup_epochs"] > search["epochs"]:
        raise ConfigError(
            f"search.warmup_epochs: {search['warmup_epochs']} exceeds search.epochs ({search['epochs']})"
        )


def lambda_label(value) -> str:
    """How a lambda appears in paths: the shortest form of the float (0.1, 1, 1e-05)."""
    return format(float(value), "g")
