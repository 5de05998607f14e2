#!/usr/bin/env python3
"""The fault suite (run through scripts/faults.sh): the real switchyard binary under load while
something breaks, and a count of what happened to every alert it accepted.

Each scenario starts its own switchyard (and, for the redis store, its own redis-server with an
append-only file, fsync always), a counting receiver, and a sender that POSTs new alerts (one
dedup key each) at a steady rate over several connections. Mid-load it breaks something, then
waits until every accepted alert has arrived (or a deadline passes) and prints one line:

    scenario  sent  accepted  refused  delivered  lost  duplicated

accepted: answered 202; refused: any other answer or no answer (a client would send those
again); delivered: accepted alerts whose incident.created event the receiver answered 2xx;
lost: accepted and never delivered; duplicated: extra 2xx deliveries of an alert already
delivered (allowed: delivery is at least once, e.g. after kill -9). The suite exits non-zero on
any loss, and when the slow-client scenario's authenticated sender was refused.

Scenarios: kill9 (switchyard killed with SIGKILL mid-load and restarted, redis store),
kill9-file (the same with the file store),
redis-restart (redis-server killed and restarted), redis-freeze (SIGSTOP, then SIGCONT),
slow-clients (512 connections send part of a body and stall while an authenticated sender
keeps sending), hanging-endpoint (a second endpoint that accepts connections and never
answers), storm-429 and storm-429-redis (the receiver answers 429 with Retry-After: 1 for a
while, on each store).

Only loopback addresses are used; every loop is bounded in count and time.
"""

import argparse
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


class Receiver:
    """Counts deliveries of incident.created per dedup key (2xx answers only). Modes: `ok`
    answers 200 (after `delay` seconds: a slow receiver keeps deliveries in flight and queued); `hang` accepts and never answers; `storm` answers 429 with Retry-After: 1
    until `storm_until`, then 200."""

    def __init__(self, mode="ok", delay=0.0):
        self.mode = mode
        self.delay = delay
        self.storm_until = 0.0
        self.lock = threading.Lock()
        self.delivered = {}
        self.requests = 0
        self.answered_429 = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.requests += 1
                if receiver.mode == "hang":
                    time.sleep(3600)
                    return
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.mode == "storm" and time.monotonic() < receiver.storm_until:
                    with receiver.lock:
                        receiver.answered_429 += 1
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    event = json.loads(body)
                    key = event["data"]["incident"]["dedup_key"]
                    kind = event["type"]
                except (ValueError, KeyError, TypeError):
                    key, kind = None, None
                if kind == "incident.created":
                    with receiver.lock:
                        receiver.delivered[key] = receiver.delivered.get(key, 0) + 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A sender that gave up (its timeout) before the answer: not news here.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return dict(self.delivered)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Redis:
    def __init__(self, workdir):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=workdir)
        self.proc = None
        self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = wait_until("redis", self.ping, 20)
        if not ok:
            raise RuntimeError("redis-server did not start")

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(7) == b"+PONG\r\n"
        except OSError:
            return False

    def kill(self):
        if self.proc:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def freeze(self, frozen):
        self.proc.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)


