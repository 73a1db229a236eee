"""``sdncep``: one entry point for everything a researcher runs.

Each subcommand is a module with a ``main(argv)``; ``sdncep CMD --help`` shows its
options. Every default works on a fresh clone (shipped checkpoints, configs and
profiles). The live commands need root (Open vSwitch, Mininet).
"""
from __future__ import annotations

import importlib
import sys

#: name -> (module, one line of help)
COMMANDS = {
    "demo": ("scripts.bench_live", "the quick live benchmark on the emulated testbed (about 6 min, root)"),
    "bench": ("scripts.bench_live", "the live benchmark with every option (--full: about 45 min, root)"),
    "sim": ("scripts.sim", "evaluate methods (built-in or plug-in) in the simulator, cell by cell"),
    "train": ("scripts.train_agent", "train an SDN-CEP agent in the simulator"),
    "report": ("scripts.live_report", "redraw a run folder; compare two runs side by side; --repeats: judge repeats of one scenario pooled"),
    "chaos": ("scripts.chaos_live", "the live loop under injected faults: a table per fault type (about 8 min, root)"),
    "soak": ("scripts.soak_live", "10 000 live tasks at a steady rate: does the memory stay flat? (about 17 min, root)"),
    "view": ("scripts.demo", "start the testbed and print the controller's global view (root)"),
    "check": ("sdncep.check", "validate topology, controller, simulator configs and agent checkpoints"),
    "profile": ("scripts.profile_models", "profile the models' layers per host class"),
    "experiments": ("scripts.sim_experiments", "the simulator figures of docs/decision_core.md"),
    "bench-decision": ("scripts.bench_decision", "time one SDN-CEP decision (p50/p99)"),
    "pricing": ("scripts.pricing_experiments", "online pricing/admission/placement of ML training jobs (third seed method): experiments | live"),
    "energy": ("scripts.energy_experiments", "energy-aware offloading (second seed method): run | train | bench | live | chaos"),
}


def usage():
    width = max(map(len, COMMANDS))
    lines = ["usage: sdncep COMMAND [options]   (sdncep COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {about}" for name, (_, about) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"sdncep: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    sys.argv[0] = f"sdncep {command}"        # argparse names the program after it
    try:
        return module.main(rest) or 0
    except BrokenPipeError:                  # `sdncep report A B | head`
        sys.stdout = None
        return 0


if __name__ == "__main__":
    sys.exit(main())
