"""Mininet node and link classes for the testbed.

- ``ShapedIntf``/``ShapedLink``: htb bandwidth shaping like TCLink, with an explicit
  quantum (no "quantum is big" noise), TX offload off on both ends (TCP between
  hosts stalls on the userspace datapath otherwise), jumbo frames (``MTU``), and a
  clear refusal of delay/loss, which need the netem qdisc this kernel lacks.
- ``EdgeCloudHost``: a CPULimitedHost whose CPU limit is given in cores and which
  runs the heartbeat agent (runtime.host_agent) inside its own cgroup. A paced
  host (topologies.spec: ``compute: paced``) has no CPU quota: its worker runs the
  real layers at full speed and holds each result for the emulated node's time.
"""

import os
import socket
import sys
from pathlib import Path

from mininet.link import TCIntf, TCLink
from mininet.log import error
from mininet.node import CPULimitedHost, RemoteController
from mininet.util import numCores, quietRun

from protocol.heartbeat import INTERVAL_S
from topologies.schedule import HTB_OPTIONS, htb_change_commands

REPO_ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = Path(os.environ.get("SDNCEP_RUN_DIR", REPO_ROOT / "run")) / "logs"
# cgroup cpu.shares of a host with hosts_first. Every other cgroup has the default
# 1024, and so (under autogroup scheduling) has every session, ovs-vswitchd's too.
FIRST_CPU_SHARES = 65536
# cgroup cpu.shares of a paced host per core it keeps busy at full load: on the
# workers' own cores, CFS then gives each node a share of the CPU in proportion to
# its need, so that (in the fluid limit) each keeps up while together they need at
# most those cores.
PACED_SHARES_PER_CORE = 10240


