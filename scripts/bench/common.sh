# Shared by scripts/bench.sh and scripts/bench/redis_cost.sh (sourced, not run).

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits (10 s at most) until the URL answers 2xx.
wait_http() { # url
  for _ in $(seq 1 200); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "error: $1 did not answer" >&2; return 1
}

# The bench config: one alertmanager source, every alert routed to one signed webhook at
# the bench receiver (unless the `default:` list is given: `[]` routes nothing); a fifth
# argument is added at the end (e.g. a `routes:` section).
bench_config() { # listen_port store_yaml receiver_port [default_list] [more_yaml]
  cat <<Y
version: 1
server:
  listen: 127.0.0.1:$1
  max_body_bytes: 16777216
  max_inflight_requests: 4096
$2
sources:
  - { name: bench, kind: alertmanager }
endpoints:
  - name: hook
    kind: webhook
    url: http://127.0.0.1:$3/hook
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    retry: { schedule: [1s, 5s, 30s] }
default: ${4:-[hook]}
${5:-}
Y
}
