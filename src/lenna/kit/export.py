"""A measurement kit's directory, ready to copy to a device the pipeline cannot reach.

::

    manifest.json       the architectures, their files, input shape, batch size, protocol, ...
    networks/<index>.pt     the benchmark network of each architecture, TorchScript (traced)
    networks/<index>.onnx   the same in ONNX, where torch can export it here (it needs onnx)
    time_networks.py    the timing script (`lenna.kit.timer`): stdlib and torch only
    README.md           how to run it and feed its table back

Each network is NAS-Bench-201's benchmark network (`BENCHMARK_MACRO`: C=16, N=5 cells per stage,
32x32 RGB input, 10 classes), the network the public table timed, in eval mode with random
weights (latency does not depend on their values).
"""

from __future__ import annotations

import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import torch

from lenna.io import write_json
from lenna.kit import timer
from lenna.space.build import build_network
from lenna.space.nb201 import Arch
from lenna.timing.public import BENCHMARK_MACRO

NETWORKS = "networks"
SCRIPT = "time_networks.py"


def input_shape(batch_size: int) -> list[int]:
    """(batch, channels, pixels, pixels) of the benchmark network's input."""
    size = BENCHMARK_MACRO.input_size
    return [int(batch_size), BENCHMARK_MACRO.input_channels, size, size]


def benchmark_network(arch: str, seed: int) -> torch.nn.Module:
    """The benchmark network of ``arch`` in eval mode, its weights drawn with ``seed``."""
    torch.manual_seed(seed)
    return build_network(Arch.parse(arch), BENCHMARK_MACRO).eval()


def export_onnx(net: torch.nn.Module, image: torch.Tensor, path: Path) -> str | None:
    """Write ``net`` as ONNX (torch's TorchScript-based exporter, which needs the ``onnx``
    package but not ``onnxscript``); None on success, else why it failed (one line)."""
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, (image,), str(path), dynamo=False, input_names=["image"], output_names=["logits"]
            )
    except Exception as err:  # noqa: BLE001 - any failure means no ONNX files, said in the manifest
        path.unlink(missing_ok=True)
        lines = str(err).strip().splitlines()
        return f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]
    return None


def export_networks(
    archs: pd.DataFrame, directory: Path, batch_size: int, formats: list[str], log=lambda s: None
) -> tuple[list[dict], dict]:
    """Export every architecture's network: its manifest entries (index, arch, role, files) and
    per format what was exported. ONNX is all or nothing: after a failed export none is kept."""
    (directory / NETWORKS).mkdir(parents=True, exist_ok=True)
    image = torch.randn(*input_shape(batch_size), generator=torch.Generator().manual_seed(0))
    entries, onnx_error = [], None
    for row in archs.itertuples(index=False):
        net = benchmark_network(row.arch, int(row.index))
        files = {"torchscript": f"{NETWORKS}/{row.index}.pt"}
        with torch.no_grad():
            # torch's own trace check traces the network twice more (half the export's time);
            # comparing the traced network's output with the network's own is the check needed.
            traced = torch.jit.trace(net, image, check_trace=False)
            if not torch.allclose(traced(image), net(image), rtol=1e-4, atol=1e-5):
                raise RuntimeError(f"the traced network of architecture {row.index} computes otherwise")
            traced.save(str(directory / files["torchscript"]))
        if "onnx" in formats and onnx_error is None:
            files["onnx"] = f"{NETWORKS}/{row.index}.onnx"
            onnx_error = export_onnx(net, image, directory / files["onnx"])
            if onnx_error:
                log(f"ONNX export failed, the kit has no ONNX files: {onnx_error}")
        entries.append({"index": int(row.index), "arch": row.arch, "role": row.role, "files": files})
    exported = {"torchscript": {"exported": True}}
    if "onnx" in formats:
        exported["onnx"] = {"exported": onnx_error is None}
        if onnx_error:
            exported["onnx"]["reason"] = onnx_error
            for entry in entries:
                if entry["files"].pop("onnx", None):
                    (directory / NETWORKS / f"{entry['index']}.onnx").unlink(missing_ok=True)
    return entries, exported


