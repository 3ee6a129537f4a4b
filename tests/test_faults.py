"""Faults outside our code: a Chroma server that goes away and comes back, a full disk, a read-only data folder.
Each must be a clear error naming the cause, never a traceback, and nothing stored may be lost."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest

from bot.engine import AnswerEngine
from ingest.articles import Article, LoadError
from ingest.pipeline import Ingester, load_paths
from tests.conftest import EXAMPLES, ROOT, server_collection, server_port
from tests.fakes.telegram_server import FakeBotApi
from tests.test_telegram import TOKEN, bot_settings, replies, run_bot, writing_rows
from vectorstore.chroma import StoreUnavailable
from vectorstore.database import connect
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.store import Store

STRIKE = "How many trains were cancelled on the first day of the SNCR strike?"


class ChromaServer:
    """A real `chroma run` on 127.0.0.1 that a test can stop and start again on the same port and folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        chroma = Path(sys.executable).parent / "chroma"
        command = [str(chroma), "run", "--path", str(self.folder), "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=1).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("chroma run did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    chroma = ChromaServer(tmp_path / "server")
    chroma.start()
    yield chroma
    chroma.stop()


def server_store(data_dir: Path, embedder: NewsEmbeddings, server: ChromaServer) -> Store:
    return Store(data_dir, embedder, "faults", chroma_host="127.0.0.1", chroma_port=server.port)


def test_bot_says_try_again_later_while_the_server_is_away_and_recovers(
    embedder: NewsEmbeddings, server: ChromaServer, tmp_path: Path
) -> None:
    store = server_store(tmp_path / "data", embedder, server)
    Ingester(store).ingest(load_paths([EXAMPLES], 10**7))

    async def scenario() -> list[dict]:
        fake.send_text(801, STRIKE)
        await replies(fake, 801, 1)
        await asyncio.to_thread(server.stop)
        fake.send_text(801, STRIKE)
        await replies(fake, 801, 2)
        await asyncio.to_thread(server.start)
        fake.send_text(801, STRIKE)
        return await replies(fake, 801, 3)

    with FakeBotApi(TOKEN, max_poll_seconds=0.5) as fake:
        before, during, after = run_bot(bot_settings(tmp_path, fake), AnswerEngine(store), scenario)
    assert "412" in before["text"]
    assert during["text"] == "I cannot reach my article store right now; please try again later."
    assert "412" in after["text"], "the same running bot answers once the server is back"


def test_server_lost_mid_ingest_is_a_clear_error_and_a_rerun_completes(
    embedder: NewsEmbeddings, server: ChromaServer, tmp_path: Path
) -> None:
    articles = list(load_paths([EXAMPLES], 10**7))

    def server_dies_halfway() -> Iterator[Article | LoadError]:
        for number, article in enumerate(articles):
            if number == len(articles) // 2:
                server.stop()
            yield article

    store = server_store(tmp_path / "data", embedder, server)
    with pytest.raises(StoreUnavailable, match=f"lost the Chroma server at 127.0.0.1:{server.port}"):
        Ingester(store).ingest(server_dies_halfway())
    server.start()
    report = Ingester(store).ingest(articles)
    assert report.failed == 0 and report.new + report.updated + report.unchanged == len(articles)
    clean = Store(tmp_path / "clean", embedder)
    Ingester(clean).ingest(articles)
    assert store.vectors.ids() == store.catalog.chunk_ids() == clean.catalog.chunk_ids()


def test_interrupted_ingest_does_not_wait_for_the_next_batch(
    embedder: NewsEmbeddings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the next article is still being fetched (a slow page or feed): the interrupt comes through
    at once, the fetch is never waited for, and what was written is whole."""
    store = Store(tmp_path / "data", embedder)
    short = Article(id="short", title="Ferry", text="The Orlen ferry sails again on Monday.")
    embedded, fetching, ended, release = (threading.Event() for _ in range(4))
    pressed: list[float] = []

    def ctrl_c(signum: int, frame: object) -> None:
        if not pressed:  # only the first press interrupts; the rest land while the test checks what it did
            pressed.append(time.monotonic())
            raise KeyboardInterrupt

    def embed(texts: list[str]):  # type: ignore[no-untyped-def]
        vectors = embedder.encode_passages(texts)
        embedded.set()
        return vectors

    def slow_source() -> Iterator[Article]:
        yield short
        fetching.set()
        release.wait()  # the next page never arrives until the test is over
        yield Article(id="late", title="Port", text="The port reopens.")

    def press_ctrl_c() -> None:
        """Press until it is handled: a signal that lands just before Python blocks on a lock is only handled
        once the lock is free (CPython's race, not ours), as a user who presses once more would find."""
        if embedded.wait(60) and fetching.wait(60):
            deadline = time.monotonic() + 60
            while not pressed and time.monotonic() < deadline:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]
                time.sleep(0.2)
        if not ended.wait(60):
            release.set()  # an ingest that waits for the page gets it, so the test fails instead of hanging

    monkeypatch.setattr("ingest.pipeline.EMBED_BATCH", 1)
    monkeypatch.setattr(store, "embed_passages", embed)
    previous = signal.signal(signal.SIGINT, ctrl_c)  # also where the suite runs as a background job (SIGINT ignored)
    presser = threading.Thread(target=press_ctrl_c)
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            Ingester(store).ingest(slow_source())
        ended.set()
        assert pressed and not release.is_set(), "the interrupt waited for the next article"
    finally:
        pressed.append(0.0)  # the presser stops, whatever happened
        ended.set()
        presser.join()
        signal.signal(signal.SIGINT, previous)
        release.set()
    written = store.catalog.chunk_ids()
    assert written == store.vectors.ids(), "the catalog and Chroma agree"
    assert written in (set(), {c.id for c in Ingester(store).chunks_of(short)}), "the written article is whole"


def newsdesk(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`newsdesk ARGS` as a separate process, as a user runs it."""
    environment = {**os.environ, "NEWSDESK_DATA_DIR": str(data_dir), **env}
    return subprocess.run(
        [sys.executable, "-m", "newsdesk.cli", *args], env=environment, cwd=ROOT, capture_output=True, text=True
    )


@pytest.mark.slow
def test_ingest_without_a_server_says_so(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    result = newsdesk(
        "ingest", str(EXAMPLES), data_dir=tmp_path / "data", CHROMA_HOST="127.0.0.1", CHROMA_PORT=str(closed_port)
    )
    assert result.returncode == 1
    assert f"Error: cannot reach the Chroma server at 127.0.0.1:{closed_port} (CHROMA_HOST)" in result.stderr
    assert "Traceback" not in result.stderr


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small file system of our own, to fill up or make read-only."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@pytest.mark.slow
def test_a_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    """More articles than a 1 MB disk holds: the store fills it mid-ingest."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for n in range(120):
        lines = [
            f"Report {n}, paragraph {p}: the council of town {n} met on day {p} to discuss item {n * p}."
            for p in range(8)
        ]
        (corpus / f"report-{n}.txt").write_text(f"title Council report {n}\n\n" + "\n".join(lines), encoding="utf-8")
    with tmpfs(tmp_path / "disk", "1m") as disk:
        result = newsdesk("ingest", str(corpus), data_dir=disk / "data")
    assert result.returncode == 1
    assert f"Error: cannot write to the data folder: the disk holding {disk / 'data'} is full" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_read_only_data_folder_is_a_clear_error(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk", "64m") as disk:
        data_dir = disk / "data"
        assert newsdesk("ingest", str(EXAMPLES / "en"), data_dir=data_dir).returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        results = [
            newsdesk("ingest", str(EXAMPLES / "fr"), data_dir=data_dir),
            newsdesk("ask", STRIKE, data_dir=data_dir),
        ]
    for result in results:
        assert result.returncode == 1
        assert f"Error: cannot write to the data folder: {data_dir} is on a read-only file system" in result.stderr
        assert "Traceback" not in result.stderr


def start_writing(
    command: list[str], env: dict[str, str], rows: Callable[[], set[tuple[str, str]]]
) -> subprocess.Popen[bytes] | None:
    """Start an ingest and return it once its write protocol has begun (a new `writing` row, from this run's
    edition, in `rows()`); None when it ended without writing."""
    before = rows()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not rows() - before:
        if process.poll() is not None:
            return None
        time.sleep(0.005)
    return process


def database_writing_rows(url: str, collection: str) -> set[tuple[str, str]]:
    """writing_rows for a catalog in PostgreSQL."""
    from vectorstore.pg_catalog import table_prefix

    with connect(url) as db:
        table = f'"{table_prefix(collection)}_documents"'
        if db.execute("SELECT to_regclass(%s)", (table,)).fetchone() == (None,):
            return set()
        return set(db.execute(f"SELECT id, content_hash FROM {table} WHERE state = 'writing'"))  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("catalog", ["sqlite", "postgres"])
def test_ingest_killed_inside_the_write_protocol_ends_like_a_clean_run(
    data_dir: Path, tmp_path: Path, request: pytest.FixtureRequest, catalog: str
) -> None:
    """20 times: edit the articles (so every one must be rewritten), start `python -m ingest`, wait until it has
    begun writing and SIGKILL it at a random moment of the write (a clean run measures how long that lasts).
    Each edition adds a few chunks to every article, so the first embedding batch ends inside an article and
    that article stays `writing` while the whole second batch is embedded: the write lasts a second, not the
    few milliseconds of one batch's write, and a busy machine's jitter cannot make the kills miss it. A kill that
    comes after the write has ended (a shared CPU can run twice as fast as it did for the clean run) sets the
    latest moment for the kills after it.
    At least half the kills must leave `writing` rows, which proves they landed between the protocol's steps;
    a last complete run must then leave exactly the chunks of a clean run: nothing lost, nothing stale from an
    interrupted edition, Chroma and the catalog in step. With the catalog in PostgreSQL the vectors are on the
    Chroma server when there is one (CHROMA_TEST_PORT), as several hosts would have them."""
    corpus, clean_dir = tmp_path / "corpus", tmp_path / "clean"
    shutil.copytree(EXAMPLES, corpus)
    originals = {p: p.read_text(encoding="utf-8") for p in corpus.rglob("*") if p.suffix in (".txt", ".md")}

    def edition(number: int) -> None:
        notes = " ".join(f"Edition {number}, note {n}: the desk checked paragraph {n} again today." for n in range(60))
        for path, text in originals.items():
            path.write_text(f"{text}\n\n{notes}\n", encoding="utf-8")

    env = {**os.environ, "NEWSDESK_DATA_DIR": str(data_dir)}
    clean_env = {**env, "NEWSDESK_DATA_DIR": str(clean_dir)}
    if catalog == "sqlite":
        rows, clean_rows = partial(writing_rows, data_dir), partial(writing_rows, clean_dir)
    else:
        url = request.getfixturevalue("database_url")
        collection = server_collection(data_dir)
        env |= {"NEWSDESK_DATABASE_URL": url, "NEWSDESK_COLLECTION": collection}
        if server_port() is not None:
            env |= {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(server_port())}
        clean_env = {**env, "NEWSDESK_DATA_DIR": str(clean_dir), "NEWSDESK_COLLECTION": f"{collection}-clean"}
        rows = partial(database_writing_rows, url, collection)
        clean_rows = partial(database_writing_rows, url, f"{collection}-clean")
    command = [sys.executable, "-m", "ingest", "--json", str(corpus)]
    trials = 20
    # The clean store is written twice and the second write timed: a fresh store's first write takes half as
    # long again (Chroma creates its files), and kills timed by it would often come after the trials' writes.
    edition(trials - 1)
    subprocess.run(command, env=clean_env, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    edition(trials)
    clean = start_writing(command, clean_env, clean_rows)
    assert clean is not None
    began = time.monotonic()
    while clean_rows():
        time.sleep(0.005)
    write_seconds = time.monotonic() - began
    assert clean.wait() == 0
    rng = random.Random(20)
    landed = 0
    latest_kill = 0.7 * write_seconds
    for number in range(1, trials + 1):
        edition(number)
        before = rows()
        process = start_writing(command, env, rows)
        assert process is not None, f"run {number} ended without writing"
        delay = rng.uniform(0, latest_kill)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        if rows() - before:
            landed += 1
        else:  # this write was over sooner than the clean run's (the machine sped up): kill the next ones sooner
            latest_kill = delay
    assert landed >= trials // 2, f"only {landed} of {trials} kills landed inside the write protocol"
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["failed"] == 0
    assert not rows()
    vectors, chunks = stored_chunks(env)
    assert vectors == chunks == stored_chunks(clean_env)[1]


def stored_chunks(env: dict[str, str]) -> tuple[set[str], set[str]]:
    """The chunk ids in Chroma and in the catalog of the store that the environment `env` names."""
    from newsdesk.runtime import open_store
    from newsdesk.settings import Settings

    names = {field.alias for field in Settings.model_fields.values()}
    store = open_store(Settings(**{name: value for name, value in env.items() if name in names}))
    return store.vectors.ids(), store.catalog.chunk_ids()
