"""Ryu adapter for the network side of placed training jobs (logic in controller.job_flows).

A second Ryu app beside ``controller.app`` (``ryu-manager ... controller.pricing_rest
controller.app``), using its global view, switches and flow installer::

    PUT    /sdncep/v1/pricing/jobs/{jid}   {"ps": ip, "port": n, "workers": [ip, ...],
                                            "worker_mbps": b_w, "ps_mbps": b_p x z}
           -> 200 the paths and reservations; 409 if the network cannot carry it
    DELETE /sdncep/v1/pricing/jobs/{jid}   -> 200 (its flows and meters are removed)
    GET    /sdncep/v1/pricing/jobs         -> every job's reservations

A PUT is idempotent: the same placement on the same paths sends nothing; a changed one
(a link went down, or the job was replaced) installs the new rules, then deletes what
the old ones left. A put is committed only once every switch confirmed its rules (a
barrier); else it answers 503 and is sent whole again at the next put. After a controller restart this app knows no job: the live driver
puts its jobs again, which reinstalls their rules and meters (the switches kept them
meanwhile: fail mode secure). A link that goes down moves the jobs over it at once.
"""

import json
import logging
import time

from ryu.app.wsgi import ControllerBase, WSGIApplication, route
from ryu.base import app_manager
from ryu.controller.handler import set_ev_cls
from ryu.lib import hub
from ryu.topology import event as topo_event
from webob import Response

from controller.job_flows import (
    JOB_COOKIE,
    JobNetwork,
    JobNotReady,
    JobRefused,
    JobRequestError,
    parse_jid,
    parse_job,
)
from controller.rest import (
    PREFIX,
    HttpError,
    _add_method_not_allowed,
    guarded,
    json_body,
)

LOG = logging.getLogger(__name__)
APP_KEY = "sdncep_pricing_app"
RELINK_DELAY_S = 0.1       # let controller.app drop the failed link from the view first
# Puts served at once (each a green thread that may wait a second for barriers); beyond,
# a 503 at once rather than a queue without bound.
MAX_CONCURRENT_PUTS = 16
# After the start (a restart), the view is rebuilt for a few seconds: a host or path it
# does not know yet is "not ready" (503), not a refusal.
SETTLING_S = 15.0
BARRIER_TIMEOUT_S = 1.0


def sdncep_app():
    main = app_manager.lookup_service_brick("SdnCepController")
    if main is None:
        raise HttpError(503, "the SDN-CEP app (controller.app) is not loaded", {"Retry-After": "1"})
    return main


