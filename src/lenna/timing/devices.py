"""Devices a target times on: modules and inputs placed as its settings say (`place`, `as_input`;
the settings are `lenna.timing.protocol.Target`), pinning a job to its device and an exclusive
per-host lock so that no two timing jobs share a device."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from lenna.timing.hardware import cpu_model
from lenna.timing.protocol import Target


def place(target: Target, module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` in eval mode on ``device`` in the target's dtype and memory format."""
    return module.to(
        device=device, dtype=getattr(torch, target.dtype), memory_format=memory_format(target)
    ).eval()


def as_input(target: Target, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """An input tensor on ``device`` in the target's dtype and memory format (4-d tensors)."""
    x = x.to(device=device, dtype=getattr(torch, target.dtype))
    return x.contiguous(memory_format=memory_format(target)) if x.dim() == 4 else x


def memory_format(target: Target) -> torch.memory_format:
    return torch.channels_last if target.memory_format == "channels_last" else torch.contiguous_format


def pin_device(device: str, threads: int, env: dict | None = None) -> torch.device:
    """Prepare this process to time on ``device`` (``"cpu"`` or ``"cuda:N"``); call before torch work.

    A local job sees only its own GPU: ``CUDA_VISIBLE_DEVICES`` is set to N. Under a cluster
    scheduler that already assigned GPUs (``SLURM_JOB_ID`` with ``CUDA_VISIBLE_DEVICES`` set) the
    assignment is left alone and the first visible GPU is used.
    """
    env = os.environ if env is None else env
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # only settable before inter-op work started
        torch.set_num_interop_threads(1)
    if device == "cpu":
        return torch.device("cpu")
    if not device.startswith("cuda:") or not device[5:].isdigit():
        raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda:N'")
    if not scheduler_assigned_gpu(env):
        env["CUDA_VISIBLE_DEVICES"] = device[5:]
    return torch.device("cuda:0")


def compute_device(device: str, threads: int, key: str, env: dict | None = None) -> torch.device:
    """The device a search or final-training job computes on (config ``key``: ``cpu`` or
    ``cuda:N``), pinned as a timing job's is; a GPU asked for where CUDA is not available is an
    error naming the key."""
    pinned = pin_device(device, threads, env)
    if pinned.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"{key}: {device}, but this machine has no usable CUDA device (torch {torch.__version__})"
        )
    return pinned


def scheduler_assigned_gpu(env: dict | None = None) -> bool:
    """Whether a cluster scheduler (SLURM) gave this job its GPU, and so keeps others off it."""
    env = os.environ if env is None else env
    return "SLURM_JOB_ID" in env and bool(env.get("CUDA_VISIBLE_DEVICES"))


@contextlib.contextmanager
def device_lock(device: str, lock_dir: str | None = None, env: dict | None = None) -> Iterator[None]:
    """Hold an exclusive per-host lock on ``device`` so two timing jobs never share it.

    Not on a GPU that a cluster scheduler assigned: the scheduler keeps other jobs off it, and
    the job's device id (its shard's `cuda:N`) is not the GPU it was given, so a lock by that id
    would serialise unrelated jobs."""
    if device != "cpu" and scheduler_assigned_gpu(env):
        yield
        return
    directory = Path(lock_dir or tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"lenna-device-{device.replace(':', '')}.lock"
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def timing_job(snakemake) -> tuple[Target, str, torch.device]:
    """For a workflow job that runs on a target's device: the target it times for (rule params
    ``target``), the device it was given (resource ``device``: ``cpu`` or ``cuda:N``), and that
    device pinned for torch with the target's threads."""
    settings = snakemake.params.target
    target = Target(
        snakemake.wildcards.target,
        settings["batch_size"],
        settings["threads"],
        settings["dtype"],
        settings.get("memory_format", "contiguous"),
    )
    device_str = snakemake.resources.device
    return target, device_str, pin_device(device_str, target.threads)
