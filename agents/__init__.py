"""SDN-CEP decision core: cost model, simulator, baselines, predictor, DQN.

Pure package (no Ryu, no Mininet).  The live controller needs only::

    from agents.decision import NodeState, Snapshot, Task, decide
    from agents.dqn import SdnCepPolicy
    policy = SdnCepPolicy.load("results/agent/sdn_cep_2hop.pt", "results/complexity.json", delta=0.6)
    plan = decide(policy, snapshot, Task("alexnet", image=img))   # -> agents.cost.Plan

See docs/decision_core.md.  Submodules are not imported here so that importing the
package stays cheap (torch is only loaded by ``agents.dqn`` and, through the model
zoo, by the modules that read profiles).  ``import agents.gym_env`` registers the
Gymnasium env ``sdncep/EdgeCloud-v0`` (the simulator as a library).
"""
