"""The messages hosts and controller exchange, and nothing else.

:mod:`protocol.wire` (tensor frames between devices and workers),
:mod:`protocol.task_plan` (a plan's hops as a task carries them),
:mod:`protocol.plan_request` (the UDP plan request and its reply) and
:mod:`protocol.heartbeat` (the host load datagram). Both ``runtime`` (the host
side) and ``controller`` (the Ryu side) build on this package, so neither imports
the other. Importing it imports neither torch, Ryu nor Mininet.
"""
