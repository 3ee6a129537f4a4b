"""Mistakes a user can make in settings and options: each is one line naming the culprit (and, for a setting,
whether it came from the environment or `.env`); a bug in our code keeps its traceback."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from newsdesk.cli import cli, friendly_errors
from newsdesk.settings import Settings
from tests.conftest import ROOT
from vectorstore.errors import UserError

ALIASES = {field.alias for field in Settings.model_fields.values()}


def error_line(args: list[str]) -> str:
    """The single line a failing command prints (exit code 1)."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize(
    ("name", "value", "command", "expected"),
    [
        ("NEWSDESK_CHUNK_TOKENS", "abc", ["sources"], "NEWSDESK_CHUNK_TOKENS=abc (from the environment): must be"),
        (
            "NEWSDESK_CHUNK_OVERLAP",
            "300",
            ["sources"],
            "NEWSDESK_CHUNK_OVERLAP=300 (from the environment) must be smaller than NEWSDESK_CHUNK_TOKENS=200",
        ),
        pytest.param(  # sentence-transformers takes seconds to import
            "NEWSDESK_EMBEDDER",
            "st:/nonexistent",
            ["search", "budget"],
            "NEWSDESK_EMBEDDER=st:/nonexistent (from the environment): no folder /nonexistent",
            marks=pytest.mark.slow,
        ),
        pytest.param(
            "NEWSDESK_EMBEDDER",
            "st:some-org/some-model",
            ["search", "budget"],
            "some-org/some-model is not a local folder, nor in the model cache: a hub name needs a network"
            " connection and HF_HUB_OFFLINE=0",
            marks=pytest.mark.slow,
        ),
        ("NEWSDESK_EMBEDDER", "bogus", ["sources"], "NEWSDESK_EMBEDDER=bogus (from the environment): unknown embedder"),
        ("LLM", "bogus", ["ask", "budget"], "LLM=bogus (from the environment): 'bogus' is not a provider:model name"),
        (
            "NEWSDESK_ALLOWED_USERS",
            "123, bob",
            ["sources"],
            "NEWSDESK_ALLOWED_USERS='123, bob' (from the environment): 'bob' is not a Telegram id",
        ),
        (  # a token may be in it: never shown
            "CHROMA_HEADERS",
            '["X-Chroma-Token: s3cret"]',
            ["sources"],
            "CHROMA_HEADERS=<hidden> (from the environment): must be a JSON object of header names and values",
        ),
        (
            "NEWSDESK_ALLOW_PRIVATE_URLS",
            "maybe",
            ["sources"],
            "NEWSDESK_ALLOW_PRIVATE_URLS=maybe (from the environment): must be a valid boolean",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, command: list[str], expected: str
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(name, value)
    assert expected in error_line(command)


def test_a_bad_setting_in_dot_env_says_so(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("NEWSDESK_CHUNK_TOKENS=abc\nNEWSDESK_THREADS=2\n")  # data_dir made tmp_path the cwd
    monkeypatch.setenv("NEWSDESK_THREADS", "0")
    assert error_line(["sources"]) == (
        "Error: NEWSDESK_CHUNK_TOKENS=abc (from .env): must be a valid integer, unable to parse string as an"
        " integer; NEWSDESK_THREADS=0 (from the environment): must be greater than or equal to 1"
    )


@pytest.mark.parametrize("command", ["search", "ask"])
@pytest.mark.parametrize("k", ["0", "-3"])
def test_k_below_one_is_a_usage_error(data_dir: Path, command: str, k: str) -> None:
    result = CliRunner().invoke(cli, [command, "budget", "-k", k])
    assert result.exit_code == 2 and f"Invalid value for '-k' / '--k': {k} is not in the range x>=1" in result.output


def test_only_user_errors_become_one_line() -> None:
    """A ValueError from our own code is a bug: it must keep its traceback, not read like a user's mistake."""

    @friendly_errors
    def bug() -> None:
        raise ValueError("an index went wrong")

    @friendly_errors
    def mistake() -> None:
        raise UserError("NEWSDESK_X=1 (from .env): must be 2")

    with pytest.raises(ValueError, match="an index went wrong"):
        bug()
    with pytest.raises(click.ClickException, match="NEWSDESK_X=1"):
        mistake()


@pytest.fixture
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting from the environment, a developer's `.env` or home folder: only what the test sets."""
    for alias in ALIASES:
        monkeypatch.delenv(alias, raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("clean_environment")
def test_list_settings_take_commas_or_spaces_from_the_environment_and_dot_env(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("NEWSDESK_FEEDS=https://a.example/rss, https://b.example/atom\n")
    monkeypatch.setenv("NEWSDESK_ADMIN_USERS", "123,-100456  7")
    settings = Settings()
    assert settings.feed_urls == ["https://a.example/rss", "https://b.example/atom"]
    assert settings.admin_users == {123, -100456, 7}
    assert settings.allowed_users == settings.allowed_chats == frozenset()


@pytest.mark.usefixtures("clean_environment")
def test_the_data_folder_follows_xdg_data_home_unless_newsdesk_data_dir_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Settings().data_dir == tmp_path / "home" / ".local" / "share" / "newsdesk"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/path")  # the XDG rule: only an absolute path counts
    assert Settings().data_dir == tmp_path / "home" / ".local" / "share" / "newsdesk"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert Settings().data_dir == tmp_path / "xdg" / "newsdesk"
    monkeypatch.setenv("NEWSDESK_DATA_DIR", "~/news")
    assert Settings().data_dir == tmp_path / "home" / "news"


@pytest.mark.usefixtures("clean_environment")
def test_env_example_lists_every_setting_with_its_default() -> None:
    """`.env.example` is the settings' documentation: each setting once, none that does not exist, each value the
    default (an empty value stands for a default that depends on the machine, or for none)."""
    documented = re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(encoding="utf-8"), re.MULTILINE)
    assert sorted(name for name in set(documented) if documented.count(name) > 1) == [], "documented twice"
    assert sorted(set(documented) - ALIASES) == [], "documented in .env.example but not a setting"
    assert sorted(ALIASES - set(documented)) == [], "settings missing from .env.example"
    from_example = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert from_example.model_dump() == Settings(_env_file=None).model_dump()  # type: ignore[call-arg]
