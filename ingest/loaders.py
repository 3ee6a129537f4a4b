"""Files to articles: .txt (with `key value` header lines), .md (YAML front matter), .html, .json and .jsonl.

Each loader yields articles or LoadErrors, so one bad record in a file does not cost the good ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import yaml

from ingest.articles import Article, LoadError, Skipped

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl")
HEADER_KEYS = ("title", "date", "source", "url", "lang", "author", "id")
_DATE_VALUE = re.compile(r"\d{4}(?:-\d{2}(?:-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?)?)?|\d{1,2}/\d{1,2}/\d{4}")

LoadResult = Article | LoadError


# Formats people send by mistake, named by their first bytes, so the error says what the file really is.
_MAGIC = (
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or a Word/OpenDocument file)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
    (b"{\\rtf", "an RTF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x7fELF", "a program"),
)


def decode(data: bytes, name: str) -> str:
    """UTF-8 (or UTF-16 with a BOM) text; binary or undecodable bytes are an error naming the file (and what
    it is, for common formats), whatever its name claims."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            raise LoadError(f"{name}: {kind}, not text")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise LoadError(f"{name}: not valid UTF-16 text ({exc.reason})") from None
    if b"\x00" in data[:8192]:
        raise LoadError(f"{name}: binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"{name}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})") from None


def split_header_lines(text: str) -> tuple[dict[str, str], str]:
    """Leading `key value` metadata lines of a plain-text article, and the body after them.

    A `date` header may share its line with the body ("date 2024-06 Le président..."): only the date is taken.
    """
    meta: dict[str, str] = {}
    rest = text.lstrip()
    while True:
        line, _, after = rest.partition("\n")
        key, _, value = line.strip().partition(" ")
        key = key.lower().rstrip(":")
        if key not in HEADER_KEYS or key in meta or not value.strip():
            break
        value = value.strip()
        if key == "date":
            match = _DATE_VALUE.match(value)
            if not match:
                break
            meta["date"] = match.group()
            remainder = value[match.end() :].strip()
            rest = remainder + "\n" + after if remainder else after
        else:
            meta[key] = value
            rest = after
        rest = rest.lstrip("\n") if not rest.startswith(" ") else rest
    return meta, rest


def _file_id(path: Path) -> str:
    return path.resolve().as_uri()


def load_text(path: Path, text: str) -> Iterator[LoadResult]:
    meta, body = split_header_lines(text)
    yield _article(meta, body, path, default_id=_file_id(path))


def load_markdown(path: Path, text: str) -> Iterator[LoadResult]:
    meta: dict[str, Any] = {}
    body = text
    if text.startswith("---"):
        parts = text.split("\n---", 1)
        if len(parts) == 2:
            try:
                loaded = yaml.safe_load(parts[0][3:])
            except (yaml.YAMLError, RecursionError, ValueError) as exc:  # deep nesting, ints past the digit limit
                raise LoadError(f"{path}: bad YAML front matter ({exc.__class__.__name__})") from None
            if isinstance(loaded, dict):
                meta = {str(k).lower(): v for k, v in loaded.items()}
            body = parts[1].partition("\n")[2]
    if not meta.get("title"):
        heading = re.search(r"^#\s+(.+)$", body, re.MULTILINE)
        if heading:
            meta["title"] = heading.group(1).strip()
    yield _article(meta, strip_markdown(body), path, default_id=_file_id(path))


def strip_markdown(body: str) -> str:
    """Markdown to readable text: headings, emphasis and links lose their markup, keep their words."""
    body = re.sub(r"^#{1,6}\s*", "", body, flags=re.MULTILINE)
    body = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", body)
    body = re.sub(r"(\*\*|__|\*|_|`)(\S.*?\S|\S)\1", r"\2", body)
    return body


def load_html(path: Path, text: str, url: str = "") -> Iterator[LoadResult]:
    yield html_article(text, origin=str(path), url=url, default_id=_file_id(path))


def html_article(html: str, origin: str, url: str = "", default_id: str = "") -> Article:
    """Main text and metadata of a web page, by trafilatura (boilerplate, menus and footers left out)."""
    import trafilatura

    try:
        document = trafilatura.bare_extraction(html, url=url or None, with_metadata=True, include_comments=False)
    except Exception as exc:  # trafilatura raises assorted errors on broken markup
        raise LoadError(f"{origin}: cannot parse HTML ({exc.__class__.__name__})") from None
    if document is None or not (document.text or "").strip():
        raise LoadError(f"{origin}: no article text found in the HTML")
    title = document.title or ""
    lines = [line for line in document.text.split("\n") if line.strip()]
    if lines and title and lines[0].strip() == title.strip():
        lines = lines[1:]
    canonical = url or document.url or ""
    meta = {
        "title": title,
        "date": document.date or "",
        "url": canonical,
        "source": site_name(html, title, document.sitename or "", document.hostname or ""),
        "author": document.author or "",
    }
    return _article(meta, "\n\n".join(lines), origin, default_id=canonical or default_id)


