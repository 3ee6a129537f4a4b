"""Every setting in one typed place, read from the environment and `.env`.

`.env.example` lists each of them with its default; keep the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "newsdesk"


class Settings(BaseSettings):
    """Settings for every command; environment variables win over `.env`."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    data_dir: Path = Field(default_factory=_default_data_dir, alias="NEWSDESK_DATA_DIR")
    embedder: str = Field("e5-small", alias="NEWSDESK_EMBEDDER")
    collection: str = Field("articles", alias="NEWSDESK_COLLECTION")
    chunk_tokens: int = Field(200, alias="NEWSDESK_CHUNK_TOKENS", ge=32, le=2000)
    chunk_overlap: int = Field(40, alias="NEWSDESK_CHUNK_OVERLAP", ge=0, le=500)
    max_file_mb: float = Field(20.0, alias="NEWSDESK_MAX_FILE_MB", gt=0)
    fetch_timeout: float = Field(15.0, alias="NEWSDESK_FETCH_TIMEOUT", gt=0)
    # Web ingestion refuses loopback, private and link-local addresses unless this allows them (intranet, tests).
    allow_private_urls: bool = Field(False, alias="NEWSDESK_ALLOW_PRIVATE_URLS")
    feeds: str = Field("", alias="NEWSDESK_FEEDS")
    feed_interval: float = Field(300.0, alias="NEWSDESK_FEED_INTERVAL", ge=1)
    threads: int | None = Field(None, alias="NEWSDESK_THREADS", ge=1)
    # A sentence-transformers CrossEncoder (local folder or hub name) that reorders the retrieved passages.
    reranker: str = Field("", alias="NEWSDESK_RERANKER")
    chroma_host: str | None = Field(None, alias="CHROMA_HOST")
    chroma_port: int = Field(8000, alias="CHROMA_PORT")

    # The trained answer model: "shipped" (bot/answer_model.npz), a file made by `python -m training`, or "off"
    # for the cosine answerer, the default while the trained one measures worse (docs/answer-model.md).
    answer_model: str = Field("off", alias="NEWSDESK_ANSWER_MODEL")

    llm: str | None = Field(None, alias="LLM")
    llm_base_url: str | None = Field(None, alias="LLM_BASE_URL")
    llm_api_key: SecretStr | None = Field(None, alias="LLM_API_KEY")
    llm_timeout: float = Field(30.0, alias="LLM_TIMEOUT", gt=0)

    telegram_token: SecretStr | None = Field(None, alias="TELEGRAM_TOKEN")
    telegram_base_url: str = Field("https://api.telegram.org/bot", alias="TELEGRAM_BASE_URL")
    allowed_users: str = Field("", alias="NEWSDESK_ALLOWED_USERS")
    allowed_chats: str = Field("", alias="NEWSDESK_ALLOWED_CHATS")
    admin_users: str = Field("", alias="NEWSDESK_ADMIN_USERS")

    @property
    def feed_urls(self) -> list[str]:
        """NEWSDESK_FEEDS: feed URLs separated by commas or spaces."""
        return self.feeds.replace(",", " ").split()

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
