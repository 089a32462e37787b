"""A real single-node SLURM cluster on 127.0.0.1 for tests (munged + slurmctld + slurmd).

Everything (configuration, munge key and socket, state, spool, logs, pid files) lives under one
working directory; nothing is written below /etc.  Client commands find the cluster through
``SLURM_CONF``; the MUNGE socket is named in slurm.conf (``AuthInfo=socket=...``), so clients need
no other setting.

Usage::

    if (reason := unavailable_reason()) is not None:
        pytest.skip(reason)
    with slurm_cluster(tmp_path / "slurm") as cluster:
        subprocess.run(["sbatch", "--wrap", "hostname"], env=cluster.env, check=True)

The snakemake-executor-plugin-slurm-jobstep drops every ``SLURM_*`` variable except a few job ids
before it calls ``srun`` inside a job, ``SLURM_CONF`` included.  So that the nested ``srun`` still
finds this cluster, ``cluster.bin`` holds small wrappers of the SLURM client commands that set
``SLURM_CONF`` themselves; ``cluster.env["PATH"]`` starts with that folder and jobs inherit it
(sbatch's default ``--export=ALL``).

Needs root (slurmd runs jobs as their submitter and munged wants its files root-owned); when the
binaries are missing and apt-get is there, :func:`unavailable_reason` installs them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

PACKAGES = ["slurm-wlm", "munge"]
DAEMONS = ["munged", "slurmctld", "slurmd"]
CLIENTS = ["sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel", "sacct"]
PARTITION = "debug"
# Marks the daemons (and the slurmstepd processes they fork) of one cluster, so that stop() can
# find stragglers without touching anybody else's processes.
MARKER = "LENNA_SLURM_TEST_CLUSTER"


class SlurmClusterError(RuntimeError):
    pass


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin:/bin")


def _missing() -> list[str]:
    return [name for name in DAEMONS + CLIENTS + ["munge"] if _which(name) is None]


def _apt_install() -> str | None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    proc = subprocess.run(install, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        update = subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=env)
        if update.returncode != 0:
            return f"apt-get update failed: {update.stderr.strip()[-500:]}"
        proc = subprocess.run(install, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            return f"apt-get install {' '.join(PACKAGES)} failed: {proc.stderr.strip()[-500:]}"
    return None


@functools.cache
def unavailable_reason() -> str | None:
    """None when a cluster can be started here, else why not (installs missing packages if root)."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "a SLURM test cluster needs Linux"
    if os.geteuid() != 0:
        return "a SLURM test cluster needs root (slurmd, munged)"
    if _missing():
        if shutil.which("apt-get") is None:
            return f"SLURM/MUNGE binaries missing ({', '.join(_missing())}) and no apt-get to install them"
        error = _apt_install()
        if error is not None:
            return error
        if missing := _missing():
            return f"still missing after apt-get install: {', '.join(missing)}"
    return None


def _free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    return ports


def _node_hardware() -> dict[str, int]:
    """CPU layout and memory (MB) as slurmd sees them; os.cpu_count() and /proc/meminfo as fallback."""
    hw: dict[str, int] = {}
    try:
        out = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True, text=True).stdout
        for key, value in re.findall(r"(\w+)=(\d+)", out.splitlines()[0] if out else ""):
            hw[key] = int(value)
    except OSError:
        pass
    if "CPUs" not in hw:
        hw = {"CPUs": os.cpu_count() or 1}
    if "RealMemory" not in hw:
        meminfo = Path("/proc/meminfo").read_text()
        hw["RealMemory"] = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) // 1024
    return hw


