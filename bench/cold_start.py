#!/usr/bin/env python3
"""Lambda cold start, side by side (a benchmark, not a test).

Each round execs every given flixops binary as Lambda would (AWS_LAMBDA_RUNTIME_API set) against
a mock of the Lambda Runtime API, and measures the time from exec to the first invocation's
response (one real extraction run: the recorded #brexit page from a local X API mock, parquet and
checkpoint into moto's S3) and the process's peak RSS. Binaries alternate within each round, so
both see the same machine load. Everything listens on 127.0.0.1.

usage: cold_start.py [--rounds N] NAME=BINARY [NAME=BINARY ...]
Run it with the test venv's python (moto, boto3: scripts/test.sh makes it); bench/cold_start.sh
does. Prints a table and one JSON object per binary.
"""

import argparse
import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(REPO, "tests", "fixtures", "x-api", "brexit.jsonl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, what, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    sys.exit(f"{what} did not listen on 127.0.0.1:{port}")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a killed process drops its held `next` call: not an error here


def serve(handler):
    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def send(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def x_api():
    """Recent search answering every request with the first recorded page, without a next page."""
    page = json.loads(open(PAGE).readline())
    page.get("meta", {}).pop("next_token", None)
    body = json.dumps(page).encode()

    class XApi(Quiet):
        def do_GET(self):
            if self.path.startswith("/2/tweets/search/recent"):
                self.send(200, body, [("x-rate-limit-remaining", "449")])
            else:
                self.send(404, b'{"title":"Not Found"}')

    return serve(XApi)


class Invocation:
    """One cold start: the event handed out once, and when (and what) the response came back."""

    def __init__(self):
        self.request_id = str(uuid.uuid4())
        self.handed_out = False
        self.answered = threading.Event()
        self.at = None
        self.body = None
        self.error = False


def runtime_api(state):
    """The Lambda Runtime API (docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html): `next`
    hands out the round's one event, then holds every later call; the response is timed."""

    class Runtime(Quiet):
        def do_GET(self):
            invocation = state["current"]
            if self.path != "/2018-06-01/runtime/invocation/next" or invocation.handed_out:
                invocation.answered.wait(120)
                time.sleep(120)
                return
            invocation.handed_out = True
            deadline = int((time.time() + 900) * 1000)
            self.send(200, b"{}", [
                ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench"),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
            ])

        def do_POST(self):
            at = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            invocation = state["current"]
            self.send(202, b'{"status":"OK"}')
            if self.path.endswith("/response") or self.path.endswith("/error"):
                invocation.at, invocation.body = at, body
                invocation.error = self.path.endswith("/error") or "/init/" in self.path
                invocation.answered.set()

    return serve(Runtime)


def start_moto():
    port = free_port()
    launcher = os.path.join(REPO, "tests", "peers", "moto_server.py")
    child = subprocess.Popen([sys.executable, launcher, str(port)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_for(port, "moto")
    import boto3
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="bench")
    return child, port


def cold_start(binary, env, state):
    invocation = Invocation()
    state["current"] = invocation
    started = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not invocation.answered.wait(120):
        proc.kill()
        sys.exit(f"{binary}: no response within 120 s: {proc.stderr.read().decode(errors='replace')[-2000:]}")
    proc.kill()
    _, _, usage = os.wait4(proc.pid, 0)
    stderr = proc.stderr.read().decode(errors="replace")
    if invocation.error:
        sys.exit(f"{binary}: the invocation failed: {invocation.body.decode(errors='replace')}\n{stderr[-2000:]}")
    report = json.loads(invocation.body)
    if report.get("pages") != 1:
        sys.exit(f"{binary}: expected one page extracted, got {report}")
    return (invocation.at - started) * 1000, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (the files into the page cache)")
    parser.add_argument("binaries", nargs="+", metavar="NAME=BINARY")
    args = parser.parse_args()
    binaries = [b.split("=", 1) for b in args.binaries]
    for name, path in binaries:
        if not os.access(path, os.X_OK):
            sys.exit(f"{name}: {path} is not an executable")
    moto, moto_port = start_moto()
    x = x_api()
    state = {}
    runtime = runtime_api(state)
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime.server_port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent/bench-aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/bench-aws-credentials",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{moto_port}",
        "FLIXOPS_BUCKET": "bench",
        "FLIXOPS_QUERY": "#brexit",
        "FLIXOPS_X_API_BASE_URL": f"http://127.0.0.1:{x.server_port}",
        "FLIXOPS_X_TOKEN_ENV": "BENCH_X_TOKEN",
        "BENCH_X_TOKEN": "bench-token",
        "FLIXOPS_MAX_PAGES": "1",
    }
    results = {name: {"ms": [], "rss": []} for name, _ in binaries}
    try:
        for r in range(args.warmup + args.rounds):
            order = binaries if r % 2 == 0 else list(reversed(binaries))
            for name, path in order:
                # A fresh prefix: every run starts without a checkpoint, as a new function does.
                env = dict(base, FLIXOPS_PREFIX=f"bench-{r}-{name}")
                ms, rss = cold_start(path, env, state)
                if r >= args.warmup:
                    results[name]["ms"].append(ms)
                    results[name]["rss"].append(rss)
    finally:
        moto.kill()
    first = statistics.median(results[binaries[0][0]]["ms"])
    print(f"{'binary':<12} {'size MiB':>9} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'peak RSS MiB':>13} {'vs ' + binaries[0][0]:>10}")
    for name, path in binaries:
        ms, rss = results[name]["ms"], results[name]["rss"]
        size = os.path.getsize(path) / 2**20
        print(f"{name:<12} {size:>9.1f} {statistics.median(ms):>10.1f} {min(ms):>8.1f} {max(ms):>8.1f} "
              f"{statistics.median(rss):>13.1f} {statistics.median(ms) / first:>9.2f}x")
    for name, path in binaries:
        ms, rss = results[name]["ms"], results[name]["rss"]
        print(json.dumps({"name": name, "binary": path, "bytes": os.path.getsize(path), "rounds": args.rounds,
                          "median_ms": round(statistics.median(ms), 1), "min_ms": round(min(ms), 1),
                          "max_ms": round(max(ms), 1), "median_peak_rss_mib": round(statistics.median(rss), 1)}))


if __name__ == "__main__":
    main()
