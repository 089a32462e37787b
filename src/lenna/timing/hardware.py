"""The hardware model a target times on, without importing torch.

Labels are only valid for the hardware model they were measured on, so the model is part of
what decides a timing job's output: it is in the job's params, which makes Snakemake re-time
when the same working directory moves to other hardware, and lets the between-workflow output
cache serve a measurement only to a target on the same model. A target may declare its model
(`targets.<name>.hardware`, needed where the machine building the DAG is not the one timing,
as under SLURM); otherwise it is read here, from /proc/cpuinfo or `nvidia-smi`.
"""

import contextlib
import platform
import shutil
import subprocess
from pathlib import Path


class HardwareError(ValueError):
    """The hardware model of a target cannot be determined."""


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    with contextlib.suppress(OSError):
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def gpu_models(indices: list[int]) -> list[str]:
    """Names of the GPUs with these indices, as `nvidia-smi` reports them."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise HardwareError("nvidia-smi is not available on this machine")
    ids = ",".join(str(i) for i in indices)
    result = subprocess.run(
        [smi, "--query-gpu=name", "--format=csv,noheader", f"--id={ids}"],
        capture_output=True,
        text=True,
    )
    names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or len(names) != len(indices):
        raise HardwareError(f"nvidia-smi could not name GPUs {ids}: {result.stderr.strip() or result.stdout}")
    return names


def target_hardware(name: str, settings: dict) -> str:
    """The hardware model of measured target ``name``: declared, or detected on this machine."""
    if settings.get("hardware"):
        return settings["hardware"]
    devices = settings["devices"]
    if devices == ["cpu"]:
        return cpu_model()
    try:
        models = set(gpu_models([int(d.split(":")[1]) for d in devices]))
    except HardwareError as err:
        raise HardwareError(
            f"targets.{name}.hardware: cannot detect the GPU model of {devices} here ({err}); "
            "declare it, e.g. `hardware: a100`"
        ) from None
    if len(models) > 1:
        raise HardwareError(
            f"targets.{name}.devices: {devices} are different GPU models {sorted(models)}; "
            "a target's devices must be interchangeable — make one target per model"
        )
    return models.pop()


def gpu_driver(proc_version: str = "/proc/driver/nvidia/version") -> str:
    """The NVIDIA driver's version (e.g. ``580.159.04``), from the kernel module or `nvidia-smi`;
    empty where there is neither."""
    with contextlib.suppress(OSError):
        for word in Path(proc_version).read_text().split():
            parts = word.split(".")
            if len(parts) >= 2 and all(p.isdigit() for p in parts):
                return word
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ""
    result = subprocess.run(
        [smi, "--query-gpu=driver_version", "--format=csv,noheader", "--id=0"], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else ""
