"""A fake timing job: pin the device the way the timing jobs do, hold it, record what was seen."""

import json
import os
import subprocess
import sys
import time

from lenna.timing.devices import device_lock, pin_device

started = time.time()
device_str = snakemake.resources.device
device = pin_device(device_str, 1)
# What a process started by this job (e.g. the CUDA runtime's view) is given.
child = subprocess.run(
    [sys.executable, "-c", "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES', ''))"],
    capture_output=True,
    text=True,
    check=True,
)
with device_lock(device_str):
    locked = time.time()
    time.sleep(snakemake.params.hold_s)
    released = time.time()
record = {
    "device": device_str,
    "torch_device": str(device),
    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "child_cuda_visible_devices": child.stdout.strip(),
    "threads": snakemake.threads,
    "slots": {k: v for k, v in snakemake.resources.items() if k.startswith("dev_")},
    "job": [started, time.time()],
    "lock": [locked, released],
}
with open(snakemake.output[0], "w") as out:
    json.dump(record, out)
with open(snakemake.log[0], "w") as log:
    log.write(f"{device_str}: {record}\n")
