"""An end device: asks the controller for a plan per task, then runs the task.

    python -m runtime.device --ip 10.0.0.2 --method sdn-cep --model alexnet \
        --count 20 --arrivals poisson --rate 2 --out d1.json

For every task it computes cheap image features, asks the controller for a plan
with a UDP request that the access switch hands to the controller as a packet-in
(protocol.plan_request), sends the image along the returned hops with
runtime.client, and writes one record per task: the plan, its predicted latency
and cost, the measured latency with its per-stage breakdown, and the controller's
overhead. Every task ends with a result or an explicit error: none is dropped.
"""

import argparse
import ipaddress
import json
import logging
import queue
import socket
import sys
import threading
import time
import uuid

import numpy as np

from protocol.plan_request import (PLAN_PORT, PlanProtocolError, PlanRequest, decode_reply,
                                      encode_request)
from runtime import retries
from runtime.client import Client, arrival_times
from runtime.images import DEFAULT_NAMES, load_images
from protocol.task_plan import Hop, WirePlan, parse_addr

log = logging.getLogger("runtime.device")
ARRIVALS = ("poisson", "fixed", "batch")
CONNECT_TIMEOUT_S, SEND_STALL_S = 2.0, 2.0
MIN_RETRY_AFTER_S, MAX_RETRY_AFTER_S = 0.05, 5.0   # bounds on a refusal's retry_after_s


class PlanUnavailable(RuntimeError):
    """The controller did not answer, or refused to plan."""


class PlanChannel:
    """UDP plan requests broadcast on the device's subnet; replies come by packet-out.

    A request is sent again every ``timeout`` s without an answer, and after a
    temporary refusal (the reply's ``retry_after_s``: the controller is still
    building its view, e.g. after a restart), until ``give_up_s`` have passed.
    """

    def __init__(self, ip, prefixlen=8, timeout=2.0, give_up_s=20.0):
        self.broadcast = str(ipaddress.ip_interface(f"{ip}/{prefixlen}").network.broadcast_address)
        self.timeout, self.give_up_s = timeout, give_up_s
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.sock.bind((ip, 0))

    def request(self, request):
        payload = encode_request(request)
        give_up = time.monotonic() + self.give_up_s
        attempts, refusal = 0, None
        while attempts == 0 or time.monotonic() < give_up:
            attempts += 1
            self.sock.sendto(payload, (self.broadcast, PLAN_PORT))
            reply = self._reply_to(request, min(self.timeout, max(give_up - time.monotonic(), 0.01)))
            if reply is None:
                continue
            if reply["ok"]:
                return reply
            refusal = reply.get("error", "refused")
            wait = reply.get("retry_after_s")
            if not isinstance(wait, (int, float)) or isinstance(wait, bool) or not wait == wait:   # NaN
                raise PlanUnavailable(refusal)
            wait = min(max(float(wait), MIN_RETRY_AFTER_S), MAX_RETRY_AFTER_S)
            if time.monotonic() + wait >= give_up:
                raise PlanUnavailable(refusal)
            time.sleep(wait)
        raise PlanUnavailable(f"{refusal} (still, after {self.give_up_s:.0f} s)" if refusal else
                              f"no plan reply in {self.give_up_s:.0f} s ({attempts} attempts)")

    def _reply_to(self, request, wait):
        """The reply to this request: its task and attempt (a retry reuses the task id;
        a late answer to an earlier attempt must not answer this one)."""
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(4096)
            except (socket.timeout, TimeoutError):
                return None
            try:
                reply = decode_reply(data)
            except PlanProtocolError as exc:
                log.warning("ignoring bad plan reply: %s", exc)
                continue
            if reply["task_id"] == request.task_id and reply.get("attempt", 0) == request.attempt:
                return reply
        return None

    def close(self):
        self.sock.close()


def features_of(image_chw):
    from agents.complexity import image_features
    return [round(float(v), 6) for v in image_features(np.transpose(image_chw, (1, 2, 0)))]


def prepare(names):
    """The images as sent (normalised float32, 3x224x224) and their features, by name."""
    pictures = load_images(names)
    return pictures, {name: features_of(x) for name, x in pictures}