def build_kit(
    archs: pd.DataFrame,
    directory: Path,
    table: str,
    batch_size: int,
    formats: list[str],
    protocol: dict,
    feedback: dict,
    log=lambda s: None,
) -> dict:
    """Write the kit for ``archs`` (index, arch, role) into ``directory``: networks, manifest,
    timing script, README. ``protocol`` is the timing script's default protocol (warmup,
    repeats, rounds, statistic); ``feedback`` what the README's config for the table needs
    (``n``, and ``protocol`` and ``source_table`` where not the defaults). Returns the manifest."""
    directory = Path(directory)
    entries, exported = export_networks(archs, directory, batch_size, formats, log)
    manifest = {
        "format": timer.KIT_FORMAT,
        "format_version": timer.KIT_VERSION,
        "table": table,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
        "network": {
            "search_space": "nb201",
            "init_channels": BENCHMARK_MACRO.init_channels,
            "layers": BENCHMARK_MACRO.layers,
            "num_classes": BENCHMARK_MACRO.num_classes,
        },
        "input_shape": input_shape(batch_size),
        "batch_size": int(batch_size),
        "protocol": dict(protocol),
        "formats": exported,
        "feedback": feedback,
        "networks": entries,
    }
    write_json(manifest, directory / timer.MANIFEST)
    shutil.copyfile(timer.__file__, directory / SCRIPT)
    (directory / "README.md").write_text(kit_readme(manifest))
    return manifest


def feedback_config(feedback: dict) -> str:
    """The config lines that make the kit's table a few-shot target named ``my_device``."""
    few_shot = f"{{n: {feedback['n']}, seed: 0"
    if feedback.get("source_table"):
        few_shot += f", source_table: {feedback['source_table']}"
    lines = [
        "device_tables:",
        "  my_device:",
        "    table: path/to/latency.csv",
        f"    few_shot: {few_shot}}}",
    ]
    if feedback.get("protocol"):
        protocol = ", ".join(f"{k}: {list(v)}" for k, v in feedback["protocol"].items())
        lines.append(f"    protocol: {{{protocol}}}")
    return "\n".join(lines)


def kit_readme(manifest: dict) -> str:
    """The kit's README: what it holds, the command to run on the device, how to feed it back."""
    roles = [entry["role"] for entry in manifest["networks"]]
    onnx = manifest["formats"].get("onnx", {"exported": False, "reason": "not asked for"})
    onnx_line = (
        " and ONNX (`.onnx`, run with `--format onnx`, which needs onnxruntime)"
        if onnx["exported"]
        else f"; it has no ONNX files ({onnx.get('reason', 'not asked for')})"
    )
    p = manifest["protocol"]
    return f"""# Measurement kit: {len(roles)} NAS-Bench-201 networks to time on your device

Made by the lenna pipeline on {manifest["created_at"]} from the device table `{manifest["table"]}`
(torch {manifest["torch_version"]}). {roles.count("label")} networks (role `label` in
`manifest.json`) are the labels a few-shot latency predictor of your device is fitted on;
{roles.count("check")} more (role `check`) score that predictor. Each is NAS-Bench-201's
benchmark network (C=16, N=5 cells per stage, 32x32 RGB input, 10 classes) at batch size
{manifest["batch_size"]}, input shape {manifest["input_shape"]}, in `networks/` as TorchScript
(`.pt`){onnx_line}.

## Time them on the device

With Python 3.8 or later and PyTorch (a torch older than the kit's may not load its TorchScript
files), from this directory, with nothing else running on the device:

    python time_networks.py --device cpu --out latency.csv

`--device cuda:0` times on a GPU (each pass synchronised). The protocol (`--help`; defaults from
the manifest): every network {p["warmup"]} untimed passes first; then {p["rounds"]} rounds over all
networks, the order rotated each round so that a slow phase of the device hits all alike, each
visit {p["warmup"]} untimed and {p["repeats"]} timed passes; a network's latency is the
{p["statistic"]} of its {p["rounds"] * p["repeats"]} timed passes (ms). It writes `latency.csv`
(columns `arch,latency_ms`) and `latency.json` (the protocol, the host, each network's spread).

## Feed the table back

Copy `latency.csv` to the pipeline's machine and add a device table to the config (a
NAS-Bench-201 experiment, `search_space: {{name: nb201}}`):

```yaml
{feedback_config(manifest["feedback"])}
```

`snakemake` then makes `my_device` a target: its few-shot predictor
(`results/predictors/my_device/few_shot/`) is fitted on the label networks and scored on the
check networks (`metrics.json`, `results/predictors/my_device/comparison.csv`).
"""