@dataclasses.dataclass
class SlurmCluster:
    workdir: Path
    conf: Path  # slurm.conf
    bin: Path  # wrappers of the client commands that pin SLURM_CONF
    munge_socket: Path
    logs: Path
    node: str
    partition: str
    cpus: int
    memory_mb: int
    env: dict[str, str]  # the environment for client commands (and for snakemake --executor slurm)
    procs: dict[str, subprocess.Popen] = dataclasses.field(default_factory=dict)

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a client command (``cluster.run("squeue", "-h")``) against this cluster."""
        return subprocess.run(
            args, env=self.env, capture_output=True, text=True, check=check, timeout=timeout
        )

    def snakemake_args(self) -> list[str]:
        """Flags for ``snakemake`` to run jobs here (resources such as mem_mb/runtime are up to the caller).

        squeue as status command (no slurmdbd; MinJobAge=3600 keeps finished jobs visible: the SLURM
        test reads them minutes after its background run ended) and the
        first status check after 1 s instead of 40 s.
        """
        return [
            "--executor", "slurm",
            "--slurm-status-command", "squeue",
            "--slurm-init-seconds-before-status-checks", "1",
        ]  # fmt: skip

    def log_tail(self, daemon: str, lines: int = 40) -> str:
        """The end of a daemon's log file and of its stderr (munged in the foreground logs only there)."""
        parts = []
        for path in (self.logs / f"{daemon}.log", self.logs / f"{daemon}.stderr"):
            if path.exists() and path.stat().st_size:
                text = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                parts.append(f"--- {path}\n{text}")
        return "\n".join(parts) or f"(no log of {daemon} in {self.logs})"

    def check_alive(self) -> None:
        """Raise SlurmClusterError, with the end of its log, if one of the daemons has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SlurmClusterError(
                    f"{name} exited with status {proc.returncode}:\n{self.log_tail(name)}"
                )

    def node_state(self) -> str:
        proc = self.run("sinfo", "--noheader", "--Node", "--format=%N %T", check=False, timeout=10)
        for line in proc.stdout.splitlines():
            name, _, state = line.partition(" ")
            if name == self.node:
                return state.strip()
        return f"unknown (sinfo: {proc.stdout.strip()!r} {proc.stderr.strip()!r})"

    def wait_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            self.check_alive()
            state = self.node_state()
            if state == "idle":
                return
            time.sleep(0.5)
        raise SlurmClusterError(
            f"node {self.node} not idle after {timeout:.0f} s (state {state});\n"
            f"slurmctld:\n{self.log_tail('slurmctld')}\nslurmd:\n{self.log_tail('slurmd')}"
        )


def _write_config(workdir: Path, cpus: int | None) -> SlurmCluster:
    workdir = workdir.resolve()
    dirs = {name: workdir / name for name in ["etc", "munge", "state", "spool", "log", "run", "bin"]}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)  # munged refuses group/world-writable directories
    workdir.chmod(0o755)

    key = dirs["munge"] / "munge.key"
    if not key.exists():
        key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)

    hw = _node_hardware()
    memory = max(256, min(int(hw["RealMemory"] * 0.9), hw["RealMemory"] - 512))
    layout = ""
    overrides = ""
    if cpus is not None and cpus != hw["CPUs"]:
        # More (or fewer) CPUs than the machine has: slurmd must report the configured ones.
        layout = f" Sockets=1 CoresPerSocket={cpus} ThreadsPerCore=1"
        overrides = "SlurmdParameters=config_overrides\n"
    elif all(k in hw for k in ("SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")):
        cpus = hw["CPUs"]
        if hw["SocketsPerBoard"] * hw["CoresPerSocket"] * hw["ThreadsPerCore"] == cpus:
            layout = (
                f" Sockets={hw['SocketsPerBoard']} CoresPerSocket={hw['CoresPerSocket']}"
                f" ThreadsPerCore={hw['ThreadsPerCore']}"
            )
    else:
        cpus = hw["CPUs"]
    ctld_port, slurmd_port = _free_ports(2)
    host = socket.gethostname().split(".")[0]
    node = "localhost"
    munge_socket = dirs["munge"] / "munge.socket"
    conf = dirs["etc"] / "slurm.conf"
    (dirs["etc"] / "plugstack.conf").write_text("")
    conf.write_text(
        f"""\
