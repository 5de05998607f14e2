"""Verifies one request switchyard delivered, as a receiver would, with reference code only:
the `standardwebhooks` package from PyPI, or Python's own `hmac`. Reads a JSON object on
stdin: {"scheme": "standard_webhooks", "secret": "whsec_...", "headers": {...}, "body": "..."}
or {"scheme": "hmac", "secret": "...", "header": "X-Sig", "prefix": "", "encoding": "hex",
"message": "body" | "ts.body" | "ts:body", "timestamp_header": "X-Ts", "headers": {...},
"body": "..."}. Prints "ok" and exits 0 when the signature verifies, else prints why, exits 1.
"""
import base64
import hashlib
import hmac
import json
import sys
import time


def main():
    req = json.load(sys.stdin)
    headers = {k.lower(): v for k, v in req["headers"].items()}
    body = req["body"].encode()
    if req["scheme"] == "standard_webhooks":
        from standardwebhooks.webhooks import Webhook

        Webhook(req["secret"]).verify(req["body"], headers)
        print("ok")
        return 0
    value = headers.get(req["header"].lower())
    if value is None:
        print("missing", req["header"])
        return 1
    prefix = req.get("prefix", "")
    if not value.startswith(prefix):
        print("no prefix", prefix, "in", value)
        return 1
    value = value[len(prefix):]
    message = body
    if req["message"] != "body":
        ts = headers.get(req["timestamp_header"].lower())
        if ts is None:
            print("missing", req["timestamp_header"])
            return 1
        if abs(time.time() - int(ts)) > 300:
            print("timestamp older than 5 minutes:", ts)
            return 1
        sep = "." if req["message"] == "ts.body" else ":"
        message = ts.encode() + sep.encode() + body
    digest = hmac.new(req["secret"].encode(), message, hashlib.sha256).digest()
    if req.get("encoding", "hex") == "base64":
        expected = base64.b64encode(digest).decode()
    else:
        expected = digest.hex()
    if not hmac.compare_digest(expected, value):
        print("signature does not match")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
