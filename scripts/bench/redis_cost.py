#!/usr/bin/env python3
"""Redis server cost per alert, from INFO commandstats, INFO cpu and SLOWLOG (stdlib only).

    redis_cost.py PORT begin            # CONFIG RESETSTAT, slowlog on (> 25 us), CPU mark
    redis_cost.py PORT end ALERTS       # the report, per alert

Called by scripts/bench/redis_cost.sh around a load. Script calls are named by the SHA1 of
src/store/redis/*.lua. Commands inside scripts are counted by commandstats too (and their
time is inside the EVALSHA's); `usec` is Redis's own clock (wall time inside the command), so
it grows when the machine is busy; used_cpu is CPU time of the whole server process.
"""
import glob
import hashlib
import os
import re
import socket
import sys

MARK = "/tmp/switchyard-redis-cost.cpu"


def conn(port):
    s = socket.create_connection(("127.0.0.1", port))
    return s, s.makefile("rb")


def call(s, f, *args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    s.sendall(b"".join(out))
    return read(f)


def read(f):
    line = f.readline()
    kind, rest = line[:1], line[1:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [read(f) for _ in range(n)]
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        return f.read(n + 2)[:-2]
    if kind == b":":
        return int(rest)
    if kind == b"-":
        raise RuntimeError(rest.decode())
    return rest


def cpu(s, f):
    info = call(s, f, "INFO", "cpu").decode()
    return sum(float(v) for k, v in re.findall(r"(used_cpu_(?:user|sys)):([\d.]+)", info))


def main():
    port, what = int(sys.argv[1]), sys.argv[2]
    s, f = conn(port)
    if what == "begin":
        call(s, f, "CONFIG", "RESETSTAT")
        call(s, f, "CONFIG", "SET", "slowlog-log-slower-than", "25")
        call(s, f, "CONFIG", "SET", "slowlog-max-len", "1000000")
        call(s, f, "SLOWLOG", "RESET")
        with open(MARK, "w") as m:
            m.write(str(cpu(s, f)))
        return
    alerts = int(sys.argv[3])
    used = cpu(s, f) - float(open(MARK).read())
    stats = call(s, f, "INFO", "commandstats").decode()
    slow = call(s, f, "SLOWLOG", "GET", "1000000")
    call(s, f, "CONFIG", "SET", "slowlog-log-slower-than", "10000")
    skip = {"config|resetstat", "config|set", "info", "slowlog|reset", "slowlog|get", "flushall"}
    rows = []
    for name, calls, usec in re.findall(r"cmdstat_(\S+?):calls=(\d+),usec=(\d+)", stats):
        if name not in skip:
            rows.append((name, int(calls), int(usec)))
    here = os.path.dirname(os.path.abspath(__file__))
    names = {}
    scripts = os.path.join(here, "../../src/store/redis")
    common = open(os.path.join(scripts, "common.lua"), "rb").read()
    for path in glob.glob(os.path.join(scripts, "*.lua")):
        body = open(path, "rb").read()
        # claim.lua and settle.lua are loaded with common.lua in front of them.
        for text in (body, common + body):
            names[hashlib.sha1(text).hexdigest()] = os.path.basename(path)
    per_script = {}
    for entry in slow:
        args = entry[3]
        if args[0].lower() == b"evalsha":
            key = names.get(args[1].decode(), args[1].decode()[:8])
            c, u = per_script.get(key, (0, 0))
            per_script[key] = (c + 1, u + entry[2])
    print(f"per alert ({alerts} alerts):")
    for name, calls, usec in sorted(rows, key=lambda r: -r[2]):
        print(f"  {name:16s} {calls / alerts:7.3f} calls  {usec / alerts:7.2f} us")
    nested = sum(c for n, c, _ in rows if n != "evalsha")
    evalsha = sum(c for n, c, _ in rows if n == "evalsha")
    print(f"  commands (inside scripts too): {nested / alerts:.2f}; script calls: {evalsha / alerts:.3f}")
    for key, (c, u) in sorted(per_script.items(), key=lambda kv: -kv[1][1]):
        print(f"  {key:16s} {c / alerts:7.3f} calls  {u / alerts:7.2f} us  ({u / c:.0f} us/call, slowlog > 25 us)")
    print(f"  used_cpu (user+sys): {used / alerts * 1e6:.2f} us")


if __name__ == "__main__":
    main()