ClusterName=lennatest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={dirs["state"]}
SlurmdSpoolDir={dirs["spool"]}
SlurmctldPidFile={dirs["run"]}/slurmctld.pid
SlurmdPidFile={dirs["run"]}/slurmd.pid
SlurmctldLogFile={dirs["log"]}/slurmctld.log
SlurmdLogFile={dirs["log"]}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={dirs["etc"]}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1,bf_interval=1,sched_min_interval=0
MpiDefault=none
MailProg=/bin/true
{overrides}ReturnToService=2
MinJobAge=3600
MaxJobCount=100000
InactiveLimit=0
KillWait=2
UnkillableStepTimeout=30
Waittime=0
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=30
TCPTimeout=5
NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus}{layout} RealMemory={memory} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""
    )
    for name in CLIENTS:
        real = _which(name)
        if real is None:
            continue
        wrapper = dirs["bin"] / name
        wrapper.write_text(f'#!/bin/sh\nSLURM_CONF={conf}\nexport SLURM_CONF\nexec {real} "$@"\n')
        wrapper.chmod(0o755)

    env = dict(os.environ)
    for var in list(env):  # a surrounding allocation's settings must not leak into our commands
        if var.startswith(("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")):
            del env[var]
    env["SLURM_CONF"] = str(conf)
    env["PATH"] = f"{dirs['bin']}:{env.get('PATH', '/usr/bin:/bin')}"
    return SlurmCluster(
        workdir=workdir,
        conf=conf,
        bin=dirs["bin"],
        munge_socket=munge_socket,
        logs=dirs["log"],
        node=node,
        partition=PARTITION,
        cpus=cpus,
        memory_mb=memory,
        env=env,
    )


def _start(cluster: SlurmCluster, name: str, argv: list[str], token: str) -> None:
    env = {k: v for k, v in cluster.env.items() if k != "PATH"}
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    env[MARKER] = token
    log = open(cluster.logs / f"{name}.stderr", "ab")
    try:
        cluster.procs[name] = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    finally:
        log.close()


def _marked_pids(token: str) -> list[int]:
    """Processes carrying this cluster's marker in their environment (daemons and slurmstepds)."""
    needle = f"{MARKER}={token}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def _stop(cluster: SlurmCluster, token: str) -> None:
    ctld = cluster.procs.get("slurmctld")
    if ctld is not None and ctld.poll() is None:
        with contextlib.suppress(Exception):  # cancel jobs so that slurmstepd and the tasks go away
            cluster.run("scancel", "--user", "root", check=False, timeout=10)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                active = cluster.run(
                    "squeue",
                    "--noheader",
                    "--states=RUNNING,COMPLETING,CONFIGURING",
                    "--format=%i",
                    check=False,
                    timeout=10,
                ).stdout.strip()
                if not active:
                    break
                time.sleep(0.5)
    # slurmd before slurmctld before munged: each one still has what it needs while shutting down.
    for name in ["slurmd", "slurmctld", "munged"]:
        proc = cluster.procs.get(name)
        if proc is None or proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    # Whatever still carries the marker (a slurmstepd of a job that would not die) is ours to kill.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _marked_pids(token)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
            time.sleep(0.1)
        if not pids:
            break


@contextlib.contextmanager
def slurm_cluster(workdir: Path, cpus: int | None = None, timeout: float = 60) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd with everything under ``workdir``; stop them on exit.

    The node has the machine's CPUs unless ``cpus`` says otherwise (oversubscription for tests of
    scheduling: slurmd then reports the configured count).  Raises SlurmClusterError, with the end
    of the daemon's log, when a daemon dies or the node does not come up within ``timeout`` s.
    """
    if (reason := unavailable_reason()) is not None:
        raise SlurmClusterError(reason)
    cluster = _write_config(Path(workdir), cpus)
    token = secrets.token_hex(8)
    munge_dir = cluster.munge_socket.parent
    try:
        _start(
            cluster,
            "munged",
            [
                _which("munged"),
                "--foreground",
                f"--socket={cluster.munge_socket}",
                f"--key-file={munge_dir / 'munge.key'}",
                f"--pid-file={munge_dir / 'munged.pid'}",
                f"--log-file={cluster.logs / 'munged.log'}",
                f"--seed-file={munge_dir / 'munged.seed'}",
                "--force",
            ],
            token,
        )
        deadline = time.monotonic() + timeout
        while not cluster.munge_socket.exists():
            cluster.check_alive()
            if time.monotonic() > deadline:
                raise SlurmClusterError(f"munged socket did not appear:\n{cluster.log_tail('munged')}")
            time.sleep(0.1)
        _start(cluster, "slurmctld", [_which("slurmctld"), "-D", "-c", "-f", str(cluster.conf)], token)
        _start(
            cluster, "slurmd", [_which("slurmd"), "-D", "-N", cluster.node, "-f", str(cluster.conf)], token
        )
        cluster.wait_idle(timeout)
        yield cluster
    finally:
        _stop(cluster, token)