class Switchyard:
    def __init__(self, binary, config, workdir, port):
        self.binary = binary
        self.port = port
        self.path = os.path.join(workdir, "routes-%d.yaml" % port)
        with open(self.path, "w") as f:
            f.write(config)
        self.log = open(os.path.join(workdir, "switchyard-%d.log" % port), "ab")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "serve", "-c", self.path], stdout=subprocess.DEVNULL,
            stderr=self.log, env=dict(os.environ, RUST_LOG="warn"))
        if not wait_until("switchyard", self.healthy, 30):
            raise RuntimeError("switchyard did not start; see %s" % self.log.name)

    def healthy(self):
        if self.proc.poll() is not None:
            raise RuntimeError("switchyard exited with %s; see %s" % (self.proc.returncode, self.log.name))
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            c.request("GET", "/healthz")
            return c.getresponse().status == 200
        except OSError:
            return False

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Sender:
    """POSTs `total` new alerts over `seconds` on `connections` connections, one alert a
    request; remembers which were accepted (202)."""

    def __init__(self, port, scenario, total, seconds, connections=4, source="open", token=None):
        self.port, self.scenario = port, scenario
        self.total, self.seconds = total, seconds
        self.connections, self.source, self.token = connections, source, token
        self.lock = threading.Lock()
        self.accepted = set()
        self.refused = 0
        self.statuses = {}
        self.threads = []

    def start(self):
        self.started = time.monotonic()
        for t in range(self.connections):
            th = threading.Thread(target=self.run, args=(t,), daemon=True)
            th.start()
            self.threads.append(th)
        return self

    def run(self, t):
        conn = None
        interval = self.seconds / max(1, self.total)
        for n in range(t, self.total, self.connections):
            due = self.started + n * interval
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            key = "%s-%06d" % (self.scenario, n)
            body = json.dumps({"title": "Fault %s" % key, "id": key}).encode()
            headers = {"Content-Type": "application/json"}
            if self.token:
                headers["Authorization"] = "Bearer " + self.token
            status = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                conn.request("POST", "/ingest/" + self.source, body, headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                status = "error"
                if conn is not None:
                    conn.close()
                conn = None
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 202:
                    self.accepted.add(key)
                else:
                    self.refused += 1

    def join(self):
        for th in self.threads:
            th.join()


def config(port, endpoints, store, body_timeout="5s"):
    eps = "".join(endpoints)
    names = ", ".join(e.split("name: ", 1)[1].split("\n", 1)[0] for e in endpoints)
    return """version: 1
server:
  listen: 127.0.0.1:%d
  body_timeout: %s
  shutdown_grace: 1s
sources:
  - name: open
    kind: generic
  - name: secure
    kind: generic
    auth: { bearer: f4ult-t0ken }
  - name: signed
    kind: generic
    auth: { hmac: { secret: s3cret } }
endpoints:
%sroutes:
  - name: all
    matchers: []
    to: [%s]
%s""" % (port, body_timeout, eps, names, store)


def endpoint(name, url, timeout="5s", circuit_failures=5, rate_limit=None):
    # A short circuit-breaker pause: a scenario's failures open it, and the drain should not
    # wait out the default 30 s (doubling per failed probe).
    return """  - name: %s
    kind: webhook
    url: %s
    timeout: %s
    retry: { schedule: [100ms, 200ms, 500ms, 1s, 1s, 2s, 2s, 2s, 5s, 5s, 5s, 10s, 10s, 10s] }
    circuit_breaker: { failures: %d, open_for: 1s }
""" % (name, url, timeout, circuit_failures) + (
        "    rate_limit: %s\n" % rate_limit if rate_limit else "")


def redis_store(redis, scenario):
    return "store:\n  kind: redis\n  url: %s\n  key_prefix: faults-%s-%d\n" % (
        redis.url, scenario, os.getpid())


MEMORY = "store:\n  kind: memory\n"


class Result:
    def __init__(self, name, sender, receiver, note=""):
        self.name, self.note = name, note
        delivered = receiver.snapshot()
        self.sent = sender.total
        self.accepted = len(sender.accepted)
        self.refused = sender.refused
        self.delivered = sum(1 for k in sender.accepted if k in delivered)
        self.lost = sorted(k for k in sender.accepted if k not in delivered)
        self.duplicated = sum(n - 1 for n in delivered.values() if n > 1)
        self.statuses = sender.statuses
        self.failed = bool(self.lost)
        self.extra_failure = None

    def line(self):
        s = "%-17s sent %5d  accepted %5d  refused %5d  delivered %5d  lost %4d  duplicated %4d" % (
            self.name, self.sent, self.accepted, self.refused, self.delivered, len(self.lost),
            self.duplicated)
        answers = ", ".join("%s: %d" % (k, v) for k, v in sorted(self.statuses.items(), key=str))
        s += "  (answers %s)" % answers
        if self.note:
            s += "  " + self.note
        if self.lost:
            s += "\n    LOST: " + " ".join(self.lost[:20]) + (" ..." if len(self.lost) > 20 else "")
        if self.extra_failure:
            s += "\n    FAILED: " + self.extra_failure
        return s


def drain(sender, receiver, timeout):
    sender.join()
    wait_until("every accepted alert delivered",
               lambda: all(k in receiver.snapshot() for k in list(sender.accepted)), timeout)


def at(sender, seconds):
    """Sleeps until `seconds` after the sender started."""
    delay = sender.started + seconds - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def scenario_kill9(ctx):
    redis = Redis(ctx.workdir)
    rx = Receiver(delay=0.5)
    port = free_port()
    # Paced below the load: at the kill, deliveries are queued as well as in flight.
    sy = Switchyard(ctx.binary, config(port, [endpoint("count", rx.url, rate_limit="50/s")],
                                       redis_store(redis, "kill9")), ctx.workdir, port)
    try:
        s = Sender(port, "kill9", ctx.total, ctx.seconds).start()
        at(s, ctx.seconds * 0.4)
        sy.kill9()
        sy.start()
        drain(s, rx, ctx.drain)
        return Result("kill9", s, rx, "(switchyard SIGKILLed at 40%, restarted; endpoint paced 50/s)")
    finally:
        sy.stop()
        redis.kill()
        rx.close()


def scenario_kill9_file(ctx):
    rx = Receiver(delay=0.5)
    port = free_port()
    data = os.path.join(ctx.workdir, "kill9-file-data")
    store = "store:\n  kind: file\n  path: %s\n" % data
    sy = Switchyard(ctx.binary, config(port, [endpoint("count", rx.url, rate_limit="50/s")],
                                       store), ctx.workdir, port)
    try:
        s = Sender(port, "kill9-file", ctx.total, ctx.seconds).start()
        at(s, ctx.seconds * 0.4)
        sy.kill9()
        sy.start()
        drain(s, rx, ctx.drain)
        return Result("kill9-file", s, rx,
                      "(file store: switchyard SIGKILLed at 40%, restarted; endpoint paced 50/s)")
    finally:
        sy.stop()
        rx.close()


def scenario_redis_restart(ctx):
    redis = Redis(ctx.workdir)
    rx = Receiver(delay=0.5)
    port = free_port()
    sy = Switchyard(ctx.binary, config(port, [endpoint("count", rx.url)],
                                       redis_store(redis, "redis-restart")), ctx.workdir, port)
    try:
        s = Sender(port, "redis-restart", ctx.total, ctx.seconds).start()
        at(s, ctx.seconds * 0.3)
        redis.kill()
        at(s, ctx.seconds * 0.5)
        redis.start()
        drain(s, rx, ctx.drain)
        return Result("redis-restart", s, rx, "(redis SIGKILLed at 30%, back at 50%)")
    finally:
        sy.stop()
        redis.kill()
        rx.close()


def scenario_redis_freeze(ctx):
    redis = Redis(ctx.workdir)
    rx = Receiver(delay=0.5)
    port = free_port()
    sy = Switchyard(ctx.binary, config(port, [endpoint("count", rx.url)],
                                       redis_store(redis, "redis-freeze")), ctx.workdir, port)
    try:
        s = Sender(port, "redis-freeze", ctx.total, ctx.seconds).start()
        at(s, ctx.seconds * 0.3)
        redis.freeze(True)
        at(s, ctx.seconds * 0.6)
        redis.freeze(False)
        drain(s, rx, ctx.drain)
        return Result("redis-freeze", s, rx, "(redis SIGSTOPped 30%-60%)")
    finally:
        sy.stop()
        redis.kill()
        rx.close()


def stalled_post(port, path, extra):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               "Content-Length: 50000\r\n%s\r\n" % (path, extra)).encode() + b" " * 10)
    return s


