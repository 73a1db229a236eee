"""Host agent: reports this Mininet host's load to the controller via heartbeats.

    python -m runtime.host_agent --name e1 --role edge --ip 10.0.0.3

Every ``--interval`` seconds it broadcasts a heartbeat datagram (protocol.heartbeat)
on the host's subnet; the access switch hands it to the controller as a packet-in.
Load comes from the host's own cgroup (Mininet's CPULimitedHost): its CPU quota
(cores), the fraction of that quota used since the last report, and the number of
runnable processes in it (its run queue). A worker may supply its task-queue length
instead through ``queue_len_fn``.
"""

import argparse
import ipaddress
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

from protocol.heartbeat import HEARTBEAT_PORT, INTERVAL_S, Heartbeat, encode

LOG = logging.getLogger("sdncep.host_agent")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def own_cgroup(controller, roots=(CGROUP_ROOT,), proc_cgroup="/proc/self/cgroup"):
    """Path of this process's cgroup v1 directory for ``controller`` (e.g. 'cpuacct').

    Mininet hosts mount their own /sys (for their own /sys/class/net), which hides
    the cgroup hierarchy; the topology passes a root that reaches the machine's
    mounts from inside (``/proc/<its pid>/root/sys/fs/cgroup``).
    """
    for line in Path(proc_cgroup).read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller not in controllers.split(","):
            continue
        for root in roots:
            for mount in (Path(root) / controllers, Path(root) / controller):
                try:
                    if (mount / path.lstrip("/")).is_dir():
                        return mount / path.lstrip("/")
                except OSError:
                    continue
    return None


def _read_int(path, default=None):
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return default


class CgroupLoad:
    """CPU share, busy fraction and run-queue length of one cgroup."""

    def __init__(self, cpu_dir, cpuacct_dir, clock=time.monotonic, share=None):
        self.cpu_dir, self.cpuacct_dir, self.clock, self.share = cpu_dir, cpuacct_dir, clock, share
        self._last = (self.clock(), self._usage_ns())

    @classmethod
    def of_this_process(cls, roots=(CGROUP_ROOT,), share=None):
        return cls(own_cgroup("cpu", roots), own_cgroup("cpuacct", roots), share=share)

    def cpu_share(self):
        if self.share is not None:
            return self.share
        quota = _read_int(self.cpu_dir / "cpu.cfs_quota_us", -1) if self.cpu_dir else -1
        period = _read_int(self.cpu_dir / "cpu.cfs_period_us", 100000) if self.cpu_dir else 100000
        return quota / period if quota > 0 else float(os.cpu_count())

    def _usage_ns(self):
        return _read_int(self.cpuacct_dir / "cpuacct.usage", 0) if self.cpuacct_dir else 0

    def busy(self):
        """Fraction of the CPU share used since the previous call."""
        now, usage = self.clock(), self._usage_ns()
        then, before = self._last
        self._last = (now, usage)
        if now <= then:
            return 0.0
        return max(usage - before, 0) / 1e9 / (now - then) / self.cpu_share()

    def runnable(self):
        """Processes of the cgroup in state R, excluding this agent."""
        procs = self.cpu_dir / "cgroup.procs" if self.cpu_dir else None
        count = 0
        try:
            pids = procs.read_text().split() if procs else []
        except OSError:
            return 0
        for pid in pids:
            if int(pid) == os.getpid():
                continue
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[-1].split()[0] == "R":
                count += 1
        return count


def mem_available_bytes():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


class HostAgent:
    def __init__(self, name, role, ip, prefixlen=8, interval=INTERVAL_S, load=None, queue_len_fn=None, pacing_fn=None):
        """``load`` defaults to this process's own cgroup; see CgroupLoad. ``pacing_fn``
        gives a paced worker's fidelity counters (protocol.heartbeat.PACING_FIELDS)."""
        self.name, self.role, self.ip, self.interval = name, role, ip, interval
        self.pacing_fn = pacing_fn
        self.broadcast = str(ipaddress.ip_interface(f"{ip}/{prefixlen}").network.broadcast_address)
        self.load = load or CgroupLoad.of_this_process()
        self.queue_len_fn = queue_len_fn or self.load.runnable
        self.seq = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.sock.bind((ip, 0))

    def report(self):
        return Heartbeat(name=self.name, role=self.role, ip=self.ip, seq=self.seq,
                         cpu_share=round(self.load.cpu_share(), 4),
                         busy=round(min(self.load.busy(), 1.0), 4),
                         queue_len=self.queue_len_fn(), mem_free_bytes=mem_available_bytes(),
                         pacing=self.pacing_fn() if self.pacing_fn else None)

    def send_once(self):
        self.seq += 1
        self.sock.sendto(encode(self.report()), (self.broadcast, HEARTBEAT_PORT))

    def run(self, stop_after=None):
        started = time.monotonic()
        while stop_after is None or time.monotonic() - started < stop_after:
            try:
                self.send_once()
            except OSError as exc:  # interface not up yet, or going away
                LOG.warning("heartbeat not sent: %s", exc)
            time.sleep(self.interval)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Send this host's load to the SDN-CEP controller.")
    parser.add_argument("--name", required=True)
    parser.add_argument("--role", required=True, choices=("device", "edge", "cloud"))
    parser.add_argument("--ip", required=True)
    parser.add_argument("--prefixlen", type=int, default=8)
    parser.add_argument("--interval", type=float, default=INTERVAL_S)
    parser.add_argument("--cgroup-root", action="append", default=[],
                        help="where the cgroup v1 hierarchy is mounted (tried in order, then /sys/fs/cgroup)")
    parser.add_argument("--cpu-share", type=float,
                        help="report this CPU share (cores; a paced node's emulated speed) instead of the quota")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    load = CgroupLoad.of_this_process(tuple(args.cgroup_root) + (CGROUP_ROOT,), args.cpu_share)
    if load.cpu_dir is None and args.cpu_share is None:
        LOG.warning("own cgroup not found; reporting the whole machine's cores as CPU share")
    HostAgent(args.name, args.role, args.ip, args.prefixlen, args.interval, load=load).run()


if __name__ == "__main__":
    main()
