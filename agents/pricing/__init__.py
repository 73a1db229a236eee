"""Online dynamic pricing, admission and placement of distributed ML training jobs on an
edge-cloud provider (issue 15, the third seed method; docs/pricing.md).

Modules, one job each: ``jobs`` (job model, utilities), ``cluster`` (servers, usage,
schedules, the constraint check), ``prices`` (price functions), ``schedule`` (problem (7):
the best centralised / distributed placement), ``online`` (the mechanism over a job
stream), ``baselines`` (the compared methods), ``offline`` (the ILP optimum),
``workload`` (generators), ``config`` (YAML loading), ``training`` (real training over
TCP in wire frames) and ``live_node`` (one PS or worker process on a testbed host, driven by
scripts/pricing_live.py).  Pure: no Ryu, no Mininet.
"""
