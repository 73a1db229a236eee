"""Start and stop Open vSwitch daemons for the userspace datapath.

This machine has no OVS kernel module, so ``ovs-ctl`` (which modprobes) cannot be
used: ``ovsdb-server`` and ``ovs-vswitchd`` are started by hand, with their pid files
and logs under the project's run directory. Only daemons this module started are
stopped; an OVS that was already running is reused and left alone.

    python -m topologies.ovs start|stop|status [--run-dir DIR]
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_RUN_DIR = Path(os.environ.get("SDNCEP_RUN_DIR", Path(__file__).resolve().parent.parent / "run"))
OVS_SOCKET_DIR = Path("/var/run/openvswitch")
DB_SOCKET = OVS_SOCKET_DIR / "db.sock"
SCHEMA_CANDIDATES = (Path("/usr/share/openvswitch/vswitch.ovsschema"),)
# The switches and the controller would run on hardware of their own; here they
# share two cores with the hosts. A higher priority is meant to keep them from
# waiting behind the hosts' compute (the hosts are held to their CPU quotas either
# way). ovs-vswitchd detaches into a session of its own, though, and with autogroup
# scheduling (on in Debian's kernels) nice only ranks threads within a session:
# against the hosts' cgroups it weighs like one of them. ryu-manager runs at
# real-time priority instead (topologies/testbed.py).
INFRA_NICE = ("nice", "-n", "-10")
REQUIRED_TOOLS = ("ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ovs-vsctl")
# The userspace datapath sends every port's packets through ONE AF_PACKET socket,
# created at start with the default send buffer: with Linux's 208 KiB, only ~95
# full-size frames may sit in all shaped (htb) queues together and the rest are
# dropped (EAGAIN). Bigger defaults, set before ovs-vswitchd starts, give each
# shaped link its own 1000-frame queue as the emulation intends.
SOCKET_BUFFER_DEFAULTS = {"wmem_default": 8 << 20, "rmem_default": 4 << 20}
SYSCTL_DIR = Path("/proc/sys/net/core")


class OvsError(RuntimeError):
    """OVS is missing or could not be started."""


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_int(path):
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _run(cmd, timeout=20):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise OvsError(f"{cmd[0]} did not answer within {timeout}s") from exc


def ovs_responding():
    """True when an ovsdb-server answers on the default socket and a vswitchd is connected."""
    if not DB_SOCKET.exists() or shutil.which("ovs-vsctl") is None:
        return False
    probe = _run(["ovs-vsctl", "--timeout=3", "show"], timeout=5)
    return probe.returncode == 0


class OvsDaemons:
    """ovsdb-server + ovs-vswitchd owned by this project (pid files in ``run_dir/ovs``)."""

    def __init__(self, run_dir=DEFAULT_RUN_DIR):
        self.dir = Path(run_dir) / "ovs"
        self.db = self.dir / "conf.db"
        self.pidfiles = {
            "ovsdb-server": self.dir / "ovsdb-server.pid",
            "ovs-vswitchd": self.dir / "ovs-vswitchd.pid",
        }
        self.started_here = False

    def running_pids(self):
        pids = {}
        for name, pidfile in self.pidfiles.items():
            pid = _read_int(pidfile)
            if pid and _pid_alive(pid):
                pids[name] = pid
        return pids

    def start(self):
        """Start the daemons unless an OVS already answers. Returns True if started here."""
        missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
        if missing:
            raise OvsError(f"Open vSwitch tools missing: {', '.join(missing)}; run `make install` "
                           "(apt package openvswitch-switch)")
        if ovs_responding():
            return False
        schema = next((s for s in SCHEMA_CANDIDATES if s.exists()), None)
        if schema is None:
            raise OvsError("vswitch.ovsschema not found; is openvswitch-switch installed?")
        self.dir.mkdir(parents=True, exist_ok=True)
        OVS_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        self.stop()  # stale daemons of ours from an earlier crash
        self._raise_socket_buffers()
        self.db.unlink(missing_ok=True)
        self._check(_run(["ovsdb-tool", "create", str(self.db), str(schema)]), "ovsdb-tool create")
        self._check(_run([
            "ovsdb-server", str(self.db), f"--remote=punix:{DB_SOCKET}",
            "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
            f"--pidfile={self.pidfiles['ovsdb-server']}", "--detach",
            f"--log-file={self.dir / 'ovsdb-server.log'}"]), "ovsdb-server")
        self._check(_run(["ovs-vsctl", "--no-wait", "init"]), "ovs-vsctl init")
        self._check(_run([
            *INFRA_NICE, "ovs-vswitchd", f"unix:{DB_SOCKET}", f"--pidfile={self.pidfiles['ovs-vswitchd']}",
            "--detach", f"--log-file={self.dir / 'ovs-vswitchd.log'}"], timeout=30), "ovs-vswitchd")
        deadline = time.monotonic() + 15
        while not ovs_responding():
            if time.monotonic() > deadline:
                raise OvsError(f"OVS did not come up; see {self.dir}/*.log")
            time.sleep(0.2)
        self.started_here = True
        return True

    def stop(self, timeout=10):
        """Stop only the daemons recorded in our pid files."""
        for name in ("ovs-vswitchd", "ovsdb-server"):
            pidfile = self.pidfiles[name]
            pid = _read_int(pidfile)
            if pid and _pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout
                while _pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            pidfile.unlink(missing_ok=True)
        self._restore_socket_buffers()
        self.started_here = False

    def _raise_socket_buffers(self):
        saved = {}
        for name, wanted in SOCKET_BUFFER_DEFAULTS.items():
            current = _read_int(SYSCTL_DIR / name)
            if current is not None and current < wanted:
                (SYSCTL_DIR / name).write_text(str(wanted))
                saved[name] = current
        if saved:
            (self.dir / "sysctl.saved").write_text(
                "".join(f"{name} {value}\n" for name, value in saved.items()))

    def _restore_socket_buffers(self):
        saved_file = self.dir / "sysctl.saved"
        if not saved_file.exists():
            return
        for line in saved_file.read_text().splitlines():
            name, value = line.split()
            if name in SOCKET_BUFFER_DEFAULTS:
                (SYSCTL_DIR / name).write_text(value)
        saved_file.unlink()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        if self.started_here:
            self.stop()

    @staticmethod
    def _check(result, what):
        if result.returncode != 0:
            raise OvsError(f"{what} failed: {result.stderr.strip() or result.stdout.strip()}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument("--run-dir", default=DEFAULT_RUN_DIR, type=Path)
    args = parser.parse_args(argv)
    daemons = OvsDaemons(args.run_dir)
    try:
        if args.action == "start":
            started = daemons.start()
            print("started OVS (userspace datapath)" if started else "OVS already running; reusing it")
        elif args.action == "stop":
            daemons.stop()
            print("stopped the OVS daemons started by this project")
        else:
            pids = daemons.running_pids()
            state = "responding" if ovs_responding() else "not responding"
            print(f"OVS {state}; ours: {pids or 'none'}")
    except OvsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
