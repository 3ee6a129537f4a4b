"""The bot token and the LLM API key never reach logs, replies or errors shown to users.

`newsdesk bot` runs as a real process (as deployed: its own logging set-up and token filter) against the fake
Bot API and a fake LLM on 127.0.0.1, with logging at DEBUG for every library. The test makes things go wrong
(the LLM refuses the key and echoes it back, an unreadable upload, a refused /ingest, an unknown command, Bot
API calls that fail) and then greps everything the process wrote and every call it made to Telegram.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.fakes.llm_server import Error, FakeOpenAI
from tests.fakes.telegram_server import FakeBotApi

TOKEN = "424242:SECRET-bot-token-Zq9vX"
API_KEY = "sk-SECRET-llm-key-Zq9vX"
ADMIN = 7001
USER = 7002
# The process under test: DEBUG logging for every library on stderr, set up before `newsdesk bot` adds its own
# (basicConfig then keeps ours, and the bot's token filter is attached to it as in production).
LAUNCH = (
    "import logging, sys; "
    "logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format='%(levelname)s %(name)s: %(message)s'); "
    "sys.argv = ['newsdesk', 'bot']; "
    "from newsdesk.cli import main; main()"
)


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    """An LLM endpoint that refuses the key and, like some proxies do, quotes it back in the error."""
    with FakeOpenAI(default_reply="unused") as fake:
        fake.script(*[Error(401, f"Incorrect API key provided: {API_KEY}")] * 50)
        yield fake


@pytest.fixture
def telegram() -> Iterator[FakeBotApi]:
    with FakeBotApi(TOKEN, max_poll_seconds=0.5) as fake:
        yield fake


@pytest.mark.slow
def test_no_secret_reaches_logs_or_users(telegram: FakeBotApi, llm: FakeOpenAI, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "NEWSDESK_ALLOW_PRIVATE_URLS"}
    env.update(
        NEWSDESK_DATA_DIR=str(tmp_path / "data"),
        TELEGRAM_TOKEN=TOKEN,
        TELEGRAM_BASE_URL=telegram.base_url,
        LLM="openai:scripted",
        LLM_BASE_URL=llm.base_url,
        LLM_API_KEY=API_KEY,
        LLM_TIMEOUT="5",
        NEWSDESK_ADMIN_USERS=str(ADMIN),
        NEWSDESK_FEEDS="",
    )
    subprocess.run([sys.executable, "-m", "ingest", str(EXAMPLES)], env=env, check=True, capture_output=True)
    log_path = tmp_path / "bot.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH], env=env, cwd=tmp_path, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            exercise(telegram)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    logs = log_path.read_text(encoding="utf-8", errors="replace")

    assert llm.requests, "the LLM was asked (and failed)"
    assert "LLM failed" in logs and "DEBUG" in logs, "the logs were captured, at DEBUG"
    assert "update" in logs and "failed" in logs, "a handler's exception was logged"
    wire = json.dumps(telegram.calls(), ensure_ascii=False)
    for secret in (TOKEN, API_KEY, TOKEN.split(":", 1)[1], API_KEY.removeprefix("sk-")):
        assert secret not in logs, f"a secret reached the logs:\n{_around(logs, secret)}"
        assert secret not in wire, f"a secret reached Telegram:\n{_around(wire, secret)}"


def exercise(telegram: FakeBotApi) -> None:
    """Questions and mistakes that make the bot log, fail and apologise; each waits for its replies."""
    seen = {ADMIN: 0, USER: 0}

    def expect(chat: int, more: int = 1) -> list[dict]:
        seen[chat] += more
        return telegram.wait_for_messages(chat, seen[chat], timeout=120)

    telegram.send_text(USER, "How many trains were cancelled on the first day of the SNCR strike?")
    assert "412" in expect(USER)[-1]["text"]  # the LLM failed; the quoted answer stands in
    telegram.send_text(USER, "And who called the strike?")  # a follow-up: the LLM rewrite fails too
    expect(USER)
    telegram.send_text(USER, "/frobnicate")
    assert "Unknown command" in expect(USER)[-1]["text"]
    telegram.send_text(USER, "/ingest https://example.org/story")
    assert "admins" in expect(USER)[-1]["text"]
    telegram.send_document(ADMIN, "report.txt", b"\x00\x01\x02 binary \xff", "text/plain", user_id=ADMIN)
    assert "binary file" in expect(ADMIN)[-1]["text"]
    telegram.send_document(ADMIN, "notes.json", b'{"title": "x", "text": ' + b"[" * 5000, user_id=ADMIN)
    assert "malformed JSON" in expect(ADMIN)[-1]["text"]
    telegram.send_document(ADMIN, "tool.exe", b"MZ\x90\x00", user_id=ADMIN)
    assert "I can read" in expect(ADMIN)[-1]["text"]
    telegram.send_text(ADMIN, "/ingest http://127.0.0.1:9/admin http://169.254.169.254/latest/", user_id=ADMIN)
    assert "refused: 127.0.0.1 is a loopback address" in expect(ADMIN)[-1]["text"]
    telegram.fail_next("getFile", 400, description="Bad Request: file is temporarily unavailable")
    telegram.send_document(ADMIN, "later.md", b"# Title\n\nBody text here.", user_id=ADMIN)
    assert "went wrong" in expect(ADMIN)[-1]["text"]  # the handler raised; on_error apologised
    telegram.fail_next("sendMessage", 400, description="Bad Request: message text is empty")
    telegram.send_text(USER, "/help")
    assert "went wrong" in expect(USER)[-1]["text"]


def _around(text: str, secret: str, width: int = 300) -> str:
    at = text.find(secret)
    return text[max(0, at - width) : at + len(secret) + width]


def test_settings_never_show_secrets() -> None:
    """Settings hold both as SecretStr: their repr, str and errors print asterisks."""
    from newsdesk.settings import Settings

    settings = Settings(_env_file=None, TELEGRAM_TOKEN=TOKEN, LLM_API_KEY=API_KEY)  # type: ignore[call-arg]
    for shown in (repr(settings), str(settings), str(settings.model_dump()), settings.model_dump_json()):
        assert TOKEN not in shown and API_KEY not in shown
    assert ROOT.exists()
