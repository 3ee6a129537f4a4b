"""newsdesk as a deployment: the services of deploy/compose.yaml started on 127.0.0.1 with the commands written
there (a Chroma server, two `newsdesk bot --webhook` replicas, one `newsdesk watch` worker, `newsdesk ingest` and
`newsdesk remove` on an ingest host), each with its own empty NEWSDESK_DATA_DIR as separate hosts would have, all
sharing one PostgreSQL database (a fresh schema). The fake Bot API delivers updates to the replicas in turn, as the
reverse proxy in front of them would. Only the edges we do not own are fakes: Telegram's servers and the web site
the feed comes from."""

from __future__ import annotations

import itertools
import json
import re
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.deployment import BIN, SECRET, TOKEN, Deployment, compose_variables, deployment, wait_until
from tests.fakes.pages import serve_pages
from tests.fakes.telegram_server import FakeBotApi

pytestmark = pytest.mark.slow


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
        feed = {"NEWSDESK_FEEDS": f"{site}/feed.xml", "NEWSDESK_FEED_INTERVAL": "2"}
        variables = compose_variables(tmp_path, database_url, **feed)
        hosts = stack.enter_context(deployment(tmp_path, variables, fake))
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
