"""A user's policy as it would live outside the repository: the tests copy this file
into a temporary folder on sys.path and name it ``userpolicy:NearestCloud``."""

SOURCE = '''
from agents.cost import cloud_only


class NearestCloud:
    """Everything in the cloud, by the plug-in contract: decide(ctx) -> Plan."""

    def __init__(self, store=None):
        self.store = store
        self.calls = 0

    def decide(self, ctx):
        self.calls += 1
        return cloud_only(ctx.model, ctx.store.reference(ctx.model).m, ctx.view.cloud.name)
'''
NAME = "userpolicy:NearestCloud"


def install(folder, monkeypatch):
    """Write the plug-in to ``folder`` and put it on the import path."""
    (folder / "userpolicy.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return NAME