def save_prepared(path, names=DEFAULT_NAMES):
    """Write :func:`prepare`'s output for ``--prepared``: a runner that starts devices
    many times saves each one the resizing and feature extraction (about 2 s)."""
    pictures, features = prepare(names)
    np.savez(path, names=np.array([name for name, _ in pictures]), images=np.stack([x for _, x in pictures]),
             features=np.array([features[name] for name, _ in pictures], dtype=float))


def load_prepared(path, names):
    """(pictures, features) of ``names`` from a :func:`save_prepared` file (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        known = [str(n) for n in data["names"]]
        missing = [n for n in names if n not in known]
        if missing:
            raise ValueError(f"no image {', '.join(missing)} in {path} (it has {', '.join(known)})")
        images, table = data["images"], data["features"]
        pictures = [(name, np.ascontiguousarray(images[known.index(name)], dtype=np.float32)) for name in names]
        return pictures, {name: [float(v) for v in table[known.index(name)]] for name in names}


def plan_from_reply(reply):
    return WirePlan(reply["model"], tuple(Hop(h["ip"], h["port"], h["start"], h["end"]) for h in reply["hops"]))


def _failed(base, code, message):
    return dict(base, status="error", error_code=code, error_message=message, latency_s=None, e2e_s=None)


def parse_hops(text):
    """'e1:0-5,cloud:5-11' -> (('e1', 0, 5), ('cloud', 5, 11)) for method 'fixed'."""
    hops = []
    for part in filter(None, text.split(",")):
        node, _, span = part.partition(":")
        start, _, end = span.partition("-")
        if not (node and start.isdigit() and end.isdigit()):
            raise ValueError(f"bad hop {part!r}; expected NODE:START-END")
        hops.append((node, int(start), int(end)))
    return tuple(hops)


def start_on_stdin(lines=None):
    """Say 'ready' on stdout, then read the start time (epoch seconds) from ``lines``.

    Lets a runner start several devices' arrival processes at the same instant,
    whatever each one's start-up took: every method then meets the same pattern of
    arrivals from all devices together, not only from each one.
    """
    print("ready", flush=True)
    line = (lines or sys.stdin).readline()
    try:
        return float(line)
    except ValueError:
        raise SystemExit(f"expected a start time on stdin, got {line.strip()!r}") from None


class Device:
    """An end device: its result listener, its plan channel and its pooled connections
    to the workers, kept across runs (a device that has run for a while has them)."""

    def __init__(self, ip, prefixlen=8, plan_timeout=2.0, prepared=None, images=DEFAULT_NAMES, connect=()):
        self.ip = ip
        self.pictures, self.features = prepared or prepare(images)
        self.channel = PlanChannel(ip, prefixlen, plan_timeout)
        # the watcher's own (replies match by task), quick to give up: it watches every task
        self.retry_channel = PlanChannel(ip, prefixlen, plan_timeout, give_up_s=2 * plan_timeout)
        # a worker on the LAN answers a connect in milliseconds, and a send moves unless
        # the path is down: fail fast on either, and the task is retried elsewhere
        self.client = Client(listen=(ip, 0), reply_host=ip, connect_timeout=CONNECT_TIMEOUT_S,
                             stall_timeout=SEND_STALL_S).start()
        for addr in connect:
            try:
                self.client.connect(addr)
            except OSError as exc:   # the task that goes there will say so, as send_failed
                log.warning("cannot connect to %s:%s now: %s", *addr, exc)

    def close(self):
        self.client.close()
        self.channel.close()
        self.retry_channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def run(self, method, model, count, arrivals="poisson", rate=1.0, seed=0, timeout=60.0, tag=None, hops=(),
            start=time.time):
        """Run ``count`` tasks; return one record per task. ``start()`` gives the time
        arrivals count from (default: at once). Tasks whose node or path fails are
        planned again (runtime.retries)."""
        client, ip = self.client, self.ip
        offsets = [0.0] * count if arrivals == "batch" else arrival_times(count, rate, arrivals, seed)
        records = []
        outbox = queue.Queue()     # planned tasks not sent yet; with the watcher's, those in flight

        def request_for(task_id, features, retry=None, attempt=0, previous=(), avoid=()):
            return PlanRequest(task_id, model, method, ip, features=features, reply_port=client.reply_port,
                               hops=hops, in_flight=outbox.unfinished_tasks + watcher.watching(),
                               retry=retry, attempt=attempt, previous=tuple(previous), avoid=tuple(avoid))

        def replan(task, kind, avoid):
            request = request_for(task.base["task_id"], self.features[task.base["image"]], kind,
                                  task.retries + 1, retries.plan_ips(task.plan), avoid)
            return self.retry_channel.request(request)

        def resend(task, reply):
            plan = plan_from_reply(reply)
            return plan, client.submit(plan, task.x, topk=1)

        watcher = retries.Watcher(client, replan, resend, _record, _failed_task, timeout)
        watching = threading.Thread(target=watcher.run, name="device-watch", daemon=True)
        watching.start()

        def send_loop():
            # Sends run here, so that planning the next task never waits for the
            # previous task's input to leave the device (one uplink: sends are serial).
            while (item := outbox.get()) is not None:
                base, arrived, plan, x = item
                task = retries.SentTask(base, arrived, x, plan, base.get("predicted_latency_s"), [])
                try:
                    task.ids.append(client.submit(plan, x, topk=1))
                    watcher.add(task)
                except (OSError, ValueError) as exc:
                    records.append(_failed(base, "send_failed", str(exc)))
                finally:
                    outbox.task_done()   # counted by the watcher from here (or ended)

        sender = threading.Thread(target=send_loop, name="device-send", daemon=True)
        sender.start()
        t0 = start()
        for i, offset in enumerate(offsets):
            if (delay := t0 + offset - time.time()) > 0:
                time.sleep(delay)
            name, x = self.pictures[i % len(self.pictures)]
            base = {"seq": i, "tag": tag, "method": method, "model": model, "image": name, "arrival_s": offset,
                    "task_id": f"{ip}-{uuid.uuid4().hex[:12]}"}
            arrived = base["arrived_at"] = time.time()
            try:
                reply = self.channel.request(request_for(base["task_id"], self.features[name]))
                plan = plan_from_reply(reply)
            except (PlanUnavailable, PlanProtocolError, KeyError, ValueError) as exc:
                records.append(_failed(base, "no_plan", str(exc)))
                continue
            base.update(plan=str(plan), q=reply.get("q"), plan_rtt_s=time.time() - arrived,
                        policy=reply.get("policy"), fallback=reply.get("fallback"),
                        controller_overhead_s=reply.get("controller_overhead_s"),
                        flows_confirmed=reply.get("flows_confirmed"),
                        overhead_parts_s=reply.get("overhead_parts_s"),
                        paths=reply.get("paths"), seen=reply.get("seen"), first_plan=str(plan),
                        **{f"predicted_{k}": v for k, v in reply["predicted"].items()})
            outbox.put((base, arrived, plan, x))
        outbox.put(None)
        sender.join()
        watcher.sending_done.set()
        watching.join()
        return sorted(records + watcher.records, key=lambda r: r["seq"])


def _record(task, result):
    record = dict(task.base, status=result.status, error_code=result.error_code,
                  error_message=result.error_message,
                  top1=result.classes[0] if result.classes else None,
                  latency_s=result.latency_s if result.status == "ok" else None,
                  e2e_s=result.t_done - task.arrived if result.status == "ok" else None)
    record.update(result.breakdown())
    return record


def _failed_task(task, code, message):
    return _failed(task.base, code, message)


def run(ip, method, model, count, arrivals="poisson", rate=1.0, seed=0, timeout=60.0, images=DEFAULT_NAMES,
        prefixlen=8, plan_timeout=2.0, tag=None, hops=(), start=time.time, prepared=None, connect=()):
    """One run of ``count`` tasks from a device set up for it (see :class:`Device`)."""
    with Device(ip, prefixlen, plan_timeout, prepared, images, connect) as device:
        return device.run(method, model, count, arrivals, rate, seed, timeout, tag, hops, start)


RUN_FIELDS = {"method": str, "model": str, "count": int, "arrivals": str, "rate": (int, float), "seed": int,
              "timeout": (int, float), "tag": str, "hops": str, "out": str}


def run_command(line):
    """A --serve command (one JSON object per line) as checked keyword arguments."""
    try:
        fields = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(fields, dict) or set(fields) - set(RUN_FIELDS):
        raise ValueError(f"a command is a JSON object with keys among {sorted(RUN_FIELDS)}")
    for key, kind in RUN_FIELDS.items():
        if key in fields and (not isinstance(fields[key], kind) or isinstance(fields[key], bool)):
            raise ValueError(f"{key} must be {kind}")
    command = dict(fields)
    missing = {"method", "model", "count", "out"} - set(command)
    if missing:
        raise ValueError(f"missing {sorted(missing)}")
    if command["count"] < 1 or command.get("rate", 1.0) <= 0 or command.get("arrivals", "poisson") not in ARRIVALS:
        raise ValueError("count must be >= 1, rate > 0 and arrivals one of " + ", ".join(ARRIVALS))
    command["hops"] = parse_hops(command.get("hops", ""))
    PlanRequest("check", command["model"], command["method"], "10.0.0.1", hops=command["hops"])
    return command


def serve(device, lines=None):
    """Run one command per line of ``lines`` (:func:`run_command`): say 'ready', read the
    start time, run, write the records to the command's ``out``, say 'done N FAILED'.
    A bad command is answered 'error: ...' and the device goes on serving."""
    lines = lines or sys.stdin
    while line := lines.readline():
        if not line.strip():
            continue
        try:
            command = run_command(line)
        except (ValueError, PlanProtocolError) as exc:
            print(f"error: {exc}", flush=True)
            continue
        out = command.pop("out")
        records = device.run(start=lambda: start_on_stdin(lines), **command)
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(records, handle, default=float)
        print(f"done {len(records)} {sum(r['status'] != 'ok' for r in records)}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run inference tasks from an end device.")
    parser.add_argument("--ip", required=True, help="this device's IP address")
    parser.add_argument("--prefixlen", type=int, default=8)
    parser.add_argument("--method", default="sdn-cep")
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--arrivals", choices=ARRIVALS, default="poisson")
    parser.add_argument("--rate", type=float, default=1.0, help="tasks/s for poisson and fixed arrivals")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="per-task deadline, seconds")
    parser.add_argument("--images", default=",".join(DEFAULT_NAMES))
    parser.add_argument("--tag", default=None, help="copied into every record (e.g. the bandwidth level)")
    parser.add_argument("--hops", default="", help="with --method fixed: NODE:START-END[,...] chosen here")
    parser.add_argument("--out", help="JSON records file (required unless --serve)")
    parser.add_argument("--prepared", help="images and features written by save_prepared() (skips making them)")
    parser.add_argument("--connect", default="", help="worker HOST:PORT list to connect to while setting up")
    parser.add_argument("--sync-start", action="store_true",
                        help="once set up, print 'ready' and read the start time (epoch s) from stdin")
    parser.add_argument("--serve", action="store_true",
                        help="stay up and run one run per JSON line on stdin (runtime.device.run_command), "
                             "keeping the result listener and the connections between runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.serve and not args.out:
        parser.error("--out is required unless --serve")
    if args.count < 1 or args.rate <= 0:
        parser.error("--count must be >= 1 and --rate > 0")
    try:
        hops = parse_hops(args.hops)
        PlanRequest("check", args.model, args.method, args.ip, hops=hops)
    except (ValueError, PlanProtocolError) as exc:
        parser.error(str(exc))
    try:
        connect = tuple(parse_addr(a) for a in filter(None, args.connect.split(",")))
    except ValueError as exc:
        parser.error(f"--connect: {exc}")
    images = tuple(args.images.split(","))
    prepared = None
    if args.prepared:
        try:
            prepared = load_prepared(args.prepared, images)
        except (OSError, ValueError, KeyError) as exc:
            parser.error(f"--prepared {args.prepared}: {exc}")
    if args.serve:
        with Device(args.ip, args.prefixlen, prepared=prepared, images=images, connect=connect) as device:
            serve(device)
        return 0
    records = run(args.ip, args.method, args.model, args.count, args.arrivals, args.rate, args.seed,
                  args.timeout, images, args.prefixlen, tag=args.tag, hops=hops,
                  start=start_on_stdin if args.sync_start else time.time, prepared=prepared, connect=connect)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(records, handle, default=float)
    failed = sum(r["status"] != "ok" for r in records)
    print(f"{len(records)} tasks, {failed} failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
