"""The hardware model of a target: declared, or read from /proc/cpuinfo or nvidia-smi."""

import pytest

from lenna.timing.hardware import HardwareError, cpu_model, gpu_driver, target_hardware


def test_a_declared_model_is_used_as_it_is():
    assert target_hardware("g", {"devices": ["cuda:0", "cuda:1"], "hardware": "a100"}) == "a100"


def test_the_cpu_model_is_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Example CPU 9000 @ 3.00GHz\nflags\t: fpu\n")
    assert cpu_model(str(info)) == "Example CPU 9000 @ 3.00GHz"
    assert target_hardware("cpu", {"devices": ["cpu"]}) == cpu_model()


def fake_nvidia_smi(tmp_path, monkeypatch, names):
    """An nvidia-smi that names GPUs as ``names`` (for machines that have none)."""
    script = tmp_path / "nvidia-smi"
    lines = "\n".join(f'  {i}) echo "{n}";;' for i, n in enumerate(names))
    script.write_text(
        '#!/bin/sh\nids=$(echo "$3" | sed s/--id=//)\nfor i in $(echo $ids | tr , " "); do\n'
        f'  case $i in\n{lines}\n  *) echo "No devices were found" >&2; exit 6;;\n  esac\ndone\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path), prepend=":")


def test_gpu_models_are_detected_and_must_agree(tmp_path, monkeypatch):
    fake_nvidia_smi(tmp_path, monkeypatch, ["NVIDIA H100 80GB HBM3", "NVIDIA H100 80GB HBM3", "NVIDIA A100"])
    assert target_hardware("g", {"devices": ["cuda:0", "cuda:1"]}) == "NVIDIA H100 80GB HBM3"
    with pytest.raises(HardwareError, match=r"targets\.g\.devices.*different GPU models"):
        target_hardware("g", {"devices": ["cuda:1", "cuda:2"]})
    with pytest.raises(HardwareError, match=r"targets\.g\.hardware: cannot detect"):
        target_hardware("g", {"devices": ["cuda:7"]})


def test_without_nvidia_smi_a_gpu_target_must_declare_its_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HardwareError, match=r"targets\.g\.hardware: .*nvidia-smi is not available"):
        target_hardware("g", {"devices": ["cuda:0"]})


def test_the_gpu_driver_version_is_read_from_the_kernel_module(tmp_path, monkeypatch):
    # As the H100 of the GPU run reported it.
    version = tmp_path / "version"
    version.write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)\n"
        "GCC version:  gcc version 14.3.0 (GCC)\n"
    )
    assert gpu_driver(str(version)) == "580.159.04"
    monkeypatch.setenv("PATH", str(tmp_path))  # no module file and no nvidia-smi: unknown
    assert gpu_driver(str(tmp_path / "absent")) == ""
