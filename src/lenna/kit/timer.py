"""Time the networks of a lenna measurement kit on this machine and write a device table.

Run it on the device the pipeline cannot reach, from the kit's directory (it is the kit's
time_networks.py):

    python time_networks.py --device cpu --out latency.csv

It reads the kit's manifest.json, loads every network it lists (TorchScript by default, ONNX
with --format onnx) and times a forward pass of each at the manifest's batch size on random
input. The protocol: every network first runs --warmup untimed passes; then --rounds rounds,
each of which visits every network in turn (the order rotated by one each round, so that a slow
phase of the machine hits all networks alike) and times --repeats passes of it after --warmup
untimed ones. A network's latency is the --statistic (median or min) of its rounds x repeats
timed passes, in milliseconds; on a GPU each pass is synchronised before the clock stops.

It writes --out, a CSV of columns arch,latency_ms: a one-device table that the pipeline reads
as it is (device_tables: {my_device: {table: latency.csv, few_shot: {n: N, seed: 0}}}), and
beside it a JSON of the protocol, the host and each network's spread of passes.

Standard library and torch only (onnxruntime too, and only for --format onnx), and Python 3.8
or later, so that it runs wherever PyTorch does, away from the pipeline.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

MANIFEST = "manifest.json"
KIT_FORMAT = "lenna-measurement-kit"
KIT_VERSION = 1
FORMATS = ("torchscript", "onnx")
STATISTICS = ("median", "min")


def log(line: str) -> None:
    """Progress goes to stderr; the table is the output."""
    print(line, file=sys.stderr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; the protocol's options default to the manifest's values."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kit", type=Path, default=here, help="the kit's directory (default: this script's)")
    parser.add_argument("--device", default="cpu", help="torch device: cpu (default) or cuda:N")
    parser.add_argument("--format", choices=FORMATS, default="torchscript", help="network files to run")
    parser.add_argument("--out", type=Path, default=Path("latency.csv"), help="the table to write (CSV)")
    parser.add_argument("--warmup", type=int, help="untimed passes before each visit's timed ones")
    parser.add_argument("--repeats", type=int, help="timed passes per network in each round")
    parser.add_argument("--rounds", type=int, help="rounds over all networks")
    parser.add_argument("--statistic", choices=STATISTICS, help="a network's latency from its passes")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    if args.out.suffix != ".csv":
        parser.error(f"--out {args.out}: the table is a .csv (its protocol goes beside it as .json)")
    for name in ("warmup", "repeats", "rounds", "threads"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "warmup" else 1):
            parser.error(f"--{name} {value} is too small")
    return args


def read_manifest(kit: Path) -> dict:
    """The kit's manifest; an error says what is wrong with it."""
    path = kit / MANIFEST
    if not path.is_file():
        sys.exit(f"{path}: no such file; --kit names the kit's directory (where {MANIFEST} is)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != KIT_FORMAT or manifest.get("format_version", 0) > KIT_VERSION:
        sys.exit(f"{path}: not a manifest of a {KIT_FORMAT} of version {KIT_VERSION} or before")
    return manifest


def protocol_of(args: argparse.Namespace, manifest: dict) -> dict:
    """The protocol to time with: the command line's values over the manifest's."""
    protocol = dict(manifest["protocol"])
    for name in ("warmup", "repeats", "rounds", "statistic"):
        if getattr(args, name) is not None:
            protocol[name] = getattr(args, name)
    return protocol


def network_runner(kit: Path, entry: dict, fmt: str, device: torch.device, image: torch.Tensor):
    """A function that runs one forward pass of the kit's network ``entry`` on ``image``."""
    files = entry["files"]
    if fmt not in files:
        sys.exit(
            f"{kit / MANIFEST}: network {entry['arch']} has no {fmt} file (see the manifest's 'formats')"
        )
    path = kit / files[fmt]
    if fmt == "torchscript":
        module = torch.jit.load(str(path), map_location=device).eval()
        return lambda: module(image)
    # Optional, for --format onnx alone; imported by name, so no pipeline environment needs it.
    onnxruntime = importlib.import_module("onnxruntime")
    providers = ["CUDAExecutionProvider"] if device.type == "cuda" else ["CPUExecutionProvider"]
    session = onnxruntime.InferenceSession(str(path), providers=providers)
    feed = {session.get_inputs()[0].name: image.cpu().numpy()}
    return lambda: session.run(None, feed)


def pass_ms(run, device: torch.device) -> float:
    """Wall time (ms) of one pass; on a GPU its queued work is waited for before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter_ns()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter_ns() - start) / 1e6


def time_networks(runners: list, device: torch.device, protocol: dict) -> list[list[float]]:
    """Every timed pass (ms) of each runner, by the protocol (warm-up of each, then rounds that
    visit every runner in an order rotated by one each round)."""
    passes: list[list[float]] = [[] for _ in runners]
    with torch.no_grad():
        for run in runners:
            for _ in range(protocol["warmup"]):
                run()
        for round_ in range(protocol["rounds"]):
            start = time.perf_counter()
            for k in range(len(runners)):
                which = (k + round_) % len(runners)
                for _ in range(protocol["warmup"]):
                    runners[which]()
                passes[which] += [pass_ms(runners[which], device) for _ in range(protocol["repeats"])]
            log(f"round {round_ + 1} of {protocol['rounds']}: {time.perf_counter() - start:.1f} s")
    return passes


def latency_of(passes: list[float], statistic: str) -> float:
    return min(passes) if statistic == "min" else statistics.median(passes)


def host_of(device: torch.device) -> dict:
    """What the numbers were measured on, as far as Python and torch can tell."""
    host = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "node": platform.node(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        host["gpu"] = torch.cuda.get_device_name(device)
    return host


def write_table(out: Path, archs: list[str], latencies: list[float]) -> None:
    """The one-device table: columns arch, latency_ms (ms), one row per network."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["arch", "latency_ms"])
        writer.writerows([arch, f"{ms:.6g}"] for arch, ms in zip(archs, latencies))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    manifest = read_manifest(args.kit)
    protocol = protocol_of(args, manifest)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    image = torch.randn(*manifest["input_shape"]).to(device)
    networks = manifest["networks"]
    runners = [network_runner(args.kit, entry, args.format, device, image) for entry in networks]
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()
    log(f"timing {len(runners)} networks on {device} ({args.format}), protocol {protocol}")
    passes = time_networks(runners, device, protocol)
    archs = [entry["arch"] for entry in networks]
    write_table(args.out, archs, [latency_of(p, protocol["statistic"]) for p in passes])
    sidecar = {
        "kit": {"table": manifest["table"], "created_at": manifest["created_at"]},
        "format": args.format,
        "device": str(device),
        "batch_size": manifest["batch_size"],
        "protocol": protocol,
        "host": host_of(device),
        "started_at": started,
        "elapsed_s": round(time.perf_counter() - start, 3),
        "passes_ms": {
            a: {"min": min(p), "median": statistics.median(p), "max": max(p)} for a, p in zip(archs, passes)
        },
    }
    args.out.with_suffix(".json").write_text(json.dumps(sidecar, indent=1) + "\n")
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
