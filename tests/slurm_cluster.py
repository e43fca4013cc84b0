"""A one-node Slurm on this machine for the tests (``tests/test_slurm.py``): munged, slurmctld and slurmd
started from a temporary folder that holds every file they write (slurm.conf, munge key and socket, state,
spool, logs, pid files), on free ports, so that nothing of a system Slurm is read or touched.

    with SlurmCluster(tmp) as cluster:     # sinfo shows the node idle
        cluster.env                        # SLURM_CONF for sbatch / squeue / scontrol / scancel
    # every daemon stopped (its whole process tree, jobs included), the folder removed

``why_not()`` says why no cluster can be started here (not root, a package missing), else None.
No accounting database: ``sacct`` answers "accounting storage is disabled" (workbench.experiments.executor then reads
job states with squeue).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel")
PACKAGES = "slurmctld slurmd slurm-client munge"
CPUS = 2                                          # the node's CPUs (each test run asks for 1)


def _which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name)
                                       if p.is_file() and os.access(p, os.X_OK)), None)


def why_not() -> str | None:
    """Why a cluster cannot be started on this machine, or None when it can."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "a Slurm cluster needs Linux"
    if os.geteuid() != 0:
        return "starting slurmctld / slurmd needs root (SlurmUser=root); run the tests as root"
    missing = [n for n in DAEMONS + CLIENTS if _which(n) is None]
    if missing:
        return (f"Slurm is not installed ({', '.join(missing)} missing): apt-get install {PACKAGES} "
                "(tools/bootstrap.sh does this when run as root)")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _real_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(int(line.split()[1]) / 1024 * 0.8)   # below the machine's, or slurmd drains the node
    return 1024


class SlurmError(RuntimeError):
    pass


class SlurmCluster:
    """munged + slurmctld + slurmd for one node ``localhost`` (``CPUS`` CPUs) in partition ``debug``."""

    def __init__(self, root: str | Path | None = None, start_timeout_s: float = 120.0):
        self.root = Path(tempfile.mkdtemp(prefix="slurm-", dir=root))
        self.start_timeout_s = start_timeout_s
        self.procs: dict[str, subprocess.Popen] = {}
        self.left_behind: list[str] = []               # processes ``stop`` could not end (should be none)
        self.conf = self.root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        for k in [k for k in self.env if k.startswith(("SLURM_", "SBATCH_", "SRUN_", "SQUEUE_"))]:
            if k != "SLURM_CONF":
                del self.env[k]

    # --- files ---------------------------------------------------------------------------------
    def write_config(self) -> None:
        r = self.root
        for d in ("state", "spool", "log", "munge"):
            (r / d).mkdir(mode=0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        host = socket.gethostname().split(".")[0]
        self.ctld_port, self.slurmd_port = _free_port(), _free_port()
        self.conf.write_text("\n".join([
            "ClusterName=scltest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            # our munged; a requeued job may start again after cred_expire seconds (default 120)
            f"AuthInfo=socket={r / 'munge' / 'munge.socket'},cred_expire=5",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU_Memory",
            "SchedulerType=sched/builtin",
            "SchedulerParameters=sched_interval=1",       # a requeued job starts when eligible, not up to 60 s later
            "SlurmdParameters=config_overrides",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "ReturnToService=2",
            "KillWait=3",
            "JobFileAppend=1",                            # a requeued job's log keeps its earlier attempts
            "MinJobAge=600",
            "InactiveLimit=0",
            "MailProg=/bin/true",
            f"PlugStackConfig={r / 'plugstack.conf'}",
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={_real_memory_mb()} State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        (r / "plugstack.conf").write_text("")

    # --- processes -----------------------------------------------------------------------------
    def _start(self, name: str, argv: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def _wait_for(self, what: str, ok, timeout_s: float | None = None) -> None:
        t0 = time.monotonic()
        while not ok():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead:
                raise SlurmError(f"{', '.join(dead)} exited while waiting for {what}:\n{self.logs()}")
            if time.monotonic() - t0 > (timeout_s or self.start_timeout_s):
                raise SlurmError(f"timed out waiting for {what}:\n{self.logs()}")
            time.sleep(0.2)

    def start(self) -> "SlurmCluster":
        reason = why_not()
        if reason:
            raise SlurmError(reason)
        self.write_config()
        r = self.root / "munge"
        self._start("munged", [_which("munged"), "--foreground", "--force", f"--socket={r / 'munge.socket'}",
                               f"--key-file={r / 'munge.key'}", f"--pid-file={r / 'munged.pid'}",
                               f"--log-file={r / 'munged.log'}", f"--seed-file={r / 'munged.seed'}"])
        self._wait_for("munged's socket", (r / "munge.socket").exists)
        self._start("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait_for("slurmctld", lambda: self.run("sinfo", "-h", check=False).returncode == 0)
        self._start("slurmd", [_which("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf)])
        self._wait_for("the node to be idle", lambda: self.node_state().startswith("idle"))
        return self

    def node_state(self) -> str:
        p = self.run("sinfo", "-h", "-N", "-n", "localhost", "-o", "%T", check=False)
        return p.stdout.strip() if p.returncode == 0 else ""

    def run(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        p = subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise SlurmError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
        return p

    def logs(self, lines: int = 15) -> str:
        out = []
        for f in sorted((self.root / "log").glob("*")) + [self.root / "munge" / "munged.log"]:
            if f.is_file():
                tail = f.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {f.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        """Cancel every job, stop the daemons (their process trees: slurmstepd and job processes too)
        and remove the folder."""
        try:
            if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
                self.run("scancel", "--full", "-u", "root", check=False, timeout=20)
        except (subprocess.TimeoutExpired, OSError):
            pass
        for name in reversed(DAEMONS):
            p = self.procs.get(name)
            if p is None:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        t0 = time.monotonic()
        while True:                                     # slurmstepd and job processes (not the daemons' children)
            left = self.leftovers()
            if not left or time.monotonic() - t0 > 15:
                break
            for proc in left:
                try:
                    proc.kill()
                except Exception:                       # noqa: BLE001 - gone meanwhile
                    pass
            time.sleep(0.2)
        self.left_behind = [f"{p.pid} {' '.join(p.cmdline())}" for p in left if p.is_running()]
        self.procs.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def leftovers(self) -> list:
        """Processes of this cluster still alive: those with its SLURM_CONF in their environment (jobs),
        its folder on their command line or a file of it open (slurmstepd, which empties its environment
        but keeps slurmd's log open); never this process."""
        import psutil

        root = str(self.root)
        found = []
        for p in psutil.process_iter(["pid", "cmdline"]):
            if p.pid == os.getpid():
                continue
            try:
                mine = root in " ".join(p.info["cmdline"] or []) or p.environ().get("SLURM_CONF") == str(self.conf)
                if not mine:
                    fds = Path(f"/proc/{p.pid}/fd")
                    mine = any(os.readlink(fd).startswith(root) for fd in fds.iterdir())
            except (psutil.Error, OSError):
                continue
            if mine:
                found.append(p)
        return found

    def __enter__(self) -> "SlurmCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