def pin_process(pid, cpus):
    """Keep every thread of process ``pid`` on the machine's cores ``cpus``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), set(cpus))
        except (ProcessLookupError, FileNotFoundError):
            continue  # a thread that just ended


# Every link carries jumbo frames. ovs-vswitchd's userspace datapath forwards the
# packets of every port in one thread, at a cost per packet and per switch hop:
# with 1500-byte frames two 100 Mbit/s transfers crossing four switches at once got
# 60 and 75 Mbit/s, with 9000-byte frames 96 and 98 (iperf3, docs/testbed.md).
MTU = 9000


class NetemUnavailable(RuntimeError):
    pass


class ShapedIntf(TCIntf):
    def config(self, bw=None, delay=None, jitter=None, loss=None, **params):
        if delay or jitter or loss:
            raise NetemUnavailable(
                f"{self.name}: link delay/jitter/loss need the tc 'netem' qdisc, which this kernel "
                "does not have; remove them (bandwidth shaping with bw= works)")
        params["txo"] = False
        result = super().config(bw=bw, **params)
        output = self.cmd(f"ip link set {self.name} mtu {MTU}")
        if output.strip():
            raise RuntimeError(f"{self.name}: cannot set MTU {MTU}: {output.strip()}")
        return result

    def bwCmds(self, bw=None, **_params):
        if bw is None:
            return [], " root "
        if not 0 < bw <= self.bwParamMax:
            error(f"bandwidth {bw} Mbit/s outside 0..{self.bwParamMax}; not shaping {self.name}\n")
            return [], " root "
        return (["%s qdisc add dev %s root handle 5:0 htb default 1",
                 "%s class add dev %s parent 5:0 classid 5:1 htb "
                 + f"rate {bw}Mbit {HTB_OPTIONS}"], " parent 5:1 ")

    def share_per_source(self, source_ips):
        """Share the shaped rate fairly between traffic from each of ``source_ips``.

        Under the htb class that holds the link's rate, each source gets a leaf class
        (u32 on the IPv4 source) and the rest one more; every leaf borrows all it can
        from that class and, with equal quanta, they split it round-robin, bytes for
        bytes. A fair-queueing qdisc (fq_codel, sfq) would do it per flow, but this
        kernel has none. Re-rating the link later needs no change here: the leaves'
        ceilings are above any link rate.
        """
        leaf = f"htb rate 8kbit ceil 1000Mbit {HTB_OPTIONS}"
        commands = [f"tc class add dev {self.name} parent 5:1 classid 5:9 {leaf}"]
        for index, ip in enumerate(source_ips):
            commands += [f"tc class add dev {self.name} parent 5:1 classid 5:{10 + index:x} {leaf}",
                         f"tc filter add dev {self.name} parent 5:0 protocol ip prio 1 u32 "
                         f"match ip src {ip}/32 flowid 5:{10 + index:x}"]
        commands.append(f"tc filter add dev {self.name} parent 5:0 protocol all prio 2 u32 match u32 0 0 flowid 5:9")
        for command in commands:
            output = self.cmd(command)
            if output.strip():
                raise RuntimeError(f"{command!r} failed: {output.strip()}")

    def set_rate(self, mbit):
        """Change the shaped rate live (the link must have been built with a bw)."""
        for command in htb_change_commands(self.name, mbit):
            output = self.cmd(command)
            if output.strip():
                raise RuntimeError(f"{command!r} failed: {output.strip()}")


class ShapedLink(TCLink):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("cls1", ShapedIntf)
        kwargs.setdefault("cls2", ShapedIntf)
        super().__init__(*args, **kwargs)


class EdgeCloudHost(CPULimitedHost):
    """A host limited to ``cores_limit`` CPU cores that reports its load by heartbeat.

    With ``worker_port``, an edge or cloud host runs a split-inference worker
    (runtime.worker) that sends the heartbeats itself, with its task queue length.
    """

    def __init__(self, name, **params):
        super().__init__(name, **params)
        self.service = None

    def config(self, cores_limit=None, role="device", heartbeat=True, worker_port=None,
               worker_models="all", first=False, pace=None, pace_jitter=False, cpus=None, shares=None,
               **params):
        """``pace``: emulate this many cores by pacing (no CPU quota), else ``cores_limit``
        as a CFS quota. ``cpus``: the machine's cores it may run on; ``shares``: its
        cgroup's CPU weight (topologies.spec: cpu_split)."""
        self.pace, self.pace_jitter = pace, pace_jitter
        if cores_limit is not None and pace is None:
            params["cpu"] = min(cores_limit / numCores(), 1.0)
        result = super().config(**params)
        self.tune_tcp()
        if first:  # its quota ahead of the switches' CPU (topologies.spec: hosts_first)
            self.cgroupSet("shares", FIRST_CPU_SHARES)
        if shares is not None:
            self.cgroupSet("shares", shares)
        if cpus:
            self.pin(cpus)
        self.role = role
        self.worker_port = worker_port if role in ("edge", "cloud") else None
        if self.worker_port:
            self.start_service(self.worker_command(worker_models))
        elif heartbeat:
            self.start_service(self._agent_command())
        return result

    def tune_tcp(self):
        """Pooled connections keep their congestion window across idle gaps, as RPC
        servers are commonly tuned: otherwise each tensor sent after 200 ms of quiet
        restarts slow start (the access links then delivered 86-87% of their rate
        while busy, 93-98% with this). Larger initial windows (initcwnd, initrwnd)
        made no difference measured here and are left at their defaults."""
        self.cmd("sysctl -qw net.ipv4.tcp_slow_start_after_idle=0")

    def pin(self, cpus):
        """Run this host (its cgroup) on the machine's cores ``cpus`` only."""
        cpuset = ",".join(str(c) for c in cpus)
        for command in (f"cgset -r cpuset.cpus={cpuset} /{self.name}", f"cgset -r cpuset.mems=0 /{self.name}",
                        f"cgclassify -g cpuset:/{self.name} {self.pid}"):
            output = quietRun(command)
            if output.strip():
                raise RuntimeError(f"{command!r} failed: {output.strip()}")

    def _cgroup_root(self):
        return f"/proc/{os.getpid()}/root/sys/fs/cgroup"

    def _agent_command(self, interval=INTERVAL_S):
        command = [sys.executable, "-m", "runtime.host_agent", "--name", self.name, "--role", self.role,
                   "--ip", self.IP(), "--prefixlen", str(self.defaultIntf().prefixLen or 8),
                   "--interval", str(interval), "--cgroup-root", self._cgroup_root()]
        return command + (["--cpu-share", str(self.pace)] if self.pace is not None else [])

    def worker_command(self, models):
        """A split-inference worker that also sends this host's heartbeats."""
        command = [sys.executable, "-m", "runtime.worker", "--listen", f"0.0.0.0:{self.worker_port}",
                   "--name", self.name, "--models", models, "--preload", "--heartbeat-role", self.role,
                   "--heartbeat-ip", self.IP(), "--heartbeat-prefixlen", str(self.defaultIntf().prefixLen or 8),
                   "--cgroup-root", self._cgroup_root()]
        if self.pace is not None:
            command += ["--pace", str(self.pace)] + (["--pace-jitter"] if self.pace_jitter else [])
        return command

    def start_service(self, command):
        """Run ``command`` in this host (its netns and cgroup), logging to the run dir."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"{self.name}.log", "ab")
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        self.service = self.popen(command, stdout=log, stderr=log, cwd=str(REPO_ROOT), env=env)
        log.close()

    def terminate(self):
        if self.service is not None and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(timeout=3)
            except Exception:  # noqa: BLE001 - any failure: make sure it is gone
                self.service.kill()
        super().terminate()


class SocketRemoteController(RemoteController):
    """RemoteController that checks the port with a socket, not telnet.

    Mininet's check pipes the controller's binary OpenFlow HELLO through telnet and
    decodes it as UTF-8, which fails at random depending on the HELLO's xid.
    """

    def isListening(self, ip, port):
        try:
            with socket.create_connection((ip, port), timeout=2):
                return True
        except OSError:
            return False
