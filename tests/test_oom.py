"""Out of memory: a spec too large for the device is recorded as failed, and the shard completes.

LENNA hit CUDA out-of-memory at large channel counts. CI has no GPU, so the device here is the
CPU of a subprocess whose address space is capped (RLIMIT_AS) a little above what it already
uses: the small specs fit, the huge one cannot allocate its input tensors.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from lenna.datasets import merge_latency
from lenna.io import read_parquet, write_parquet
from lenna.space.specs import sample_specs, sampling_plan
from test_specs import CONFIG

SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import torch
    from lenna.timing.protocol import Target
    from lenna.timing.devices import pin_device
    from lenna.timing.protocol import TimingProtocol
    from lenna.timing.labels import measure_specs
    from lenna.io import read_parquet, write_parquet

    specs = read_parquet(sys.argv[1])
    device = pin_device("cpu", 1)
    torch.ones(1)  # torch is fully loaded before the cap
    vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + 600 * 2**20, resource.RLIM_INFINITY))
    protocol = TimingProtocol(warmup=1, repeats=3, rounds=2, runs_per_reset=2, rel_tol=0.05,
                              patience=2, max_resets=10, reset_warmup=0)
    rows = measure_specs(specs, Target("cpu", 1, 1), "cpu", device, protocol)
    write_parquet(rows, sys.argv[2])
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and RLIMIT_AS")
def test_a_spec_too_large_for_the_device_fails_alone_and_the_dataset_counts_it(tmp_path):
    specs = sample_specs(sampling_plan(CONFIG), seed=5, start=0, stop=4)
    huge = specs.index[2]
    # 2 x 1 x 4096 x 128 x 128 float32 inputs: 512 MiB before any op runs.
    specs.loc[huge, ["c_prev_prev", "c_prev", "c", "height", "width"]] = [4096, 4096, 4096, 128, 128]
    specs.loc[huge, ["reduction", "reduction_prev"]] = False
    spec_path, shard_path = tmp_path / "specs.parquet", tmp_path / "shard-0.parquet"
    write_parquet(specs, spec_path)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(spec_path), str(shard_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_parquet(shard_path)
    assert len(rows) == 4  # the shard completed
    status = dict(zip(rows["spec_id"], rows["status"], strict=True))
    assert status[specs.loc[huge, "spec_id"]] == "failed"
    # The others are labelled (ok, or unstable if this host was too noisy to agree on them).
    assert all(s in ("ok", "unstable") for i, s in status.items() if i != specs.loc[huge, "spec_id"])
    error = rows.loc[rows["status"] == "failed", "error"].iloc[0]
    assert error.startswith("out of memory"), error
    table, summary = merge_latency([str(spec_path)], [str(shard_path)])
    n_unstable = sum(s == "unstable" for s in status.values())
    assert len(table) == 3 - n_unstable and summary["n_failed"] == 1
    assert list(summary["failure_reasons"].values()) == [1]
    assert "out of memory" in json.dumps(summary["failure_reasons"])
