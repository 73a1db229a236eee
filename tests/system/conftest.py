"""Real-component fixtures: OVS (userspace) + ryu-manager + Mininet, bounded in time."""

import os
import shutil
import subprocess

import pytest

REQUIRED = ("ovs-vswitchd", "ovsdb-server", "mnexec", "iperf3", "tc", "cgcreate")


def pytest_collection_modifyitems(config, items):
    missing = [tool for tool in REQUIRED if shutil.which(tool) is None]
    reason = None
    if os.geteuid() != 0:
        reason = "system tests need root"
    elif missing:
        reason = f"system tests need {', '.join(missing)} (run `make install`)"
    for item in items:
        if "tests/system" in str(item.fspath):
            item.add_marker(pytest.mark.system)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def bed(module_bed):
    """For a module that shares one testbed (its fixture ``module_bed``) between tests: that
    testbed, with the links a test re-rated or took down restored after it, pass or fail."""
    yield module_bed
    module_bed.restore_links()


def leftovers():
    """What a finished testbed must not leave behind."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    interfaces = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()
                  if "-eth" in line]
    bridges = subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True,
                             text=True).stdout.split() if os.path.exists("/var/run/openvswitch/db.sock") else []
    procs = subprocess.run(["pgrep", "-af", "ryu-manager|runtime.host_agent|runtime.worker"], capture_output=True,
                           text=True).stdout.splitlines()
    return {"interfaces": interfaces, "bridges": bridges,
            "processes": [p for p in procs if "pgrep" not in p]}
