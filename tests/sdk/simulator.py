"""Starts `membersync simulate` for an SDK driver and prints the pass/fail table."""

import os
import pathlib
import queue
import subprocess
import tempfile
import threading
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent


class Failed(Exception):
    """An operation returned something other than what Clerk would."""


class Simulator:
    """`membersync simulate --state tests/sdk/state.json` on a free loopback port."""

    def __init__(self, binary, key, name):
        self.binary = binary
        self.key = key
        self.log_path = pathlib.Path(tempfile.gettempdir()) / f"membersync-sdk-{name}.log"
        self.api_url = None
        self.process = None

    def __enter__(self):
        env = dict(os.environ, CLERK_SECRET_KEY=self.key, RUST_LOG="membersync=info")
        env.pop("CLERK_SECRET_KEY_FILE", None)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [self.binary, "simulate", "--state", str(HERE / "state.json"), "--listen", "127.0.0.1:0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.process.stdout], daemon=True).start()
        deadline = time.monotonic() + 60
        while self.api_url is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                self.__exit__(None, None, None)
                raise SystemExit(f"the simulator did not start; its log: {self.log_path}")
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if "serving " in line:
                self.api_url = line.split("serving ", 1)[1].strip()
        return self

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def run_checks(title, checks, simulator):
    """Runs each (name, check) in order; prints a table; returns the number that failed."""
    results = []
    for name, check in checks:
        try:
            check()
            results.append((name, "pass", ""))
        except Failed as error:
            results.append((name, "FAIL", str(error)))
        except Exception as error:  # the SDK's own errors: validation, SDKError, …
            last = traceback.extract_tb(error.__traceback__)[-1]
            detail = f"{type(error).__name__}: {error}".replace("\n", " ")
            results.append((name, "FAIL", f"{detail[:300]} ({last.filename.split('/')[-1]}:{last.lineno})"))
    width = max(len(name) for name, _, _ in results)
    print(f"\n{title} against {simulator.api_url}")
    for name, outcome, detail in results:
        print(f"  {name:<{width}}  {outcome}  {detail}".rstrip())
    failed = sum(1 for _, outcome, _ in results if outcome != "pass")
    print(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        print(f"the simulator's log: {simulator.log_path}")
    return failed
