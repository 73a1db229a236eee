"""Controller settings: oslo options for ryu-manager, frozen and validated here.

In a ``--config-file`` they live in the ``[sdncep]`` section, e.g.::

    [DEFAULT]
    wsapi_host = 127.0.0.1
    wsapi_port = 8080
    [sdncep]
    poll_interval = 1.0
    probe_interval = 2.0
"""

from dataclasses import dataclass, fields

from agents.errors import ConfigError  # one error type for every refused setting (stdlib only)

HELP = {
    "poll_interval": "seconds between port-stats requests to every switch",
    "probe_interval": "shortest interval between capacity probes of one switch link, seconds (0 disables "
                      "probing)",
    "probe_max_interval": "longest interval: a link whose probes agree is probed half as often each time, "
                          "down to this",
    "probe_duration": "link time a capacity probe train aims to occupy, seconds",
    "forward_idle_timeout": "idle timeout of forwarding flows, seconds",
    "worker_port": "TCP port of the split-inference workers on edge and cloud hosts",
    "transfer_idle_timeout": "idle timeout of the flows pinning a task's transfers, seconds",
    "agent_checkpoint": "trained DQN checkpoints for the sdn-cep method, comma-separated, one per model "
                        "(empty: baselines only)",
    "predictor_path": "task-complexity predictor JSON (empty: no complexity gate)",
    "profiles_dir": "directory of layer profiles (empty: the repository's profiles/)",
    "delta": "complexity threshold: q >= delta sends a task to the cloud",
    "complexity_gate": "apply the complexity gate (q >= delta -> cloud) before the DQN in sdn-cep",
    "on_bad_settings": "what to do when a checkpoint, predictor or plug-in named here cannot be used: 'refuse' "
                       "to start (listing every problem), or 'serve_baselines': start without it and answer "
                       "plan requests for the methods it served with an explicit error naming the file",
    "policies": "plug-in methods served besides the built-in ones, comma-separated: 'package.module:attr' "
                "(a class or factory on the controller's Python path) or entry point names of group "
                "sdncep.policies",
    "unmeasured_link_mbit": "capacity a switch link is assumed to have until its first probe measures it, "
                            "Mbit/s (after a controller restart the plans are costed with it, conservatively, "
                            "rather than as if the link were unlimited)",
    "agent_top_k": "sdn-cep: the cost model picks among the DQN's k best actions (1: the DQN alone; "
                   "above 1 the DQN alone is also served as sdn-cep-dqn)",
}


@dataclass(frozen=True)
class ControllerConfig:
    poll_interval: float = 1.0
    probe_interval: float = 2.0
    probe_max_interval: float = 30.0
    probe_duration: float = 0.05
    forward_idle_timeout: int = 60
    worker_port: int = 9000
    transfer_idle_timeout: int = 5
    agent_checkpoint: str = ""
    predictor_path: str = ""
    profiles_dir: str = ""
    delta: float = 0.6
    complexity_gate: bool = False
    agent_top_k: int = 10               #: 5 left SDN-CEP 23-41 % above the Oracle at the heaviest load (docs/live.md)
    policies: str = ""
    on_bad_settings: str = "refuse"
    unmeasured_link_mbit: float = 10.0

    def __post_init__(self):
        if not 0.1 <= self.poll_interval <= 60:
            raise ConfigError(f"poll_interval must be in [0.1, 60] s, got {self.poll_interval}")
        if self.probe_interval != 0 and not 0.5 <= self.probe_interval <= 600:
            raise ConfigError(f"probe_interval must be 0 (off) or in [0.5, 600] s, got {self.probe_interval}")
        if not 0.5 <= self.probe_max_interval <= 3600:
            raise ConfigError(f"probe_max_interval must be in [0.5, 3600] s, got {self.probe_max_interval}")
        if not 0.02 <= self.probe_duration <= 2:
            raise ConfigError(f"probe_duration must be in [0.02, 2] s, got {self.probe_duration}")
        if not 0 <= self.forward_idle_timeout <= 3600:
            raise ConfigError("forward_idle_timeout must be in [0, 3600] s")
        if not 1 <= self.worker_port <= 65535:
            raise ConfigError(f"worker_port must be a TCP port, got {self.worker_port}")
        if not 1 <= self.transfer_idle_timeout <= 600:
            raise ConfigError("transfer_idle_timeout must be in [1, 600] s")
        if not 0.0 <= self.delta <= 1.0:
            raise ConfigError(f"delta must be in [0, 1], got {self.delta}")
        if self.on_bad_settings not in ("refuse", "serve_baselines"):
            raise ConfigError(f"on_bad_settings must be 'refuse' or 'serve_baselines', got {self.on_bad_settings!r}")
        if not 0.01 <= self.unmeasured_link_mbit <= 100_000:
            raise ConfigError(f"unmeasured_link_mbit must be in [0.01, 100000], got {self.unmeasured_link_mbit}")
        if not 1 <= self.agent_top_k <= 64:
            raise ConfigError(f"agent_top_k must be in [1, 64], got {self.agent_top_k}")

    @classmethod
    def from_oslo(cls, group):
        return cls(**{f.name: getattr(group, f.name) for f in fields(cls)})


def register_options(conf):
    """Register the [sdncep] options and bind the REST API to loopback by default."""
    from oslo_config import cfg as oslo_cfg  # ryu's config library; only the app needs it

    kinds = {int: oslo_cfg.IntOpt, float: oslo_cfg.FloatOpt, str: oslo_cfg.StrOpt, bool: oslo_cfg.BoolOpt}
    opts = [kinds[f.type](f.name, default=f.default, help=HELP[f.name]) for f in fields(ControllerConfig)]
    conf.register_opts(opts, group="sdncep")
    conf.set_default("wsapi_host", "127.0.0.1")


def markdown_table():
    """The options as a Markdown table (docs/reference.md is this output)."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    rows += [f"| `{f.name}` | `{f.default!r}` | {HELP[f.name]} |" for f in fields(ControllerConfig)]
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
