#!/usr/bin/env python3
"""The server under attack: `just bench-attack`.

    attack.py --pyeval BIN [--seconds N] [--json FILE]

Starts `BIN serve` on 127.0.0.1 and loads it with fresh evaluations from wrk (a load
generator this project did not write) at 64 connections, first alone, then while attackers
hold it: 500 idle connections, 50 that send a header a byte a second, 20 that ask for 4 MB
of output and read it a byte a second, and a client that keeps as many sessions open as the
server allows. Each phase reports requests per second, the latency percentiles wrk gives,
the non-2xx answers, and the server's peak resident memory. The run fails if the attacked
throughput is below 80% of the unattacked one, or the server dies.
"""

import argparse
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CONNECTIONS = 64
IDLE = 500
SLOW_HEADERS = 50
SLOW_READERS = 20
CODE = '{"code": "sum(range(1000))"}'


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """`pyeval serve` on a free loopback port."""

    def __init__(self, pyeval):
        self.proc = subprocess.Popen(
            [pyeval, "serve", "--listen", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            preexec_fn=raise_fd_limit)
        for line in self.proc.stderr:
            if line.startswith("pyeval: serving on http://"):
                host, port = line.strip().rsplit("/", 1)[1].split(":")
                self.addr = (host, int(port))
                break
        else:
            sys.exit("the server did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def request(self, method, path, body=None):
        request = urllib.request.Request(
            f"http://{self.addr[0]}:{self.addr[1]}{path}", method=method,
            data=body.encode() if body else None,
            headers={"Content-Type": "application/json"} if body else {})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")


class Attackers:
    """Threads that hold the server's resources until `stop`."""

    def __init__(self, server):
        self.server = server
        self.stopping = threading.Event()
        self.threads = []

    def start(self):
        for target, count in [(self.idle, IDLE), (self.slow_header, SLOW_HEADERS),
                              (self.slow_reader, SLOW_READERS), (self.sessions, 1)]:
            for _ in range(count):
                thread = threading.Thread(target=target, daemon=True)
                thread.start()
                self.threads.append(thread)

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def connect(self):
        try:
            return socket.create_connection(self.server.addr, timeout=30)
        except OSError:
            self.stopping.wait(0.5)
            return None

    def idle(self):
        """Connects and sends nothing; again when the server hangs up."""
        while not self.stopping.is_set():
            sock = self.connect()
            if sock:
                with sock:
                    sock.settimeout(1)
                    while not self.stopping.is_set():
                        try:
                            if not sock.recv(1024):
                                break
                        except socket.timeout:
                            continue
                        except OSError:
                            break

    def slow_header(self):
        """Sends a request's header a byte a second."""
        header = b"POST /v1/eval HTTP/1.1\r\nHost: localhost\r\n" + b"X-Slow: " + b"a" * 200
        while not self.stopping.is_set():
            sock = self.connect()
            if sock:
                with sock:
                    for byte in header:
                        if self.stopping.wait(1):
                            break
                        try:
                            sock.send(bytes([byte]))
                        except OSError:
                            break

    def slow_reader(self):
        """Asks for 4 MB of output and reads it a byte a second."""
        body = '{"code": "print(\'x\' * 4_000_000)", "limits": {"max_output_bytes": 4000000}}'
        request = (f"POST /v1/eval HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                   f"application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()
        while not self.stopping.is_set():
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            try:
                sock.settimeout(30)
                sock.connect(self.server.addr)
                sock.sendall(request)
                while not self.stopping.wait(1):
                    if not sock.recv(1):
                        break
            except OSError:
                self.stopping.wait(0.5)
            finally:
                sock.close()

    def sessions(self):
        """Keeps as many sessions open, each holding an instance, as the server allows."""
        held = []
        while not self.stopping.is_set():
            try:
                session = self.server.request("POST", "/v1/sessions")["id"]
                self.server.request("POST", f"/v1/sessions/{session}/eval", '{"code": "a = 1"}')
                held.append(session)
            except OSError:
                # Full (429): keep them alive instead.
                for session in held:
                    if self.stopping.is_set():
                        break
                    try:
                        self.server.request("POST", f"/v1/sessions/{session}/eval",
                                            '{"code": "a"}')
                    except OSError:
                        pass
                self.stopping.wait(1)


def wrk(server, seconds, script):
    """wrk's results for `seconds` of fresh evaluations at CONNECTIONS connections."""
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{seconds}s", "--latency",
         "-s", script, f"http://{server.addr[0]}:{server.addr[1]}/v1/eval"],
        capture_output=True, text=True, check=True).stdout
    result = {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])}
    for pct in ["50", "90", "99"]:
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", out).groups()
        result[f"p{pct}_ms"] = float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    result["non_2xx"] = int(non_2xx[1]) if non_2xx else 0
    return result


def phase(server, seconds, script):
    """wrk's results with the server's peak resident memory during the run."""
    peak = [server.rss_mib()]
    done = threading.Event()

    def sample():
        while not done.wait(0.25):
            peak.append(server.rss_mib())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = wrk(server, seconds, script)
    finally:
        done.set()
        sampler.join()
    result["peak_rss_mib"] = round(max(peak), 1)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyeval", required=True)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--json", help="merge the results into this JSON file")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    raise_fd_limit()
    server = Server(args.pyeval)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(f"wrk.method = 'POST'\nwrk.body = '{CODE}'\n"
                     "wrk.headers['Content-Type'] = 'application/json'\n")
        script.flush()
        phase(server, 3, script.name)  # warm-up
        calm = phase(server, args.seconds, script.name)
        attackers = Attackers(server)
        attackers.start()
        time.sleep(3)
        attacked = phase(server, args.seconds, script.name)
        attackers.stop()
    alive = server.proc.poll() is None
    server.proc.terminate()
    server.proc.wait(timeout=40)
    ratio = attacked["requests_per_second"] / calm["requests_per_second"]
    results = {"unattacked": calm, "attacked": attacked, "throughput_ratio": round(ratio, 3),
               "attackers": {"idle": IDLE, "slow_headers": SLOW_HEADERS,
                             "slow_readers": SLOW_READERS, "session_pinning": 1},
               "connections": CONNECTIONS, "seconds": args.seconds, "server_alive": alive}
    print(json.dumps(results, indent=2))
    if args.json:
        try:
            with open(args.json) as f:
                merged = json.load(f)
        except FileNotFoundError:
            merged = {}
        merged["server_under_attack"] = results
        with open(args.json, "w") as f:
            json.dump(merged, f, indent=2)
            f.write("\n")
    if not alive or ratio < 0.8:
        print(f"FAILED: attacked throughput is {ratio:.0%} of the unattacked run"
              + ("" if alive else "; the server died"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