_TITLE_TAG = re.compile(r"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_TITLE_SEPARATOR = re.compile(r"\s+[|–—•·»«:-]\s+")


def site_name(html: str, title: str, sitename: str, hostname: str) -> str:
    """The publication's name: the one trafilatura read from the page's metadata (og:site_name, JSON-LD...), else
    the part of the <title> beside the article's title ("Storm hits the coast | Harbour Gazette"), else the host.
    trafilatura drops that part from the title, and when the metadata names no site its `sitename` is the host."""
    if sitename and sitename != hostname:
        return sitename
    tag = _TITLE_TAG.search(html[:200_000])
    full = " ".join(unescape(tag.group(1)).split()) if tag else ""
    title = " ".join(title.split())
    if title and len(full) > len(title):
        head, tail = full[: len(title)], full[len(title) :]
        if head.casefold() == title.casefold() and _TITLE_SEPARATOR.match(tail):
            return _TITLE_SEPARATOR.split(tail)[-1]  # "Title | Section | Site"
        head, tail = full[: -len(title)], full[-len(title) :]
        parts = _TITLE_SEPARATOR.split(head)
        if tail.casefold() == title.casefold() and len(parts) > 1 and not parts[-1]:
            return parts[0]  # "Site | Title"
    return sitename or hostname


def load_json_records(path: Path, text: str) -> Iterator[LoadResult]:
    """A .json file holding one record or a list of records; a .jsonl file with one record per line."""
    if path.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                yield _record(_parse_json(line, where), where, f"{_file_id(path)}#{number}")
            except LoadError as exc:
                yield exc
        return
    data = _parse_json(text, str(path))
    records = data if isinstance(data, list) else [data]
    for index, record in enumerate(records):
        try:
            yield _record(record, f"{path}[{index}]", f"{_file_id(path)}#{index}")
        except LoadError as exc:
            yield exc


def _parse_json(text: str, where: str) -> Any:
    """json.loads, with every way it can fail on hostile input as a LoadError: syntax, nesting deeper than the
    recursion limit, integers longer than Python will convert."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at = f" at line {exc.lineno}" if "\n" in text.strip() else ""  # a JSON line is named by `where`
        raise LoadError(f"{where}: malformed JSON ({exc.msg}{at})") from None
    except RecursionError:
        raise LoadError(f"{where}: malformed JSON (nested too deeply)") from None
    except ValueError as exc:  # e.g. "Exceeds the limit (4300 digits) for integer string conversion"
        raise LoadError(f"{where}: malformed JSON ({exc})") from None


def _record(record: Any, where: str, default_id: str) -> Article:
    if not isinstance(record, dict):
        raise LoadError(f"{where}: a record must be a JSON object with title and text")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise LoadError(f"{where}: record has no 'text'")
    record_id = record.get("id")
    default = str(record_id) if record_id not in (None, "") else str(record.get("url") or default_id)
    return _article(record, text, where, default_id=default)


def _article(meta: dict[str, Any], body: str, origin: Path | str, default_id: str) -> Article:
    def field(name: str) -> str:
        """A metadata value as text; lists and mappings are refused (str() of a YAML alias bomb never ends)."""
        value = meta.get(name)
        if isinstance(value, list | dict | set | tuple):
            raise LoadError(f"{origin}: '{name}' must be a single value, not a {type(value).__name__}")
        return "" if value is None else str(value).strip()

    article_id = field("id") or field("url") or default_id
    return Article(
        id=article_id,
        title=field("title"),
        text=body,
        date=field("date"),
        url=field("url"),
        source=field("source"),
        lang=field("lang"),
        origin=str(origin),
    )


_LOADERS = {
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".json": load_json_records,
    ".jsonl": load_json_records,
}


def load_file(path: Path, max_bytes: int) -> Iterator[LoadResult]:
    """Every article in one file; problems come out as LoadErrors naming the file (and line)."""
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        yield LoadError(f"{path}: unsupported file type (use {', '.join(SUFFIXES)})")
        return
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise LoadError(f"{path}: too large ({size / 1e6:.1f} MB > {max_bytes / 1e6:.1f} MB)")
        if size == 0:
            raise LoadError(f"{path}: empty file")
        text = decode(path.read_bytes(), str(path))
        if not text.strip():
            raise LoadError(f"{path}: empty file")
        yield from loader(path, text)
    except LoadError as exc:
        yield exc
    except OSError as exc:
        yield LoadError(f"{path}: cannot read ({exc.strerror or exc})")


def find_files(path: Path) -> Iterator[Path | LoadError]:
    """The path itself, or every file under it (recursively, in a stable order, hidden ones left out): files of a
    supported type as paths, others as Skipped, and so are links back into a folder being walked (a loop) or to
    nothing; a folder that cannot be listed is a LoadError."""
    if path.is_dir():
        yield from _walk(path, {path.resolve()})
    else:
        yield path


def _walk(folder: Path, ancestors: set[Path]) -> Iterator[Path | LoadError]:
    try:
        children = sorted(child for child in folder.iterdir() if not child.name.startswith("."))
    except OSError as exc:
        yield LoadError(f"{folder}: cannot list the folder ({exc.strerror or exc})")
        return
    for child in children:
        if child.is_dir():
            real = child.resolve()
            if real in ancestors:
                yield Skipped(f"{child}: a link back to {real}, not followed (it would loop)")
            else:
                yield from _walk(child, ancestors | {real})
        elif not child.is_file():
            kind = "a link to nothing" if child.is_symlink() else "not a regular file"
            yield Skipped(f"{child}: {kind}")
        elif child.suffix.lower() in SUFFIXES:
            yield child
        else:
            kind = f"{child.suffix} files" if child.suffix else "files without an extension"
            yield Skipped(f"{child}: newsdesk does not read {kind} (only {', '.join(SUFFIXES)})")