def scenario_slow_clients(ctx):
    rx = Receiver()
    port = free_port()
    # The stalled bodies are given longer than the run to arrive: they hang throughout.
    sy = Switchyard(ctx.binary, config(port, [endpoint("count", rx.url)], MEMORY,
                                       body_timeout="%ds" % (ctx.seconds + ctx.drain)),
                    ctx.workdir, port)
    stalled = []
    try:
        # 512 connections that send headers and 10 bytes of a signed body, then nothing.
        for _ in range(512):
            stalled.append(stalled_post(port, "/ingest/signed", "X-Signature: sha256=00\r\n"))
        s = Sender(port, "slow-clients", ctx.total, ctx.seconds, source="secure",
                   token="f4ult-t0ken").start()
        drain(s, rx, ctx.drain)
        # They were still hanging (unanswered, open) when the sender was done.
        hanging = 0
        for c in stalled:
            c.settimeout(0.01)
            try:
                c.recv(1)  # an answer, or the connection closed: not hanging
            except socket.timeout:
                hanging += 1
            except OSError:
                pass
        r = Result("slow-clients", s, rx,
                   "(512 stalled bodies, %d still hanging at the end; authenticated sender)"
                   % hanging)
        if r.refused:
            r.failed = True
            r.extra_failure = ("the authenticated sender was refused %d times while bodies stalled"
                               % r.refused)
        elif hanging < len(stalled):
            r.failed = True
            r.extra_failure = ("only %d of %d stalled bodies hung until the end: the scenario "
                               "did not hold" % (hanging, len(stalled)))
        return r
    finally:
        for c in stalled:
            c.close()
        sy.stop()
        rx.close()


