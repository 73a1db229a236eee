"""Split-inference runtime on the hosts: workers, devices, client, host agent.

The messages they exchange are in :mod:`protocol` (frames, plans, plan requests,
heartbeats). Modules: :mod:`runtime.worker` (``python -m runtime.worker``),
:mod:`runtime.client` (``python -m runtime.client``), :mod:`runtime.images`
(sample images), :mod:`runtime.testing` (a tiny fake model),
:mod:`runtime.host_agent` (heartbeats from a host's cgroup). See docs/runtime.md.
Importing this package imports neither torch, Ryu nor Mininet.
"""
