"""Flow rules that pin one transfer (e.g. a tensor between two workers) to a path.

Pure, after faucet's habit: functions return ``FlowRule`` values and only the Ryu
app turns them into OFPFlowMods. A transfer is matched by IPv4 source and
destination, TCP and the receiver's port (workers keep connections open between
tasks, so the sender's port is matched only when the requester names it). The
reverse direction (ACKs, results on the same connection) is pinned to the same
path backwards. Rules sit above ordinary forwarding and idle out after the task.
"""

from dataclasses import dataclass

PRIORITY_TRANSFER = 200
TRANSFER_COOKIE = 0x5DCE0002


class RoutingError(ValueError):
    """No path, or an endpoint the view does not know."""


@dataclass(frozen=True)
class FlowRule:
    dpid: int
    match: tuple            # sorted (field, value) pairs, OpenFlow 1.3 OXM names
    out_port: int
    priority: int = PRIORITY_TRANSFER
    idle_timeout: int = 5
    hard_timeout: int = 120
    cookie: int = TRANSFER_COOKIE
    meter_id: int = 0       # an OpenFlow meter the matched packets pass first (0: none)

    @property
    def match_dict(self):
        return dict(self.match)


@dataclass(frozen=True)
class Transfer:
    """Where one hop's bytes go: the route, its bottleneck and the rules pinning it."""

    src_ip: str
    dst_ip: str
    dst_port: int
    switches: tuple
    bottleneck_bps: float
    rules: tuple


def _match(src_ip, dst_ip, port_field, port, src_port_field=None, src_port=None):
    fields = {"eth_type": 0x0800, "ip_proto": 6, "ipv4_src": src_ip, "ipv4_dst": dst_ip, port_field: port}
    if src_port is not None:
        fields[src_port_field] = src_port
    return tuple(sorted(fields.items()))


def plan_transfer(view, src_ip, dst_ip, dst_port, src_port=None, idle_timeout=5, hard_timeout=120, width_of=None):
    """Pin TCP traffic src_ip -> dst_ip:dst_port (and its replies) to the widest path
    (``width_of``: see GlobalView.widest_path)."""
    src, dst = view.host_by_ip(src_ip), view.host_by_ip(dst_ip)
    if src is None or dst is None:
        missing = src_ip if src is None else dst_ip
        raise RoutingError(f"host {missing} is not in the view (no heartbeat or traffic seen yet)")
    switches, bottleneck = view.widest_path(src["dpid"], dst["dpid"], width_of=width_of)
    if switches is None:
        raise RoutingError(f"no path from {src_ip} to {dst_ip}")
    forward = _match(src_ip, dst_ip, "tcp_dst", dst_port, "tcp_src", src_port)
    backward = _match(dst_ip, src_ip, "tcp_src", dst_port, "tcp_dst", src_port)
    timeouts = {"idle_timeout": idle_timeout, "hard_timeout": hard_timeout}
    rules = []
    for i, dpid in enumerate(switches):
        out = dst["port"] if i == len(switches) - 1 else view.out_port(dpid, switches[i + 1])
        back = src["port"] if i == 0 else view.out_port(dpid, switches[i - 1])
        rules += [FlowRule(dpid, forward, out, **timeouts), FlowRule(dpid, backward, back, **timeouts)]
    return Transfer(src_ip, dst_ip, dst_port, tuple(switches), bottleneck, tuple(rules))


