"""A throwaway one-node Slurm cluster for tests: slurmctld + slurmd as root with a slurm.conf
of its own in a temporary directory (SLURM_CONF; nothing under /etc is read or edited),
auth/none + cred/none (no munged), free ports on 127.0.0.1, stopped and deleted afterwards.

The node declares more CPUs than the machine has (config_overrides), so a 2-task array of
1-CPU tasks runs at once even on a 2-core box, and NODE_GPUS GPUs that are character devices
standing in for /dev/nvidiaK (the major and minor of /dev/null, named in a gres.conf beside
slurm.conf): `--gpus-per-task` then gives each task its own CUDA_VISIBLE_DEVICES, as on a
GPU node. batch_sched_delay=0 starts a job in well under
a second. The daemons keep inherited file descriptors open, so they start with stdin/stdout
detached; otherwise a captured subprocess.run of whoever started them would never return.
Without the binaries, or not as root, the caller skips locally and fails in CI (`.ci/run`
installs slurmctld, slurmd and slurm-client).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.postgres import free_port

NODE = "avbench-node"
NODE_CPUS = 4
NODE_GPUS = 2
START_TIMEOUT_S = 30


class SlurmUnavailable(Exception):
    """No Slurm binaries, not root, or the daemons would not start."""


@dataclass(frozen=True)
class SlurmCluster:
    conf: Path  # what SLURM_CONF must name for sbatch, squeue and scancel to reach this cluster
    base: Path

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, env={**os.environ, **self.env})


def slurm_conf(base: Path, *, controller_port: int, node_port: int) -> str:
    # slurmctld starts only on the host the config names as its controller: this one.
    return f"""\
ClusterName=avbench-test
SlurmctldHost={socket.gethostname().split(".")[0]}(127.0.0.1)
MailProg=/bin/true
SlurmctldPort={controller_port}
SlurmdPort={node_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
GresTypes=gpu
SchedulerParameters=batch_sched_delay=0
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=5
InactiveLimit=0
MinJobAge=30
NodeName={NODE} NodeAddr=127.0.0.1 CPUs={NODE_CPUS} Gres=gpu:{NODE_GPUS} State=UNKNOWN
PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


def fake_gpus(base: Path) -> str:
    """gres.conf naming NODE_GPUS character devices made here (Slurm only checks that they are)."""
    devices = base / "dev"
    devices.mkdir()
    for index in range(NODE_GPUS):
        os.mknod(devices / f"nvidia{index}", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return f"NodeName={NODE} Name=gpu File={devices}/nvidia[0-{NODE_GPUS - 1}]\n"


def _start_daemon(argv: list[str], env: dict) -> None:
    """Start a daemon that forks into the background, its output and input detached."""
    done = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30
    )
    if done.returncode:
        raise SlurmUnavailable(f"{argv[0]} exited {done.returncode}")


def _wait_until_idle(cluster: SlurmCluster) -> None:
    deadline = time.time() + START_TIMEOUT_S
    state = ""
    while time.time() < deadline:
        info = cluster.run("sinfo", "-h", "-N", "-o", "%T")
        state = info.stdout.strip()
        if info.returncode == 0 and state.startswith("idle"):
            return
        time.sleep(0.2)
    log = (cluster.base / "slurmctld.log").read_text(errors="replace")[-800:] if cluster.base.exists() else ""
    raise SlurmUnavailable(f"the node never became idle (state '{state}'): {log}")


def _stop(base: Path) -> None:
    for name in ("slurmd", "slurmctld"):
        pid_file = base / f"{name}.pid"
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            continue
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)


@contextmanager
def slurm_cluster() -> Iterator[SlurmCluster]:
    """Yields a running one-node cluster; jobs run as root on this machine."""
    daemons = [
        shutil.which(name, path="/usr/sbin:/usr/bin:" + os.environ.get("PATH", "")) for name in ("slurmctld", "slurmd")
    ]
    if not all(daemons) or not shutil.which("sbatch"):
        raise SlurmUnavailable("no Slurm binaries; apt-get install slurmctld slurmd slurm-client")
    if os.geteuid() != 0:
        raise SlurmUnavailable("slurmd must run as root")
    base = Path(tempfile.mkdtemp(prefix="avbench-slurm-"))
    for folder in ("state", "spool"):
        (base / folder).mkdir()
    conf = base / "slurm.conf"
    conf.write_text(slurm_conf(base, controller_port=free_port(), node_port=free_port()))
    (base / "gres.conf").write_text(fake_gpus(base))  # read from beside slurm.conf
    cluster = SlurmCluster(conf=conf, base=base)
    env = {**os.environ, **cluster.env}
    try:
        _start_daemon([daemons[0], "-i"], env)  # -i: ignore state left by an earlier cluster
        _start_daemon([daemons[1], "-N", NODE], env)
        _wait_until_idle(cluster)
        yield cluster
    finally:
        _stop(base)
        shutil.rmtree(base, ignore_errors=True)
