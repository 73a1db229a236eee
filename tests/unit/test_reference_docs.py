"""docs/reference.md lists every controller option (as `python -m controller.config`
prints them) and every REST route."""

import re
from pathlib import Path

from controller.config import markdown_table

REPO = Path(__file__).resolve().parents[2]


def test_options_table_is_the_commands_output():
    assert markdown_table() in (REPO / "docs" / "reference.md").read_text()


def test_every_rest_route_is_documented():
    reference = (REPO / "docs" / "reference.md").read_text()
    source = "".join((REPO / "controller" / name).read_text()
                     for name in ("rest.py", "energy_rest.py", "pricing_rest.py"))
    routes = re.findall(r'@route\("sdncep[\w-]*", (PREFIX \+ )?"([^"]+)", methods=\["(\w+)"\]\)', source)
    assert len(routes) >= 14
    for prefixed, path, verb in routes:
        assert f"`{verb} {'/sdncep/v1' if prefixed else ''}{path}" in reference, (verb, path)