class InstalledRules:
    """Remembers transfer rules recently sent, so repeated plans skip re-sending them.

    A rule idles out ``idle_timeout`` after its last packet. Every plan that needs a
    rule is followed by its transfer, so a rule last needed less than half its idle
    timeout ago is still installed (and an identical one, same switch, match and
    output, need not be sent again) unless its hard timeout is near. Tasks that keep
    coming then cost no FlowMod and no barrier round trip.
    """

    def __init__(self):
        self._rules = {}  # (dpid, match) -> (out_port, sent_at, needed_at)

    def needed(self, rules, now):
        """The rules of ``rules`` that must be (re)sent; marks all of them as needed at ``now``."""
        out = []
        for rule in rules:
            key = (rule.dpid, rule.match)
            port, sent_at, needed_at = self._rules.get(key, (None, None, None))
            if (port != rule.out_port or now - needed_at >= rule.idle_timeout / 2
                    or now - sent_at >= rule.hard_timeout - rule.idle_timeout):
                sent_at = now
                out.append(rule)
            self._rules[key] = (rule.out_port, sent_at, now)
        if len(self._rules) > 10000:
            horizon = max(r.hard_timeout for r in rules) if rules else 0
            self._rules = {k: v for k, v in self._rules.items() if now - v[2] < horizon}
        return out

    def forget(self, rules):
        """Rules removed from the switches: the next plan that needs one sends it again."""
        for rule in rules:
            self._rules.pop((rule.dpid, rule.match), None)

    def forget_port(self, dpid, port):
        """Every rule of switch ``dpid`` out of ``port`` was removed."""
        self._rules = {k: v for k, v in self._rules.items() if not (k[0] == dpid and v[0] == port)}

    def ports_in_use(self, now, within):
        """(dpid, out_port) of every rule needed less than ``within`` seconds ago."""
        return {(dpid, port) for (dpid, _match), (port, _sent, needed_at) in self._rules.items()
                if now - needed_at < within}


def uses_link(transfer, src_dpid, dst_dpid):
    """Whether ``transfer``'s route crosses the switch link src-dst (either way)."""
    pairs = set(zip(transfer.switches, transfer.switches[1:]))
    return (src_dpid, dst_dpid) in pairs or (dst_dpid, src_dpid) in pairs


@dataclass(frozen=True)
class Reroute:
    """What a link failure asks of the switches for one transfer: ``delete`` the old
    rules on switches the new route leaves out, ``install`` the new route's rules."""

    old: Transfer
    new: Transfer | None       # None: no path left (the rules are only removed)
    delete: tuple
    install: tuple


class ActiveTransfers:
    """The transfers planned within the last ``horizon`` seconds, so that a link that
    fails under them can be routed around at once (TCP's retransmissions then take
    the new route), not after their rules idle out."""

    def __init__(self, horizon=10.0):
        self.horizon = horizon
        self._transfers = {}   # (src_ip, dst_ip, dst_port, forward match) -> (Transfer, needed_at)

    def add(self, transfers, now):
        for t in transfers:
            self._transfers[(t.src_ip, t.dst_ip, t.dst_port, t.rules[0].match if t.rules else ())] = (t, now)
        if len(self._transfers) > 10000:
            self.expire(now)

    def expire(self, now):
        self._transfers = {k: v for k, v in self._transfers.items() if now - v[1] < self.horizon}

    def __len__(self):
        return len(self._transfers)

    def reroute(self, view, src_dpid, dst_dpid, now):
        """A :class:`Reroute` for every recent transfer over the failed link src-dst;
        ``view`` no longer has that link. The new routes replace the old ones here."""
        self.expire(now)
        out = []
        for key, (old, needed_at) in list(self._transfers.items()):
            if not uses_link(old, src_dpid, dst_dpid):
                continue
            rule = old.rules[0]
            try:
                new = plan_transfer(view, old.src_ip, old.dst_ip, old.dst_port,
                                    src_port=rule.match_dict.get("tcp_src"),
                                    idle_timeout=rule.idle_timeout, hard_timeout=rule.hard_timeout)
            except (RoutingError, KeyError):   # no path, or a half-removed link on the only one
                new = None
            kept = set(new.switches) if new else set()
            out.append(Reroute(old, new, tuple(r for r in old.rules if r.dpid not in kept),
                               new.rules if new else ()))
            if new is None:
                del self._transfers[key]
            else:
                self._transfers[key] = (new, needed_at)
        return out
