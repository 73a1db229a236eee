"""Fakes for driving the Ryu app without switches (after ryu/tests/unit/app)."""

from types import SimpleNamespace

import pytest
from ryu import cfg
from ryu.app.wsgi import WSGIApplication
from ryu.lib.packet import ethernet, ipv4, packet, udp
from ryu.ofproto import ofproto_v1_3, ofproto_v1_3_parser


class FakeDatapath:
    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser

    def __init__(self, dpid, ports=(1, 2, 3)):
        self.id = dpid
        self.ports = {p: SimpleNamespace(port_no=p) for p in ports}
        self.sent = []
        self._xid = 0

    def set_xid(self, msg):
        self._xid += 1
        msg.set_xid(self._xid)

    def send_msg(self, msg):
        self.sent.append(msg)

    def of_type(self, cls):
        return [m for m in self.sent if isinstance(m, cls)]


def frame(src, dst, ethertype, payload=b"", ip_src=None, udp_dst=None):
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=dst, src=src, ethertype=ethertype))
    if ip_src:
        pkt.add_protocol(ipv4.ipv4(src=ip_src, dst="10.255.255.255", proto=17))
        pkt.add_protocol(udp.udp(src_port=40000, dst_port=udp_dst))
    pkt.add_protocol(payload)
    pkt.serialize()
    return bytes(pkt.data)


def make_app():
    """The Ryu app as ryu-manager builds it, with the default settings and no switch."""
    try:
        cfg.CONF([], project="ryu")
    except cfg.Error:
        pass
    from controller.app import SdnCepController
    return SdnCepController(wsgi=WSGIApplication())


@pytest.fixture
def app():
    controller = make_app()
    yield controller
    for thread in controller._threads:
        thread.kill()
