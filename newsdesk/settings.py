"""Every setting in one typed place, read from the environment and `.env`.

`.env.example` lists each of them with its default; keep the two in step.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vectorstore.errors import UserError

ENV_FILE = ".env"

# A list setting is written as items separated by commas or spaces ("123, -100456"), not as the JSON list
# pydantic-settings expects by default: NoDecode hands the text to the validator below.
TelegramIds = Annotated[frozenset[int], NoDecode]
URLs = Annotated[list[str], NoDecode]


def _default_data_dir() -> Path:
    """$XDG_DATA_HOME/newsdesk, or ~/.local/share/newsdesk where XDG_DATA_HOME is unset, empty or relative (the
    XDG base directory rule; platformdirs would add a dependency for these two lines)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    return (Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share") / "newsdesk"


class Settings(BaseSettings):
    """Settings for every command; environment variables win over `.env`."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    data_dir: Path = Field(default_factory=_default_data_dir, alias="NEWSDESK_DATA_DIR")
    embedder: str = Field("e5-small", alias="NEWSDESK_EMBEDDER")
    collection: str = Field("articles", alias="NEWSDESK_COLLECTION")
    chunk_tokens: int = Field(200, alias="NEWSDESK_CHUNK_TOKENS", ge=32, le=2000)
    chunk_overlap: int = Field(40, alias="NEWSDESK_CHUNK_OVERLAP", ge=0, le=500)
    max_file_mb: float = Field(20.0, alias="NEWSDESK_MAX_FILE_MB", gt=0)
    fetch_timeout: float = Field(15.0, alias="NEWSDESK_FETCH_TIMEOUT", gt=0)
    # Web ingestion refuses loopback, private and link-local addresses unless this allows them (intranet, tests).
    allow_private_urls: bool = Field(False, alias="NEWSDESK_ALLOW_PRIVATE_URLS")
    feed_urls: URLs = Field(default_factory=list, alias="NEWSDESK_FEEDS")
    feed_interval: float = Field(300.0, alias="NEWSDESK_FEED_INTERVAL", ge=1)
    threads: int | None = Field(None, alias="NEWSDESK_THREADS", ge=1)
    # A sentence-transformers CrossEncoder (local folder or hub name) that reorders the retrieved passages.
    reranker: str = Field("", alias="NEWSDESK_RERANKER")
    chroma_host: str | None = Field(None, alias="CHROMA_HOST")
    chroma_port: int = Field(8000, alias="CHROMA_PORT")
    chroma_tenant: str = Field("default_tenant", alias="CHROMA_TENANT")
    chroma_database: str = Field("default_database", alias="CHROMA_DATABASE")
    # HTTP headers for the Chroma server (auth), a JSON object of strings; see chroma_header_map.
    chroma_headers: SecretStr | None = Field(None, alias="CHROMA_HEADERS")
    # PostgreSQL as the system of record for several hosts (vectorstore/database.py); empty: SQLite files in data_dir.
    database_url: SecretStr | None = Field(None, alias="NEWSDESK_DATABASE_URL")

    # The trained answer model: "shipped" (the reader, bot/reader.npz), a file made by `python -m training`, or
    # "off" for the cosine answerer, the default until docs/quality.md shows the reader ahead end to end.
    answer_model: str = Field("off", alias="NEWSDESK_ANSWER_MODEL")

    llm: str | None = Field(None, alias="LLM")
    llm_base_url: str | None = Field(None, alias="LLM_BASE_URL")
    llm_api_key: SecretStr | None = Field(None, alias="LLM_API_KEY")
    llm_timeout: float = Field(30.0, alias="LLM_TIMEOUT", gt=0)

    telegram_token: SecretStr | None = Field(None, alias="TELEGRAM_TOKEN")
    telegram_base_url: str = Field("https://api.telegram.org/bot", alias="TELEGRAM_BASE_URL")
    # The secret Telegram sends with every webhook call; one fixed value shared by all webhook replicas.
    telegram_webhook_secret: SecretStr | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    allowed_users: TelegramIds = Field(frozenset(), alias="NEWSDESK_ALLOWED_USERS")
    allowed_chats: TelegramIds = Field(frozenset(), alias="NEWSDESK_ALLOWED_CHATS")
    admin_users: TelegramIds = Field(frozenset(), alias="NEWSDESK_ADMIN_USERS")

    def __init__(self, **values: Any) -> None:
        """Read the settings; a bad value is a SettingsError naming it and where it came from, not pydantic's
        multi-line report."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None

    @field_validator("feed_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        return _items(value) if isinstance(value, str) else value

    @field_validator("allowed_users", "allowed_chats", "admin_users", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """The ids, each checked here: pydantic's own error would name the bad item as if it were the setting."""
        if not isinstance(value, str):
            return value
        items = _items(value)
        for item in items:
            if not re.fullmatch(r"-?\d+", item):
                raise ValueError(f"{item!r} is not a Telegram id (use numbers separated by commas)")
        return items

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _secret_token_telegram_accepts(cls, value: SecretStr | None) -> SecretStr | None:
        """Telegram's rule for a webhook's secret_token, checked here so the error names the setting."""
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1-256 letters, digits, _ or -")
        return value

    @field_validator("chroma_headers")
    @classmethod
    def _headers_object(cls, value: SecretStr | None) -> SecretStr | None:
        """Checked when read, so a typo is a setting error, not a failure at the first request. The message
        never quotes the text: it holds a token."""
        if value is not None:
            _header_map(value.get_secret_value())
        return value

    def chroma_header_map(self) -> dict[str, str] | None:
        """CHROMA_HEADERS as the Chroma client takes them."""
        return _header_map(self.chroma_headers.get_secret_value()) if self.chroma_headers else None

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _overlap_below_chunk_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            overlap = setting("NEWSDESK_CHUNK_OVERLAP", self.chunk_overlap)
            raise ValueError(f"{overlap} must be smaller than {setting('NEWSDESK_CHUNK_TOKENS', self.chunk_tokens)}")
        return self


def _header_map(text: str) -> dict[str, str]:
    try:
        headers = json.loads(text)
    except ValueError:
        headers = None
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ValueError('must be a JSON object of header names and values, e.g. {"Authorization": "Bearer ..."}')
    return headers


def _items(text: str) -> list[str]:
    """The items of a list setting's text, separated by commas or spaces."""
    return text.replace(",", " ").split()


class SettingsError(UserError):
    """A setting with a value newsdesk cannot use."""


def origin(alias: str) -> str:
    """Where a setting's value comes from, as the settings read it: the environment wins over `.env`, and a
    setting in neither has its default. Names are matched regardless of case, as pydantic-settings does."""
    if any(name.upper() == alias.upper() and value for name, value in os.environ.items()):
        return "from the environment"
    if Path(ENV_FILE).is_file() and any(name.upper() == alias.upper() for name in dotenv_values(ENV_FILE)):
        return f"from {ENV_FILE}"
    return "the default"


def setting(alias: str, value: object) -> str:
    """A setting as an error names it: `NEWSDESK_CHUNK_TOKENS=abc (from the environment)`; text that would not
    read back as written (empty, with spaces) is quoted, secrets are not shown."""
    shown = str(value)
    if alias in _SECRETS:
        shown = "<hidden>"
    elif not shown or shown != "".join(shown.split()):
        shown = repr(shown)
    return f"{alias}={shown} ({origin(alias)})"


_SECRETS = {field.alias for field in Settings.model_fields.values() if "SecretStr" in str(field.annotation)}


def _describe(exc: ValidationError) -> str:
    """pydantic's errors as one line: each bad setting with its value, origin and what is wrong with it."""
    problems = []
    for error in exc.errors():
        if not error["loc"]:  # a check across settings: its message names them already
            problems.append(str(error.get("ctx", {}).get("error", error["msg"])))
            continue
        alias = str(error["loc"][0])
        reason = error["msg"].replace("Input should be", "must be").replace("Value error, ", "")
        problems.append(f"{setting(alias, error['input'])}: {reason}")
    return "; ".join(problems)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
