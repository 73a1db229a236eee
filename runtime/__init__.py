"""Split-inference runtime: wire format, worker, client (plain TCP sockets).

Modules: :mod:`runtime.wire` (frames), :mod:`runtime.plan` (Plan/Hop),
:mod:`runtime.worker` (``python -m runtime.worker``), :mod:`runtime.client`
(``python -m runtime.client``), :mod:`runtime.images` (sample images),
:mod:`runtime.testing` (a tiny fake model).  See docs/runtime.md.
Importing this package imports neither torch, Ryu nor Mininet.
"""