def scenario_hanging_endpoint(ctx):
    rx = Receiver()
    hang = Receiver(mode="hang")
    port = free_port()
    sy = Switchyard(ctx.binary, config(port, [endpoint("count", rx.url),
                                              endpoint("hang", hang.url, timeout="1s")], MEMORY),
                    ctx.workdir, port)
    try:
        s = Sender(port, "hanging-endpoint", ctx.total, ctx.seconds).start()
        drain(s, rx, ctx.drain)
        return Result("hanging-endpoint", s, rx,
                      "(second endpoint never answers: %d requests hung)" % hang.requests)
    finally:
        sy.stop()
        rx.close()


def scenario_storm_429(ctx):
    rx = Receiver(mode="storm")
    port = free_port()
    # The circuit breaker kept shut: every lane meets the 429s and their Retry-After itself.
    sy = Switchyard(ctx.binary, config(port, [endpoint("count", rx.url, circuit_failures=1000000)],
                                       MEMORY), ctx.workdir, port)
    try:
        rx.storm_until = time.monotonic() + ctx.seconds * 0.6
        s = Sender(port, "storm-429", ctx.total, ctx.seconds).start()
        drain(s, rx, ctx.drain)
        return Result("storm-429", s, rx,
                      "(429 Retry-After: 1 for 60%% of the load: %d answered 429)" % rx.answered_429)
    finally:
        sy.stop()
        rx.close()


def scenario_storm_429_redis(ctx):
    redis = Redis(ctx.workdir)
    rx = Receiver(mode="storm")
    port = free_port()
    sy = Switchyard(ctx.binary, config(port, [endpoint("count", rx.url, circuit_failures=1000000)],
                                       redis_store(redis, "storm-429-redis")), ctx.workdir, port)
    try:
        rx.storm_until = time.monotonic() + ctx.seconds * 0.6
        s = Sender(port, "storm-429-redis", ctx.total, ctx.seconds).start()
        drain(s, rx, ctx.drain)
        return Result("storm-429-redis", s, rx,
                      "(as storm-429, redis store: %d answered 429)" % rx.answered_429)
    finally:
        sy.stop()
        redis.kill()
        rx.close()


SCENARIOS = {
    "kill9": scenario_kill9,
    "kill9-file": scenario_kill9_file,
    "redis-restart": scenario_redis_restart,
    "redis-freeze": scenario_redis_freeze,
    "slow-clients": scenario_slow_clients,
    "hanging-endpoint": scenario_hanging_endpoint,
    "storm-429": scenario_storm_429,
    "storm-429-redis": scenario_storm_429_redis,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", required=True)
    p.add_argument("--mode", choices=["quick", "full"], default="quick")
    p.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    args = p.parse_args()

    class Ctx:
        pass

    ctx = Ctx()
    ctx.binary = args.binary
    if args.mode == "quick":
        ctx.total, ctx.seconds, ctx.drain = 400, 5.0, 60.0
    else:
        ctx.total, ctx.seconds, ctx.drain = 6000, 30.0, 180.0
    failed = []
    with tempfile.TemporaryDirectory(prefix="switchyard-faults-") as workdir:
        ctx.workdir = workdir
        for name in args.only or list(SCENARIOS):
            started = time.monotonic()
            try:
                r = SCENARIOS[name](ctx)
            except Exception as e:  # a scenario that could not run is a failure
                print("%-17s ERROR: %s" % (name, e), flush=True)
                failed.append(name)
                continue
            print(r.line() + "  [%.1fs]" % (time.monotonic() - started), flush=True)
            if r.failed:
                failed.append(name)
                for log in sorted(os.listdir(workdir)):
                    if log.startswith("switchyard-") and log.endswith(".log"):
                        tail = open(os.path.join(workdir, log), "rb").read()[-2000:]
                        sys.stdout.write("    --- %s (tail) ---\n%s\n" % (log, tail.decode(errors="replace")))
    ran = len(args.only or SCENARIOS)
    if failed:
        print("failed scenarios: %s" % ", ".join(failed))
    else:
        print("every accepted alert was delivered in every scenario")
    print("faults: %d passed, %d failed" % (ran - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
