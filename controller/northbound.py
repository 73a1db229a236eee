"""Northbound API logic, independent of the web framework.

``respond(view, now, resource, query)`` returns (status, content type, body) for the
resources under ``/sdncep/v1``; the Ryu WSGI adapter in ``controller.rest`` only
maps URLs onto it. Unknown resources, names or query parameters give a 4xx with a
JSON message.
"""

import json

JSON = "application/json"
XML = "application/xml"
ALLOWED_QUERY = {
    "view": set(),
    "view.xml": set(),
    "links": {"kind"},
    "nodes": {"role"},
    "node": set(),
}
LINK_KINDS = ("switch", "host")
NODE_ROLES = ("device", "edge", "cloud", "unknown")


def _json(status, payload):
    return status, JSON, json.dumps(payload, sort_keys=True)


def _error(status, message):
    return _json(status, {"error": message})


def links_named(view, text):
    """The directed links of ``text`` = 'a-b' (two switch names), or None for every link."""
    if text is None:
        return None
    a, sep, b = text.partition("-")
    links = view.links_between(a, b) if sep else []
    if not links:
        raise ValueError(f"link must name two adjacent switches as a-b, got {text!r}")
    return links


def respond(view, now, resource, query=None, name=None):
    query = dict(query or {})
    allowed = ALLOWED_QUERY.get(resource)
    if allowed is None:
        return _error(404, f"unknown resource {resource!r}; try view, view.xml, links, nodes")
    unknown = set(query) - allowed
    if unknown:
        return _error(400, f"unknown query parameter(s) {sorted(unknown)} for {resource}; "
                           f"allowed: {sorted(allowed) or 'none'}")
    if resource == "view":
        return _json(200, view.to_dict(now))
    if resource == "view.xml":
        return 200, XML, view.to_xml(now)
    if resource == "links":
        kind = query.get("kind")
        if kind is not None and kind not in LINK_KINDS:
            return _error(400, f"kind must be one of {list(LINK_KINDS)}")
        return _json(200, [l for l in view.links(now) if kind in (None, l["kind"])])
    if resource == "nodes":
        role = query.get("role")
        if role is not None and role not in NODE_ROLES:
            return _error(400, f"role must be one of {list(NODE_ROLES)}")
        return _json(200, [n for n in view.nodes(now) if role in (None, n["role"])])
    node = next((n for n in view.nodes(now) if n["name"] == name), None)
    if node is None:
        return _error(404, f"no node named {name!r}")
    return _json(200, node)