class PricingNetworkApp(app_manager.RyuApp):
    _CONTEXTS = {"wsgi": WSGIApplication}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.network = JobNetwork()
        self.meters_sent = set()     # (dpid, meter id) this controller has added
        self.puts_in_flight = 0
        # one put or delete at a time: a put yields while its barriers are answered, and
        # another one placed meanwhile would not see its reservations
        self.serial = hub.Semaphore(1)
        self.started = time.monotonic()
        kwargs["wsgi"].register(PricingRest, {APP_KEY: self})

    # -- switches ---------------------------------------------------------------
    def _send_meters(self, main, meters):
        for meter in meters:
            dp = main.datapaths.get(meter.dpid)
            if dp is None:
                continue
            ofp, parser = dp.ofproto, dp.ofproto_parser
            band = parser.OFPMeterBandDrop(rate=meter.rate_kbps, burst_size=meter.burst_kbit)
            flags = ofp.OFPMF_KBPS | ofp.OFPMF_BURST | ofp.OFPMF_STATS
            key = (meter.dpid, meter.meter_id)
            # a meter unknown to this controller may still be on the switch (after a restart):
            # modify and add, one of which the switch refuses; deleting it would delete the
            # job's flows, and their counters, with it
            dp.send_msg(parser.OFPMeterMod(dp, command=ofp.OFPMC_MODIFY, flags=flags, meter_id=meter.meter_id,
                                           bands=[band]))
            if key not in self.meters_sent:
                dp.send_msg(parser.OFPMeterMod(dp, command=ofp.OFPMC_ADD, flags=flags, meter_id=meter.meter_id,
                                               bands=[band]))
                self.meters_sent.add(key)

    def _delete_meters(self, main, meters):
        for meter in meters:
            dp = main.datapaths.get(meter.dpid)
            if dp is not None:
                ofp, parser = dp.ofproto, dp.ofproto_parser
                dp.send_msg(parser.OFPMeterMod(dp, command=ofp.OFPMC_DELETE, flags=0, meter_id=meter.meter_id))
            self.meters_sent.discard((meter.dpid, meter.meter_id))

    @staticmethod
    def _delete_job_cookie(main, jid):
        for dp in main.datapaths.values():
            ofp, parser = dp.ofproto, dp.ofproto_parser
            dp.send_msg(parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                          cookie=JOB_COOKIE | jid, cookie_mask=0xFFFFFFFFFFFFFFFF,
                                          out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))

    # -- jobs -------------------------------------------------------------------
    def put(self, spec):
        with self.serial:
            return self._put(spec)

    def _put(self, spec):
        main = sdncep_app()
        settling = time.monotonic() - self.started < SETTLING_S
        flows = self.network.place(main.view, spec, settling=settling)
        previous = self.network.jobs.get(spec.jid)
        if previous is not None and previous.rules == flows.rules and previous.meters == flows.meters:
            return dict(flows.report(main.view), changed=False)
        missing = sorted({r.dpid for r in flows.rules} - set(main.datapaths))
        if missing:
            raise JobNotReady(f"switch(es) {missing} on the job's paths are not connected")
        # rules an earlier controller installed for the job are replaced in place (an add
        # of the same match keeps the counters); any it left elsewhere go with the job
        self._send_meters(main, flows.meters)
        done, _keys = main._install_and_fence(flows.rules)
        if not done.wait(timeout=BARRIER_TIMEOUT_S):
            raise JobNotReady("the switches did not confirm the job's rules; put it again")
        self.network.commit(flows)
        if previous is not None:
            kept_rules = {(r.dpid, r.match) for r in flows.rules}
            kept_meters = {(m.dpid, m.meter_id) for m in flows.meters}
            main.delete_rules([r for r in previous.rules if (r.dpid, r.match) not in kept_rules])
            self._delete_meters(main, [m for m in previous.meters if (m.dpid, m.meter_id) not in kept_meters])
        LOG.info("job %d placed: %d remote worker(s), %d rules, %d meters", spec.jid, len(spec.remote_workers),
                 len(flows.rules), len(flows.meters))
        return dict(flows.report(main.view), changed=True)

    def delete(self, jid):
        """Remove the job's rules from every connected switch. While the controller is
        settling (just started), switches may still be reconnecting, and rules an earlier
        controller (or a put the switches never confirmed) left on them would stay: the
        delete is done, and answered 503, so that the caller sends it again."""
        with self.serial:
            main = sdncep_app()
            flows = self.network.remove(jid)
            self._delete_job_cookie(main, jid)
            if flows is not None:
                self._delete_meters(main, flows.meters)
            if time.monotonic() - self.started < SETTLING_S:
                raise JobNotReady("the controller started moments ago and its switches may still be reconnecting: "
                                  "delete the job again")
            return {"jid": jid, "removed": flows is not None}

    def summary(self):
        main = sdncep_app()
        totals = {}
        for flows in self.network.jobs.values():
            for link, bps in flows.reserved.items():
                totals[link] = totals.get(link, 0.0) + bps
        names = {d["dpid"]: d["name"] for _, d in main.view.switch_graph().nodes(data=True)}
        return {"jobs": [f.report(main.view) for f in self.network.jobs.values()],
                "reserved_mbps": {f"{names.get(a, a)}->{names.get(b, b)}": round(v / 1e6, 3)
                                  for (a, b), v in sorted(totals.items())}}

    @set_ev_cls(topo_event.EventLinkDelete)
    def _link_delete(self, ev):
        jids = self.network.uses_link(ev.link.src.dpid, ev.link.dst.dpid)
        if jids:
            hub.spawn_after(RELINK_DELAY_S, self._move_jobs, jids)

    def _move_jobs(self, jids):
        for jid in jids:
            flows = self.network.jobs.get(jid)
            if flows is None:
                continue
            try:
                self.put(flows.spec)
            except JobNotReady as exc:     # the job's driver puts it again
                LOG.warning("job %d: not moved after a link failure yet (%s)", jid, exc)
            except (JobRefused, HttpError) as exc:
                LOG.warning("job %d: no path left after a link failure (%s); its rules are removed", jid, exc)
                try:
                    self.delete(jid)
                except JobNotReady:
                    pass               # done; the job's driver deletes it again when it ends


class PricingRest(ControllerBase):
    def __init__(self, req, link, data, **config):
        super().__init__(req, link, data, **config)
        self.app = data[APP_KEY]

    @staticmethod
    def _json(status, payload):
        return Response(status=status, content_type="application/json", charset="utf-8", text=json.dumps(payload))

    @route("sdncep", PREFIX + "/pricing/jobs/{jid}", methods=["PUT"])
    @guarded
    def put_job(self, req, jid, **_kwargs):
        if self.app.puts_in_flight >= MAX_CONCURRENT_PUTS:
            raise HttpError(503, f"overloaded: {self.app.puts_in_flight} job puts at once", {"Retry-After": "1"})
        self.app.puts_in_flight += 1
        try:
            spec = parse_job(jid, json_body(req))
            return self._json(200, self.app.put(spec))
        except JobRequestError as exc:
            raise HttpError(400, f"bad job: {exc}") from None
        except JobNotReady as exc:
            raise HttpError(503, f"job {jid}: {exc}", {"Retry-After": "1"}) from None
        except JobRefused as exc:
            raise HttpError(409, f"the network cannot carry job {jid}: {exc}") from None
        finally:
            self.app.puts_in_flight -= 1

    @route("sdncep", PREFIX + "/pricing/jobs/{jid}", methods=["DELETE"])
    @guarded
    def delete_job(self, req, jid, **_kwargs):
        try:
            number = parse_jid(jid)
            return self._json(200, self.app.delete(number))
        except JobRequestError as exc:
            raise HttpError(400, f"bad job: {exc}") from None
        except JobNotReady as exc:
            raise HttpError(503, f"job {jid}: {exc}", {"Retry-After": "1"}) from None

    @route("sdncep", PREFIX + "/pricing/jobs", methods=["GET"])
    @guarded
    def jobs(self, req, **_kwargs):
        return self._json(200, dict(self.app.summary(), at=time.time()))


_add_method_not_allowed(PricingRest)
