"""The whole emulated testbed in one context manager: OVS, ryu-manager, Mininet.

    with Testbed(TopologySpec()) as bed:
        bed.wait_until(bed.view_complete, timeout=30)
        print(bed.rest("/sdncep/v1/view"))

Used by the demo, the benchmarks and the system tests. The controller runs as a
``ryu-manager`` subprocess on free ports with its log in the run directory;
everything started here is stopped on exit, even after an error.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from topologies.edge_cloud import link_setter, make_net, place_infrastructure, share_wan_per_sender
from topologies.ovs import DEFAULT_RUN_DIR, INFRA_NICE, OvsDaemons

# The controller would answer from a machine of its own. Here a plan request that
# lands while the hosts compute and OVS forwards a burst waited up to 15 ms for a
# core at nice -10; as a real-time (round-robin) process it runs as soon as it has
# work, and it is idle otherwise. Falls back to nice where real time is refused.
CONTROLLER_REALTIME = ("chrt", "--rr", "10")


class TestbedError(RuntimeError):
    pass


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def controller_priority():
    """The command prefix that runs the controller at real-time priority, if allowed."""
    try:
        subprocess.run([*CONTROLLER_REALTIME, "true"], check=True, capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return INFRA_NICE
    return CONTROLLER_REALTIME


def ryu_manager_path():
    candidate = Path(sys.executable).with_name("ryu-manager")
    found = str(candidate) if candidate.exists() else shutil.which("ryu-manager")
    if not found:
        raise TestbedError("ryu-manager not found; run `make install`")
    return found


class Testbed:
    __test__ = False  # not a pytest test class
    def __init__(self, spec, run_dir=DEFAULT_RUN_DIR, controller_args=(), heartbeat=True):
        self.spec = spec
        self.run_dir = Path(run_dir)
        self.log_dir = self.run_dir / "logs"
        self.controller_args = list(controller_args)
        self.heartbeat = heartbeat
        self.ofp_port = free_port()
        self.rest_port = free_port()
        self.ovs = OvsDaemons(self.run_dir)
        self.ryu = None
        self.net = None
        self._changed_links = set()      # (a, b) re-rated or taken down: restore_links() undoes it

    # -- lifecycle --------------------------------------------------------------
    def __enter__(self):
        if os.geteuid() != 0:
            raise TestbedError("the testbed needs root (Mininet, OVS)")
        # `kill` (SIGTERM) must tear the testbed down like Ctrl-C does, not leave
        # hosts, workers and daemons behind
        self._previous_sigterm = None
        if threading.current_thread() is threading.main_thread():
            self._previous_sigterm = signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)

    def start(self):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.ovs.start()
        self._start_controller()
        place_infrastructure(self.spec, [*self.ovs.running_pids().values(), self.ryu.pid])
        self.net = make_net(self.spec, "127.0.0.1", self.ofp_port, heartbeat=self.heartbeat)
        self.net.build()
        self.net.start()
        share_wan_per_sender(self.net)
        if not self.net.waitConnected(timeout=30):
            raise TestbedError("switches did not connect to the controller; see " + str(self.controller_log))
        # Fail mode is Mininet's "secure": a switch that loses the controller keeps its
        # flows (tasks in flight go on) and learns no new ones. It tries to reconnect
        # with a backoff growing to max_backoff (OVS: 8 s); 1 s brings a restarted
        # controller its switches back within about a second.
        for uuid in subprocess.run(["ovs-vsctl", "--bare", "--columns=_uuid", "list", "controller"],
                                   capture_output=True, text=True, timeout=10).stdout.split():
            subprocess.run(["ovs-vsctl", "set", "controller", uuid, "max_backoff=1000"], timeout=10, check=False)

    def _start_controller(self):
        self.controller_log = self.log_dir / f"ryu-{self.ofp_port}.log"
        with open(self.controller_log, "ab") as log:
            self.ryu = subprocess.Popen(
                [*controller_priority(), ryu_manager_path(), "--observe-links",
                 "--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(self.ofp_port),
                 "--wsapi-host", "127.0.0.1", "--wsapi-port", str(self.rest_port),
                 *self.controller_args, "controller.app"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_until(self._rest_up, timeout=30, what="the controller's REST API")

    # -- faults (scripts.chaos_live, the system tests) -----------------------------
    def kill_controller(self):
        """The controller dies at once (SIGKILL), as in a crash."""
        if self.ryu is not None and self.ryu.poll() is None:
            os.killpg(self.ryu.pid, signal.SIGKILL)
            self.ryu.wait(timeout=10)

    def restart_controller(self):
        """Kill the controller and start a new one on the same ports; returns when its
        REST API answers (its view is then being rebuilt)."""
        self.kill_controller()
        self._start_controller()
        place_infrastructure(self.spec, [*self.ovs.running_pids().values(), self.ryu.pid])

    def kill_worker(self, name):
        """SIGKILL the worker on host ``name`` (its heartbeats stop with it)."""
        service = self.net[name].service
        if service is not None and service.poll() is None:
            service.kill()
            service.wait(timeout=10)

    def start_worker(self, name):
        host = self.net[name]
        if host.service is None or host.service.poll() is not None:
            host.start_service(host.worker_command(self.spec.worker_models))

    def set_link_up(self, a, b, up):
        """Take link a-b down (both interfaces) or bring it back."""
        self.net.configLinkStatus(a, b, "up" if up else "down")
        self._changed_links.add((a, b))

    def stop(self):
        if self.net is not None:
            self.net.stop()
            self.net = None
        if self.ryu is not None:
            if self.ryu.poll() is None:
                os.killpg(self.ryu.pid, signal.SIGTERM)
                try:
                    self.ryu.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.ryu.pid, signal.SIGKILL)
                    self.ryu.wait(timeout=5)
            self.ryu = None
        if self.ovs.started_here:
            self.ovs.stop()

    # -- helpers ----------------------------------------------------------------
    @staticmethod
    def repo_root():
        return Path(__file__).resolve().parent.parent

    def rest(self, path, timeout=5):
        """GET a northbound resource; JSON is decoded, XML returned as text."""
        url = f"http://127.0.0.1:{self.rest_port}{path}"
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            body = reply.read().decode()
            return json.loads(body) if reply.headers.get_content_type() == "application/json" else body

    def rest_put(self, path, payload, timeout=5, method="PUT"):
        request = urllib.request.Request(f"http://127.0.0.1:{self.rest_port}{path}", method=method,
                                         data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read().decode())

    def rest_text(self, path, timeout=5):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}{path}", timeout=timeout) as reply:
            return reply.read().decode()

    def _rest_up(self):
        if self.ryu.poll() is not None:
            raise TestbedError(f"ryu-manager exited ({self.ryu.returncode}); see {self.controller_log}")
        try:
            self.rest("/sdncep/v1/view", timeout=1)
            return True
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    @staticmethod
    def wait_until(predicate, timeout, interval=0.25, what="condition"):
        """Poll ``predicate`` until it returns a truthy value; raise after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TestbedError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    def expected_counts(self):
        """(switches, directed switch links, hosts) the view should end up with."""
        switch_names = set(self.spec.switches())
        links = sum(2 for a, b, *_ in self.spec.links() if a in switch_names and b in switch_names)
        return len(switch_names), links, len(self.spec.hosts())

    def view_complete(self, capacities=True):
        """True once the view has every switch, link (with capacity) and live host."""
        view = self.rest("/sdncep/v1/view")
        switches, links, hosts = self.expected_counts()
        switch_links = [l for l in view["links"] if l["kind"] == "switch"]
        return (len(view["switches"]) == switches and len(switch_links) == links
                and (not capacities or all(l["capacity_mbps"] for l in switch_links))
                and len([n for n in view["nodes"] if n["alive"]]) == hosts)

    def set_link_rate(self, a, b, mbit, remeasure=False):
        """Re-rate link a-b; with ``remeasure``, ask the controller to probe it again now."""
        link_setter(self.net)((a, b), mbit)
        self._changed_links.add((a, b))
        if remeasure:
            self.rest_put(f"/sdncep/v1/measure?link={a}-{b}", None, method="POST")

    def restore_links(self, timeout=30):
        """Give every link re-rated or taken down since the start (or the last restore) its
        declared rate, bring it up, and wait until the view has measured each such switch link
        within 25 % of that rate. Tests that share one testbed then start from the topology as
        declared, whatever the test before them did or wherever it failed. The links restored."""
        if self.net is None or not self._changed_links:
            return []
        declared = self.spec.shaped_rates()
        changed, self._changed_links = sorted(self._changed_links), set()
        switches = set(self.spec.switches())
        between_switches = [(a, b) for a, b in changed if {a, b} <= switches]
        for a, b in changed:
            self.net.configLinkStatus(a, b, "up")
            if frozenset((a, b)) in declared:          # an unshaped link (a host's LAN) has no rate to restore
                link_setter(self.net)((a, b), declared[frozenset((a, b))])
        for a, b in between_switches:
            self.rest_put(f"/sdncep/v1/measure?link={a}-{b}", None, method="POST")

        def measured():
            views = {(l["src"], l["dst"]): l for l in self.rest("/sdncep/v1/links?kind=switch")}
            for a, b in between_switches:
                want = declared[frozenset((a, b))]
                for key in ((a, b), (b, a)):
                    if key not in views or abs((views[key]["capacity_mbps"] or 0) - want) > 0.25 * want:
                        return False
            return True

        self.wait_until(measured, timeout=timeout, interval=0.25,
                        what=f"links {', '.join(f'{a}-{b}' for a, b in changed)} measured at their declared rates")
        return changed

    def link_view(self, a, b):
        return next(l for l in self.rest("/sdncep/v1/links") if (l["src"], l["dst"]) == (a, b))
