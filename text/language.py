"""Which language a text is written in, among those the keyword index stems and the calibration probes cover."""

from __future__ import annotations

import logging
import os
import re
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "ru", "uk", "pl")
_log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/newsdesk, else ~/.cache/newsdesk (where the e5 model's copy lives too)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsdesk"


@lru_cache(maxsize=1)
def _identifier() -> Any:
    return load_identifier(default_cache_dir())


def load_identifier(cache_dir: Path) -> Any:
    """py3langid's identifier restricted to LANGUAGES. Its packaged model is LZMA-compressed (68 MB unpacked,
    ~0.4 s of a cold start to decompress), so the restricted model is kept uncompressed under `cache_dir`, named
    by the packaged file's size and time, and read from there by later processes (~0.05 s). A copy that cannot
    be read is made again; one that cannot be written only costs the time."""
    from py3langid import langid
    from py3langid.modelio import _to_array

    source = langid.MODEL_DIR / langid.MODEL_FILE
    stat = source.stat()
    path = Path(cache_dir) / f"langid-{stat.st_size}-{stat.st_mtime_ns}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return langid.LanguageIdentifier(
                data["ptc"],
                data["pc"],
                data["classes"].tolist(),
                _to_array(data["nextmove"]),
                data["output"].tolist(),
                norm_probs=True,
                tk_row=_to_array(data["row"]),
            )
    except FileNotFoundError:
        pass
    except Exception as exc:  # a damaged copy is made again, never fatal
        _log.warning("rebuilding the language identifier's copy %s: %s", path, exc)
    identifier = langid._load_identifier(norm_probs=True, langs=list(LANGUAGES))
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            temp,
            ptc=np.ascontiguousarray(identifier.nb_ptc),
            pc=identifier.nb_pc,
            classes=np.array(identifier.nb_classes),
            nextmove=np.frombuffer(identifier.tk_nextmove, dtype=f"u{identifier.tk_nextmove.itemsize}"),
            row=np.frombuffer(identifier.tk_row, dtype=f"u{identifier.tk_row.itemsize}"),
            output=np.asarray(identifier.tk_output, dtype=np.int32),
        )
        os.replace(temp, path)
    except OSError as exc:
        _log.warning("cannot keep the language identifier's copy in %s (%s)", path.parent, exc)
    finally:
        with suppress(OSError):  # gone once replaced; never made where the folder is a file
            temp.unlink()
    return identifier


def detect_language(text: str, default: str = "") -> str:
    """ISO 639-1 code of `text`'s language among LANGUAGES, or `default` when the text is too short to tell."""
    sample = text[:2000].strip()
    if len(re.findall(r"\w+", sample)) < 2:
        return default
    lang, confidence = _identifier().classify(sample)
    return lang if confidence >= 0.5 else default
