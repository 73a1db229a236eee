"""Energy- and latency-aware offloading for end devices (the second seed method, issue 14).

Pure package (numpy, scipy, torch, gymnasium; no Ryu, no Mininet); docs/energy.md has the
model, the reconstructed equations and the results.  Decision time::

    from agents.energy.model import build_tables
    from agents.energy.policy import DqnPolicy
    decision = DqnPolicy.load().decide(build_tables(instance))   # .x: True = offload

``import agents.energy.env`` registers the Gymnasium env ``sdncep/EnergyOffload-v0``.
Submodules are not imported here, to keep importing the package cheap.
"""
