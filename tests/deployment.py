"""Starts the services of deploy/compose.yaml on 127.0.0.1 with the commands written there, each as a separate
host would run it (its own NEWSDESK_DATA_DIR and log file): tests/test_deployment.py and bench/deployment.py use
it, so what they run is what the compose file says."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import yaml

from tests.conftest import EXAMPLES, ROOT
from tests.fakes.telegram_server import FakeBotApi

COMPOSE = ROOT / "deploy" / "compose.yaml"
BIN = Path(sys.executable).parent
TOKEN = "424242:deployment-test-token"
SECRET = "deployment_secret-1"
_VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolated(value: str, variables: dict[str, str]) -> str:
    """`${NAME}` and `${NAME:-default}` replaced as docker compose does; a variable with neither a value nor a
    default is an error here (compose would pass an empty string and the service would fail obscurely)."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if variables.get(name):
            return variables[name]
        if default is None:
            raise KeyError(f"{COMPOSE.name} needs ${{{name}}}")
        return default

    return _VARIABLE.sub(replace, value)


def service(name: str, variables: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command and environment of one service of deploy/compose.yaml, interpolated with `variables`."""
    spec = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"][name]
    command = [interpolated(str(part), variables) for part in spec["command"]]
    environment = {key: interpolated(str(value), variables) for key, value in spec["environment"].items()}
    return command, environment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], Any], what: str, timeout: float, processes: list[subprocess.Popen]) -> Any:
    """Poll `condition` until it gives something true; fail naming `what` (or the process that died) if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"{process.args[:3]} exited with {process.returncode} while waiting for {what}")
        result = condition()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Deployment:
    """The hosts of one deployment: processes started from their service's compose command, each host with its
    own data folder and log file. `variables` are the compose file's; `extra` is environment only a test or a
    benchmark sets (the fake Telegram's address)."""

    def __init__(self, root: Path, variables: dict[str, str], extra: dict[str, str], stack: ExitStack) -> None:
        self.root, self.variables, self.extra, self.stack = root, variables, extra, stack
        self.processes: list[subprocess.Popen] = []

    def environment(self, name: str, host: str, **variables: str) -> tuple[list[str], dict[str, str]]:
        own = {**self.variables, **variables, "NEWSDESK_DATA_DIR": str(self.root / host / "data")}
        command, environment = service(name, own)
        return [str(BIN / command[0]), *command[1:]], {**os.environ, **environment, **self.extra}

    def start(self, name: str, host: str | None = None, **variables: str) -> subprocess.Popen:
        """Service `name` running on `host` (default: a host of its own named after it)."""
        host = host or name
        command, environment = self.environment(name, host, **variables)
        log: IO[bytes] = self.stack.enter_context((self.root / f"{host}.log").open("wb"))
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        self.stack.callback(stop, process)
        return process

    def run(self, name: str, *override: str) -> subprocess.CompletedProcess[str]:
        """A command on the host of service `name` (its compose command, or `override`), to completion."""
        command, environment = self.environment(name, name)
        if override:
            command = [str(BIN / override[0]), *override[1:]]
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)

    def log(self, host: str) -> str:
        return (self.root / f"{host}.log").read_text(encoding="utf-8", errors="replace")

    def start_chroma(self) -> None:
        port = int(self.variables["CHROMA_PORT"])
        chroma = self.start("chroma")
        wait_until(lambda: listening(port), "the Chroma server", 120, [chroma])

    def start_replicas(self, fake: FakeBotApi, count: int = 2) -> None:
        """bot-1 (which registers the webhook) and, with `count` 2, bot-2; the fake delivers to them in turn."""
        names = ["bot-1", "bot-2"][:count]
        ports = [int(self.variables[f"BOT_{n}_PORT"]) for n in range(1, count + 1)]
        for name in names:
            self.start(name)
        wait_until(lambda: all(map(listening, ports)), "the replicas' listeners", 300, self.processes)
        fake.deliver_to(*(f"http://127.0.0.1:{port}/telegram" for port in ports))


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def compose_variables(root: Path, database_url: str, **more: str) -> dict[str, str]:
    """The compose file's variables for a deployment on 127.0.0.1 under `root`: free ports, one database."""
    return {
        "NEWSDESK_DATABASE_URL": database_url,
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(free_port()),
        "CHROMA_PATH": str(root / "chroma" / "db"),
        "NEWSDESK_LISTEN": "127.0.0.1",
        "BOT_1_PORT": str(free_port()),
        "BOT_2_PORT": str(free_port()),
        "NEWSDESK_WEBHOOK_URL": "https://bot.example.org/telegram",
        "TELEGRAM_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "ARTICLES": str(EXAMPLES),
        **more,
    }


def fake_edges(fake: FakeBotApi) -> dict[str, str]:
    """What only a test sets: Telegram is the fake, and web pages are served on 127.0.0.1."""
    return {"TELEGRAM_BASE_URL": fake.base_url, "NEWSDESK_ALLOW_PRIVATE_URLS": "1", "HF_HUB_OFFLINE": "1"}


@contextmanager
def deployment(root: Path, variables: dict[str, str], fake: FakeBotApi) -> Iterator[Deployment]:
    """A Chroma server, the feed worker and two replicas, running until the block ends."""
    with ExitStack() as stack:
        hosts = Deployment(root, variables, fake_edges(fake), stack)
        hosts.start_chroma()
        hosts.start("watch")
        hosts.start_replicas(fake)
        yield hosts
