"""newsdesk as a deployment: the services of deploy/compose.yaml started on 127.0.0.1 with the commands written
there (a Chroma server, two `newsdesk bot --webhook` replicas, one `newsdesk watch` worker, `newsdesk ingest` and
`newsdesk remove` on an ingest host), each with its own empty NEWSDESK_DATA_DIR as separate hosts would have, all
sharing one PostgreSQL database (a fresh schema). The fake Bot API delivers updates to the replicas in turn, as the
reverse proxy in front of them would. Only the edges we do not own are fakes: Telegram's servers and the web site
the feed comes from."""

from __future__ import annotations

import itertools
import json
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

import pytest
import yaml

from tests.conftest import EXAMPLES, ROOT
from tests.fakes.pages import serve_pages
from tests.fakes.telegram_server import FakeBotApi

pytestmark = pytest.mark.slow
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
    """The hosts of one deployment: each service's process, started from its compose command, with its own data
    folder and log file."""

    def __init__(self, root: Path, variables: dict[str, str], extra: dict[str, str], stack: ExitStack) -> None:
        self.root, self.variables, self.extra, self.stack = root, variables, extra, stack
        self.processes: list[subprocess.Popen] = []

    def environment(self, name: str) -> tuple[list[str], dict[str, str]]:
        host = {**self.variables, "NEWSDESK_DATA_DIR": str(self.root / name / "data")}
        command, environment = service(name, host)
        return [str(BIN / command[0]), *command[1:]], {**os.environ, **environment, **self.extra}

    def start(self, name: str) -> subprocess.Popen:
        command, environment = self.environment(name)
        log: IO[bytes] = self.stack.enter_context((self.root / f"{name}.log").open("wb"))
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        self.stack.callback(stop, process)
        return process

    def run(self, name: str, *override: str) -> subprocess.CompletedProcess[str]:
        """A command on the host of service `name` (its compose command, or `override`), to completion."""
        command, environment = self.environment(name)
        if override:
            command = [str(BIN / override[0]), *override[1:]]
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def deployment(root: Path, database_url: str, fake: FakeBotApi, feed: str) -> Iterator[Deployment]:
    chroma_port, bot_ports = free_port(), (free_port(), free_port())
    variables = {
        "NEWSDESK_DATABASE_URL": database_url,
        "CHROMA_HOST": "127.0.0.1",
        "CHROMA_PORT": str(chroma_port),
        "CHROMA_PATH": str(root / "chroma" / "db"),
        "NEWSDESK_LISTEN": "127.0.0.1",
        "BOT_1_PORT": str(bot_ports[0]),
        "BOT_2_PORT": str(bot_ports[1]),
        "NEWSDESK_WEBHOOK_URL": "https://bot.example.org/telegram",
        "TELEGRAM_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "NEWSDESK_FEEDS": feed,
        "NEWSDESK_FEED_INTERVAL": "2",
        "ARTICLES": str(EXAMPLES),
    }
    # What only a test sets: Telegram is the fake, and the feed's site is on 127.0.0.1.
    extra = {"TELEGRAM_BASE_URL": fake.base_url, "NEWSDESK_ALLOW_PRIVATE_URLS": "1", "HF_HUB_OFFLINE": "1"}
    with ExitStack() as stack:
        hosts = Deployment(root, variables, extra, stack)
        chroma = hosts.start("chroma")
        wait_until(lambda: listening(chroma_port), "the Chroma server", 120, [chroma])
        for name in ("watch", "bot-1", "bot-2"):
            hosts.start(name)
        wait_until(lambda: all(map(listening, bot_ports)), "both replicas' listeners", 300, hosts.processes)
        fake.deliver_to(*(f"http://127.0.0.1:{port}/telegram" for port in bot_ports))
        yield hosts


def sources(hosts: Deployment) -> list[dict[str, Any]]:
    """The articles in the shared catalog, as `newsdesk sources --json` on the ingest host lists them."""
    listed = hosts.run("ingest", "newsdesk", "sources", "--json")
    assert listed.returncode == 0, listed.stderr
    return list(json.loads(listed.stdout))


def ask(fake: FakeBotApi, chat_id: int, text: str) -> str:
    """Send one message and wait for the one reply it gets."""
    count = len(fake.sent_messages(chat_id))
    fake.send_text(chat_id, text)
    return str(fake.wait_for_messages(chat_id, count + 1, timeout=180)[-1]["text"])


def test_replicas_a_feed_worker_and_an_ingest_host_share_one_database(
    database_url: str, tmp_path: Path, chroma_binary: None
) -> None:
    with ExitStack() as stack:
        fake = stack.enter_context(FakeBotApi(TOKEN, max_poll_seconds=0.5))
        site = stack.enter_context(serve_pages())
        hosts = stack.enter_context(deployment(tmp_path, database_url, fake, f"{site}/feed.xml"))
        # The worker polls the feed: its article reaches both replicas through the database and Chroma.
        wait_until(lambda: sources(hosts), "the feed worker's article", 300, hosts.processes)
        question = "What did the Sella port board approve?"
        first, second = ask(fake, 601, question), ask(fake, 602, question)
        assert all("Sella harbour to be dredged" in reply for reply in (first, second)), (first, second)

        # An ingest host adds the examples; a follow-up is understood by the other replica.
        ingested = hosts.run("ingest")
        assert ingested.returncode == 0, ingested.stderr
        asked = ask(fake, 603, "Which club did Yanis Koné join?")
        followed = ask(fake, 603, "And until when is his contract?")
        assert "Lindenau" in asked and "2029" in followed, (asked, followed)

        # `remove` on the ingest host stops the citations on both replicas.
        [kone] = [a for a in sources(hosts) if "Koné" in str(a["title"])]
        removed = hosts.run("ingest", "newsdesk", "remove", str(kone["id"]))
        assert removed.returncode == 0, removed.stderr
        after = [ask(fake, chat, "Which club did Yanis Koné join for 32 million euros?") for chat in (604, 605)]
        assert all("Lindenau" not in reply for reply in after), after

        delivered = fake.deliveries()
        replicas = {d["address"] for d in delivered}
        assert len(replicas) == 2 and all(d["status"] == 200 for d in delivered)
        addresses = [d["address"] for d in delivered]
        assert all(a != b for a, b in itertools.pairwise(addresses)), "delivered in turn"
        assert len(fake.calls("setWebhook")) == 1, "only bot-1 registers the webhook"
        logs = {name: hosts.log(name) for name in ("watch", "bot-1", "bot-2", "chroma")}
        pollers = [name for name, log in logs.items() if re.search(r"feed\.xml: 1 new", log)]
        idle = [name for name, log in logs.items() if "another process polls the feeds" in log]
        assert len(pollers) == 1 and len(idle) == 2, "one process of the three that name the feed polls it"
        assert not any(TOKEN in log or SECRET in log for log in logs.values()), "secrets stay out of the logs"


@pytest.fixture
def chroma_binary() -> None:
    if not (BIN / "chroma").exists():
        pytest.skip(f"no `chroma` command beside {sys.executable}")
