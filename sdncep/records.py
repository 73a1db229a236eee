"""Run records: every run in its own folder, with a manifest of what made it.

A run folder is ``<root>/<YYYYmmdd-HHMMSS>`` (a suffix if two start in the same
second) and ``<root>/latest`` links to the newest. ``manifest.json`` holds the
command line and arguments, the topology, the controller settings, hashes of the
checkpoints and profiles, the git commit (and whether the tree was dirty), Python
and package versions and the machine: enough to tell later how a result was made.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("sdncep", "torch", "numpy", "scipy", "gymnasium", "networkx", "csle-ryu-fork", "eventlet",
            "scikit-learn", "scikit-image", "prometheus-client", "stable-baselines3", "sb3-contrib")
MANIFEST = "manifest.json"


def new_run_dir(root, now=None) -> Path:
    """A fresh timestamped folder under ``root``; ``root/latest`` points at it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    run, n = root / stamp, 1
    while True:
        try:
            run.mkdir()
            break
        except FileExistsError:
            n += 1
            run = root / f"{stamp}-{n}"
    latest = root / "latest"
    tmp = root / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run.name)
    tmp.replace(latest)          # atomic: a reader never sees no 'latest'
    return run


def resolve_run(path) -> Path:
    """A run folder, or a root whose ``latest`` is one."""
    path = Path(path)
    if (path / "latest").exists() and not (path / MANIFEST).exists():
        return (path / "latest").resolve()
    return path.resolve() if path.is_symlink() else path


def file_digest(path) -> dict:
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"path": str(path), "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def tree_digest(root, pattern="*") -> dict:
    """One hash over every file under ``root`` (names and contents), for profile folders."""
    root = Path(root)
    digest, count = hashlib.sha256(), 0
    for path in sorted(p for p in root.rglob(pattern) if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
        count += 1
    return {"path": str(root), "files": count, "sha256": digest.hexdigest()}


def checkpoint_digests(paths) -> list:
    """Each checkpoint with its metadata sidecar (``.pt`` + ``.json``)."""
    out = []
    for path in filter(None, paths):
        path = Path(path)
        for part in (path, path.with_suffix(".json")) if path.suffix == ".pt" else (path,):
            if part.is_file():
                out.append(file_digest(part))
    return out


def git_state(repo=REPO) -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10)
    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if commit.returncode:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def package_versions(names=PACKAGES) -> dict:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict:
    uname = platform.uname()
    return {"cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "kernel": uname.release, "system": uname.system, "machine": uname.machine,
            "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")}


def manifest(kind, arguments, topology=None, controller=None, checkpoints=(), profiles=None,
             **extra) -> dict:
    """What made a run. ``arguments``: the parsed command line as a mapping."""
    from agents.calibration import DEFAULT_PROFILES
    profiles_root = Path(profiles or DEFAULT_PROFILES)
    return {
        "kind": kind,
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(sys.orig_argv),          # as typed, interpreter included
        "arguments": {k: _jsonable(v) for k, v in dict(arguments).items()},
        "topology": topology,
        "controller": controller,
        "checkpoints": checkpoint_digests(checkpoints),
        "profiles": tree_digest(profiles_root) if profiles_root.is_dir() else {"path": str(profiles_root)},
        "git": git_state(),
        "python": {"version": platform.python_version(), "executable": sys.executable},
        "packages": package_versions(),
        "machine": machine(),
        **extra,
    }


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def write_manifest(run_dir, record) -> Path:
    path = Path(run_dir) / MANIFEST
    path.write_text(json.dumps(record, indent=1, default=str))
    return path


def read_manifest(run_dir) -> dict | None:
    path = Path(run_dir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None
