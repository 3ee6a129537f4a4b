"""A fake Telegram Bot API server for end-to-end bot tests.

Why: the real Bot API is an edge we do not own (network, tokens, flood limits). This fake
speaks the HTTP protocol python-telegram-bot uses, so tests drive the *real* PTB client,
polling loop and rate limiter, while the test scripts users and inspects what the bot sent.

Wire facts this relies on (PTB 22.x):

* ``Application.builder().token(T).base_url(f"{fake.url}/bot")`` -> ``/bot<T>/<method>``;
  ``.base_file_url(f"{fake.url}/file/bot")`` -> ``/file/bot<T>/<file_path>``.
* Parameters arrive form-encoded (multipart when uploading); non-string values are
  JSON-encoded inside the form. JSON bodies are accepted too.
* Startup is getMe, deleteWebhook, then getUpdates long polls; ``offset`` confirms updates.
* With a webhook set (``setWebhook``) and addresses given by ``deliver_to``, updates are POSTed
  instead, JSON with the registered ``X-Telegram-Bot-Api-Secret-Token``, to each address in turn.

Fidelity notes: ``parse_mode="HTML"`` is parsed like Telegram does (tags become entities,
unsupported tags / stray ``<`` give 400 "can't parse entities"); Markdown modes are passed
through unparsed. Texts must be 1-4096 characters; editing to identical content gives
400 "message is not modified"; sending to an unknown chat is allowed (a private chat is made).
"""

from __future__ import annotations

import asyncio
import copy
import html
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypedDict, cast
from urllib.parse import parse_qsl, unquote, urlsplit

JSONDict = dict[str, Any]
ChatId = int | str

MAX_TEXT_LENGTH = 4096
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
# Update kinds Telegram leaves out unless explicitly requested in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Form fields that are plain strings on the wire, so "123" or "true" must stay a string.
_STRING_PARAMS = frozenset(
    {
        "text", "caption", "parse_mode", "callback_query_id", "file_id", "url", "action",
        "language_code", "business_connection_id", "inline_message_id", "message_effect_id",
        "secret_token", "ip_address", "emoji", "title", "description", "short_description",
        "name", "query", "switch_pm_text", "switch_pm_parameter", "next_offset", "question",
    }
)  # fmt: skip
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}\b")
_HTML_TOKEN_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*)?)>|<")
_HTML_ATTR_RE = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_HTML_SIMPLE_TAGS = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "tg-spoiler": "spoiler", "code": "code", "pre": "pre", "blockquote": "blockquote",
}  # fmt: skip
_ERROR_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class UploadedFile(TypedDict):
    """A file part of a multipart request (e.g. sendDocument)."""

    filename: str
    content_type: str
    content: bytes


class RecordedCall(TypedDict):
    """One Bot API request as the fake saw it, with the JSON it answered."""

    method: str
    params: JSONDict
    files: dict[str, UploadedFile]
    status: int
    response: JSONDict
    at: float  # time.monotonic() when it was answered


class ApiError(Exception):
    """A Bot API error reply, raised inside method implementations."""

    def __init__(self, error_code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _utf16_len(text: str) -> int:
    """Telegram measures entity offsets/lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _decode_form_value(key: str, raw: str) -> Any:
    """PTB JSON-encodes non-string values inside forms; undo that except for string fields."""
    if key in _STRING_PARAMS:
        return raw

    def _reject_constant(name: str) -> Any:
        raise ValueError(name)

    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        return raw


def _auto_entities(text: str) -> list[JSONDict]:
    """Entities Telegram would attach to a typed message: a leading /command and @mentions."""
    entities: list[JSONDict] = []
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        entities.append({"type": "bot_command", "offset": 0, "length": _utf16_len(command)})
    for match in _MENTION_RE.finditer(text):
        entities.append(
            {
                "type": "mention",
                "offset": _utf16_len(text[: match.start()]),
                "length": _utf16_len(match.group()),
            }
        )
    return entities


def _html_attrs(text: str) -> dict[str, str]:
    """Attributes of one tag, quoted or bare."""
    return {m.group(1).lower(): m.group(2) or m.group(3) or m.group(4) or "" for m in _HTML_ATTR_RE.finditer(text)}


def _parse_html(source: str) -> tuple[str, list[JSONDict]]:
    """Turn Telegram-HTML into (plain text, entities), failing like Telegram on bad markup."""
    out: list[str] = []
    entities: list[JSONDict] = []
    stack: list[tuple[str, int, JSONDict]] = []  # (tag, utf16 start, entity template)
    position = 0
    length = 0

    def fail(reason: str, at: int) -> ApiError:
        offset = len(source[:at].encode())
        return ApiError(400, f"Bad Request: can't parse entities: {reason} at byte offset {offset}")

    for match in _HTML_TOKEN_RE.finditer(source):
        chunk = html.unescape(source[position : match.start()])
        out.append(chunk)
        length += _utf16_len(chunk)
        position = match.end()
        if match.group(2) is None:
            raise fail('Unsupported start tag ""', match.start())
        closing, tag, attrs_text = match.group(1) == "/", match.group(2).lower(), match.group(3) or ""
        if closing:
            if not stack or stack[-1][0] != tag:
                raise fail(f'Unmatched end tag "{tag}"', match.start())
            _, start, opened = stack.pop()
            if opened and length > start:
                entities.append({**opened, "offset": start, "length": length - start})
            continue
        attrs = _html_attrs(attrs_text)
        template: JSONDict
        if tag in _HTML_SIMPLE_TAGS:
            template = {"type": _HTML_SIMPLE_TAGS[tag]}
            if tag == "blockquote" and "expandable" in attrs_text.split():
                template = {"type": "expandable_blockquote"}
            if tag == "code" and stack and stack[-1][0] == "pre":
                template = {}  # <pre><code class="language-x"> is one pre entity
                if "class" in attrs:
                    stack[-1][2]["language"] = attrs["class"].removeprefix("language-")
        elif tag == "span" and attrs.get("class") == "tg-spoiler":
            template = {"type": "spoiler"}
        elif tag == "a" and "href" in attrs:
            template = {"type": "text_link", "url": html.unescape(attrs["href"])}
        elif tag == "tg-emoji" and "emoji-id" in attrs:
            template = {"type": "custom_emoji", "custom_emoji_id": attrs["emoji-id"]}
        else:
            raise fail(f'Unsupported start tag "{tag}"', match.start())
        stack.append((tag, length, template))
    if stack:
        raise ApiError(
            400, f"Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1][0]}\""
        )
    out.append(html.unescape(source[position:]))
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeBotApi) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    """Routes HTTP to the fake; keep-alive + no Nagle so PTB round trips stay sub-millisecond."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request stderr logging."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self) -> None:
        fake = cast(_Server, self.server).fake
        body = self._read_body()
        split = urlsplit(self.path)
        path = unquote(split.path)
        if path.startswith("/file/bot"):
            token, _, file_path = path.removeprefix("/file/bot").partition("/")
            status, content_type, payload = fake._download(token, file_path)
            self._send(status, content_type, payload)
            return
        if not path.startswith("/bot"):
            self._send_json(404, ApiError(404, "Not Found").payload())
            return
        token, _, method = path.removeprefix("/bot").partition("/")
        try:
            params, files = _parse_params(split.query, self.headers.get("Content-Type", ""), body)
        except ValueError as exc:
            self._send_json(400, ApiError(400, f"Bad Request: {exc}").payload())
            return
        status, response = fake._handle(token, method, params, files)
        self._send_json(status, response)

    def _send_json(self, status: int, payload: JSONDict) -> None:
        self._send(status, "application/json", json.dumps(payload).encode())

    def _send(self, status: int, content_type: str, payload: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _parse_params(query: str, content_type: str, body: bytes) -> tuple[JSONDict, dict[str, UploadedFile]]:
    """Decode query string + form/multipart/JSON body into Bot API parameters."""
    params: JSONDict = {k: _decode_form_value(k, v) for k, v in parse_qsl(query, keep_blank_values=True)}
    files: dict[str, UploadedFile] = {}
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        return params, files
    if kind == "application/json":
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("JSON body must be an object")
        params.update(decoded)
    elif kind == "multipart/form-data":
        header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = cast(EmailMessage, BytesParser(policy=policy.HTTP).parsebytes(header + body))
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not isinstance(name, str):
                continue
            content = part.get_payload(decode=True)
            content = content if isinstance(content, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                files[name] = {
                    "filename": filename,
                    "content_type": part.get_content_type(),
                    "content": content,
                }
            else:
                charset = part.get_content_charset() or "utf-8"
                params[name] = _decode_form_value(name, content.decode(charset))
    else:
        for key, value in parse_qsl(body.decode(), keep_blank_values=True):
            params[key] = _decode_form_value(key, value)
    return params, files


class FakeBotApi:
    """In-process Telegram Bot API double; every public method is thread-safe."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        max_poll_seconds: float = 1.0,
        bot_first_name: str = "Newsdesk",
        bot_username: str = "newsdesk_test_bot",
    ) -> None:
        self.token = token
        self.max_poll_seconds = max_poll_seconds
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 999_000
        self.bot_user: JSONDict = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self._cond = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._update_ids = itertools.count(1)
        self._ids = itertools.count(1)  # callback query ids, file ids
        self._pending: list[JSONDict] = []
        self._allowed_updates: list[str] = []
        self._calls: list[RecordedCall] = []
        self._failures: dict[str, deque[ApiError]] = {}
        self._chats: dict[ChatId, JSONDict] = {}
        self._next_message_id: dict[ChatId, int] = {}
        self._messages: dict[tuple[ChatId, int], JSONDict] = {}
        self._bot_message_keys: list[tuple[ChatId, int]] = []
        self._callback_queries: dict[str, bool] = {}  # id -> answered
        self._files: dict[str, tuple[JSONDict, bytes]] = {}
        self._file_paths: dict[str, str] = {}  # file_path -> file_id
        self._commands: dict[str, list[JSONDict]] = {}
        self._webhook: JSONDict = {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        self._webhook_secret = ""
        self._delivery_addresses: list[str] = []
        self._deliveries: list[JSONDict] = []
        self._delivery_thread: threading.Thread | None = None
        methods: dict[str, Callable[[JSONDict, dict[str, UploadedFile]], Any]] = {
            "getMe": lambda p, f: copy.deepcopy(self.bot_user),
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": lambda p, f: {**self._webhook, "pending_update_count": len(self._pending)},
            "setMyCommands": self._set_my_commands,
            "getMyCommands": lambda p, f: copy.deepcopy(self._commands.get(self._commands_key(p), [])),
            "deleteMyCommands": self._delete_my_commands,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query,
            "sendDocument": self._send_document,
            "getFile": self._get_file,
            "close": lambda p, f: True,
            "logOut": lambda p, f: True,
        }
        # Bot API method names are case-insensitive; record them under the canonical spelling.
        self._methods = {name.lower(): (name, fn) for name, fn in methods.items()}

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeBotApi:
        """Bind 127.0.0.1 on an ephemeral port and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping = False
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="FakeBotApi", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake long polls and shut the server down."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._delivery_thread is not None:
            self._delivery_thread.join(timeout=15)
        self._server = None
        self._thread = None
        self._delivery_thread = None

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        if self._server is None:
            raise RuntimeError("FakeBotApi is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """Value for ``ApplicationBuilder.base_url`` (PTB appends the token)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for ``ApplicationBuilder.base_file_url`` (PTB appends the token)."""
        return f"{self.url}/file/bot"

    # ------------------------------------------------------------ test: scripting
    def fail_next(
        self, method: str, error_code: int = 429, retry_after: int = 1, description: str | None = None
    ) -> None:
        """Make the next call of ``method`` fail once (429 carries ``parameters.retry_after``)."""
        parameters: JSONDict | None = None
        if error_code == 429:
            description = description or f"Too Many Requests: retry after {retry_after}"
            parameters = {"retry_after": retry_after}
        description = description or _ERROR_DESCRIPTIONS.get(error_code, "Error")
        with self._cond:
            self._failures.setdefault(method.lower(), deque()).append(ApiError(error_code, description, parameters))

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        reply_to_bot_message_id: int | None = None,
        entities: list[JSONDict] | None = None,
        username: str = "alice",
        first_name: str = "Alice",
        chat_title: str = "Newsroom",
        language_code: str = "en",
    ) -> int:
        """Queue a user's text message; returns its message_id.

        Without ``entities``, a leading ``/command`` and ``@mentions`` get entities like Telegram adds.
        ``user_id`` defaults to ``chat_id`` in private chats (as in Telegram) and 4242 elsewhere.
        ``language_code`` is the sender's Telegram language.
        """
        with self._cond:
            message = self._new_user_message(
                chat_id, user_id, chat_type, username, first_name, chat_title, language_code
            )
            message["text"] = text
            found = _auto_entities(text) if entities is None else entities
            if found:
                message["entities"] = found
            if reply_to_bot_message_id is not None:
                message["reply_to_message"] = self._existing_message(chat_id, reply_to_bot_message_id)
            self._enqueue({"message": message})
            return int(message["message_id"])

    def send_document(
        self,
        chat_id: int,
        filename: str,
        content: bytes,
        mime_type: str = "application/octet-stream",
        *,
        user_id: int | None = None,
        caption: str | None = None,
        chat_type: str = "private",
        username: str = "alice",
        first_name: str = "Alice",
    ) -> int:
        """Register ``content`` as a downloadable file and queue a message carrying it; returns message_id."""
        with self._cond:
            info = self.register_file(content, filename)
            message = self._new_user_message(chat_id, user_id, chat_type, username, first_name, "Newsroom")
            message["document"] = {
                "file_id": info["file_id"],
                "file_unique_id": info["file_unique_id"],
                "file_name": filename,
                "mime_type": mime_type,
                "file_size": len(content),
            }
            if caption is not None:
                message["caption"] = caption
            self._enqueue({"message": message})
            return int(message["message_id"])

    def register_file(self, content: bytes, filename: str = "file.bin") -> JSONDict:
        """Make ``content`` downloadable; returns the File dict (file_id, file_unique_id, file_size, file_path)."""
        with self._cond:
            n = next(self._ids)
            suffix = filename.rsplit(".", 1)[1] if "." in filename else "bin"
            info: JSONDict = {
                "file_id": f"FILE{n:06d}",
                "file_unique_id": f"U{n:06d}",
                "file_size": len(content),
                "file_path": f"documents/file_{n}.{suffix}",
            }
            self._files[info["file_id"]] = (info, bytes(content))
            self._file_paths[info["file_path"]] = info["file_id"]
            return dict(info)

    def press_button(
        self, chat_id: int, message_id: int, data: str, *, user_id: int | None = None, language_code: str = "en"
    ) -> str:
        """Queue a callback_query for an inline button on a bot message; returns the query id.

        Raises ValueError if the message has an inline keyboard without a button for ``data``
        (use ``send_update`` to simulate stale buttons).
        """
        with self._cond:
            message = self._existing_message(chat_id, message_id)
            keyboard = (message.get("reply_markup") or {}).get("inline_keyboard")
            if keyboard is not None:
                datas = [b.get("callback_data") for row in keyboard for b in row]
                if data not in datas:
                    raise ValueError(f"message {message_id} has no button with callback_data={data!r}: {datas}")
            uid = user_id if user_id is not None else (chat_id if message["chat"]["type"] == "private" else 4242)
            query_id = str(next(self._ids) + 9_000_000)
            self._callback_queries[query_id] = False
            self._enqueue(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": self._user(uid, "alice", "Alice", language_code),
                        "message": message,
                        "chat_instance": f"ci{chat_id}",
                        "data": data,
                    }
                }
            )
            return query_id

    def edit_text(self, chat_id: int, message_id: int, text: str) -> None:
        """Queue an ``edited_message`` update for a message the user sent earlier."""
        with self._cond:
            message = self._messages.get((chat_id, message_id))
            if message is None or message.get("from", {}).get("is_bot"):
                raise ValueError(f"no user message {message_id} in chat {chat_id}")
            message["text"] = text
            message["edit_date"] = int(time.time())
            entities = _auto_entities(text)
            if entities:
                message["entities"] = entities
            else:
                message.pop("entities", None)
            self._enqueue({"edited_message": copy.deepcopy(message)})

    def deliver_to(self, *addresses: str) -> None:
        """Deliver updates by webhook once one is set, as Telegram does, each to the next of ``addresses`` in turn
        (a load balancer in front of bot replicas: the registered URL is the public one, the addresses are where
        the replicas listen). One POST at a time; each is recorded (``deliveries``), none is retried."""
        with self._cond:
            self._delivery_addresses = list(addresses)
            if self._delivery_thread is None:
                self._delivery_thread = threading.Thread(target=self._deliver, name="FakeBotApi-webhook", daemon=True)
                self._delivery_thread.start()

    def deliveries(self) -> list[JSONDict]:
        """Webhook deliveries made, oldest first: ``{update_id, address, status}``."""
        with self._cond:
            return copy.deepcopy(self._deliveries)

    def send_update(self, raw: JSONDict) -> int:
        """Queue an arbitrary (even malformed) update; an update_id is added if missing. Returns it."""
        with self._cond:
            update = copy.deepcopy(raw)
            if "update_id" not in update:
                update["update_id"] = next(self._update_ids)
            self._pending.append(update)
            self._cond.notify_all()
            return int(update["update_id"])

    # ----------------------------------------------------------- test: inspection
    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Recorded requests, oldest first (method match is case-insensitive)."""
        with self._cond:
            return [copy.deepcopy(c) for c in self._calls if method is None or c["method"].lower() == method.lower()]

    def clear_calls(self) -> None:
        """Forget recorded requests (chat state and pending updates stay)."""
        with self._cond:
            self._calls.clear()

    def sent_messages(self, chat_id: ChatId | None = None) -> list[JSONDict]:
        """Messages the bot sent, in send order, with later edits applied (deleted ones omitted)."""
        with self._cond:
            return self._sent_messages(chat_id)

    def message(self, chat_id: ChatId, message_id: int) -> JSONDict:
        """Current state of any message (user or bot) the fake knows."""
        with self._cond:
            return self._existing_message(chat_id, message_id)

    def commands(self, language_code: str = "") -> list[JSONDict]:
        """Commands from the last default-scope setMyCommands (for that language, when given)."""
        with self._cond:
            key = self._commands_key({"language_code": language_code} if language_code else {})
            return copy.deepcopy(self._commands.get(key, []))

    def pending_updates(self) -> list[JSONDict]:
        """Updates queued but not yet confirmed by a getUpdates offset."""
        with self._cond:
            return copy.deepcopy(self._pending)

    def wait_for(self, predicate: Callable[[RecordedCall], bool], timeout: float = 10.0) -> RecordedCall:
        """Block until a recorded call (past or future) satisfies ``predicate``; return it.

        Blocks the calling thread: from async code use ``await asyncio.to_thread(fake.wait_for, ...)``.
        """
        _refuse_in_event_loop("wait_for")
        deadline = time.monotonic() + timeout
        with self._cond:
            checked = 0
            while True:
                for call in self._calls[checked:]:
                    if predicate(call):
                        return copy.deepcopy(call)
                checked = len(self._calls)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no recorded call matched within {timeout}s; {self._describe_calls()}")
                self._cond.wait(remaining)

    def wait_for_messages(self, chat_id: ChatId, count: int = 1, timeout: float = 10.0) -> list[JSONDict]:
        """Block until the bot has sent ``count`` messages to ``chat_id``; return all sent there."""
        _refuse_in_event_loop("wait_for_messages")
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                sent = self._sent_messages(chat_id)
                if len(sent) >= count:
                    return sent
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    texts = [m.get("text", m.get("caption")) for m in sent]
                    raise AssertionError(
                        f"expected {count} message(s) to chat {chat_id} within {timeout}s, got {len(sent)}: "
                        f"{texts!r}; {self._describe_calls()}"
                    )
                self._cond.wait(remaining)

    # ------------------------------------------------------------------ internals
    def _describe_calls(self) -> str:
        polls = sum(1 for c in self._calls if c["method"] == "getUpdates")
        rest = [c for c in self._calls if c["method"] != "getUpdates"]
        lines = [
            f"  {c['method']} -> {c['status']} {json.dumps(c['params'], default=str)[:200]}"
            + ("" if c["response"].get("ok") else f" [{c['response'].get('description')}]")
            for c in rest[-25:]
        ]
        pending = len(self._pending)
        return f"seen {len(rest)} call(s) besides {polls} getUpdates, {pending} update(s) unconfirmed:\n" + (
            "\n".join(lines) or "  (none)"
        )

    def _handle(
        self, token: str, method: str, params: JSONDict, files: dict[str, UploadedFile]
    ) -> tuple[int, JSONDict]:
        canonical, implementation = self._methods.get(method.lower(), (method, None))
        status, response = 200, {}
        try:
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            with self._cond:
                failures = self._failures.get(method.lower())
                if failures:
                    raise failures.popleft()
            if implementation is None:
                raise ApiError(404, "Not Found")
            if method.lower() == "getupdates":
                result = implementation(params, files)  # blocks on the condition itself
            else:
                with self._cond:
                    result = implementation(params, files)
            response = {"ok": True, "result": result}
        except ApiError as exc:
            status, response = exc.error_code, exc.payload()
        with self._cond:
            self._calls.append(
                {
                    "method": canonical,
                    "params": params,
                    "files": files,
                    "status": status,
                    "response": response,
                    "at": time.monotonic(),
                }
            )
            self._cond.notify_all()
        return status, response

    def _download(self, token: str, file_path: str) -> tuple[int, str, bytes]:
        with self._cond:
            file_id = self._file_paths.get(file_path)
            stored = self._files.get(file_id) if file_id else None
        if token != self.token:
            return 401, "application/json", json.dumps(ApiError(401, "Unauthorized").payload()).encode()
        if stored is None:
            return 404, "application/json", json.dumps(ApiError(404, "Not Found").payload()).encode()
        return 200, "application/octet-stream", stored[1]

    def _deliver(self) -> None:
        """The webhook delivery loop: POST each queued update to the next address, outside the lock."""
        import urllib.error
        import urllib.request

        for turn in itertools.count():
            with self._cond:
                while not self._stopping and not (self._webhook["url"] and self._pending):
                    self._cond.wait(0.5)
                if self._stopping:
                    return
                update = self._pending.pop(0)
                address = self._delivery_addresses[turn % len(self._delivery_addresses)]
                secret = self._webhook_secret
            headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
            request = urllib.request.Request(address, json.dumps(update).encode(), headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0  # nothing listening
            with self._cond:
                self._deliveries.append({"update_id": update.get("update_id"), "address": address, "status": status})
                self._cond.notify_all()

    def _enqueue(self, payload: JSONDict) -> None:
        self._pending.append({"update_id": next(self._update_ids), **copy.deepcopy(payload)})
        self._cond.notify_all()

    def _user(self, user_id: int, username: str, first_name: str, language_code: str = "en") -> JSONDict:
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "username": username,
            "language_code": language_code,
        }

    def _chat(self, chat_id: ChatId, chat_type: str, title: str, user: JSONDict | None) -> JSONDict:
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = {"id": chat_id, "type": chat_type}
            if chat_type == "private":
                user = user or {}
                chat.update(first_name=user.get("first_name", "Alice"), username=user.get("username", "alice"))
            else:
                chat["title"] = title
            self._chats[chat_id] = chat
        return dict(chat)

    def _new_message(self, chat: JSONDict, sender: JSONDict) -> JSONDict:
        chat_id = chat["id"]
        message_id = self._next_message_id.get(chat_id, 1)
        self._next_message_id[chat_id] = message_id + 1
        message: JSONDict = {"message_id": message_id, "from": sender, "chat": chat, "date": int(time.time())}
        self._messages[(chat_id, message_id)] = message
        return message

    def _new_user_message(
        self,
        chat_id: int,
        user_id: int | None,
        chat_type: str,
        username: str,
        first_name: str,
        title: str,
        language_code: str = "en",
    ) -> JSONDict:
        uid = user_id if user_id is not None else (chat_id if chat_type == "private" else 4242)
        user = self._user(uid, username, first_name, language_code)
        return self._new_message(self._chat(chat_id, chat_type, title, user), user)

    def _existing_message(self, chat_id: ChatId, message_id: int) -> JSONDict:
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        return copy.deepcopy(message)

    def _sent_messages(self, chat_id: ChatId | None) -> list[JSONDict]:
        return [
            copy.deepcopy(self._messages[key])
            for key in self._bot_message_keys
            if key in self._messages and (chat_id is None or key[0] == chat_id)
        ]

    def _update_type(self, update: JSONDict) -> str | None:
        return next((key for key in update if key != "update_id"), None)

    # ------------------------------------------------------------ Bot API methods
    def _delete_webhook(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        self._webhook["url"] = ""
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _set_webhook(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        self._webhook["url"] = str(params.get("url", ""))
        self._webhook_secret = str(params.get("secret_token", ""))
        if params.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def _commands_key(self, params: JSONDict) -> str:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps([scope, params.get("language_code", "")], sort_keys=True)

    def _set_my_commands(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100 BotCommand")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND_RE.match(str(command.get("command", ""))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(params)] = copy.deepcopy(commands)
        return True

    def _delete_my_commands(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _get_updates(self, params: JSONDict, files: dict[str, UploadedFile]) -> list[JSONDict]:
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = min(max(float(params.get("timeout") or 0), 0.0), self.max_poll_seconds)
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._webhook["url"]:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if "allowed_updates" in params:
                self._allowed_updates = list(params["allowed_updates"] or [])
            while True:
                if offset > 0:
                    self._pending = [u for u in self._pending if int(u.get("update_id", 0)) >= offset]
                elif offset < 0:
                    self._pending = self._pending[offset:]
                allowed = set(self._allowed_updates)
                self._pending = [
                    u
                    for u in self._pending
                    if (kind := self._update_type(u)) is None
                    or (kind in allowed if allowed else kind not in _OPT_IN_UPDATES)
                ]
                if self._pending or self._stopping:
                    return copy.deepcopy(self._pending[:limit])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(remaining)

    def _render(self, params: JSONDict) -> tuple[str, list[JSONDict]]:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        entities: list[JSONDict] = list(params.get("entities") or [])
        if str(params.get("parse_mode") or "").lower() == "html":
            text, entities = _parse_html(text)
            if not text.strip():
                raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        return text, entities

    def _send_message(self, params: JSONDict, files: dict[str, UploadedFile]) -> JSONDict:
        text, entities = self._render(params)
        message = self._bot_message(params)
        message["text"] = text
        if entities:
            message["entities"] = entities
        return copy.deepcopy(message)

    def _bot_message(self, params: JSONDict) -> JSONDict:
        """Validate chat/reply/markup params shared by send* methods and store the new message."""
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        reply_to: JSONDict | None = None
        reply = params.get("reply_parameters") or (
            {"message_id": params["reply_to_message_id"]} if "reply_to_message_id" in params else None
        )
        if isinstance(reply, dict):
            target = self._messages.get((reply.get("chat_id", chat_id), int(reply.get("message_id", 0))))
            if target is None and not reply.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to be replied not found")
            reply_to = copy.deepcopy(target) if target else None
        bot = {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        message = self._new_message(self._chat(chat_id, "private", "", None), bot)
        if reply_to is not None:
            reply_to.pop("reply_to_message", None)
            message["reply_to_message"] = reply_to
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        self._bot_message_keys.append((chat_id, message["message_id"]))
        return message

    def _target(self, params: JSONDict) -> JSONDict | None:
        """The bot message an edit* call refers to; None for inline messages."""
        if params.get("inline_message_id"):
            return None
        message = self._messages.get((params.get("chat_id", ""), int(params.get("message_id") or 0)))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if not message["from"].get("is_bot") or message["from"]["id"] != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        return message

    def _edit_message_text(self, params: JSONDict, files: dict[str, UploadedFile]) -> JSONDict | bool:
        text, entities = self._render(params)
        message = self._target(params)
        if message is None:
            return True
        markup = params.get("reply_markup")
        new_markup = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        if (
            message.get("text") == text
            and message.get("entities", []) == entities
            and message.get("reply_markup") == new_markup
        ):
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message",
            )
        message["text"] = text
        message["edit_date"] = int(time.time())
        if entities:
            message["entities"] = entities
        else:
            message.pop("entities", None)
        if new_markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = new_markup
        return copy.deepcopy(message)

    def _edit_message_reply_markup(self, params: JSONDict, files: dict[str, UploadedFile]) -> JSONDict | bool:
        message = self._target(params)
        if message is None:
            return True
        markup = params.get("reply_markup")
        new_markup = markup if isinstance(markup, dict) and markup.get("inline_keyboard") else None
        if message.get("reply_markup") == new_markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup "
                "are exactly the same as a current content and reply markup of the message",
            )
        if new_markup is None:
            message.pop("reply_markup", None)
        else:
            message["reply_markup"] = new_markup
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _delete_message(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        key = (params.get("chat_id", ""), int(params.get("message_id") or 0))
        if self._messages.pop(key, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def _send_chat_action(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        if not params.get("chat_id"):
            raise ApiError(400, "Bad Request: chat_id is empty")
        return True

    def _answer_callback_query(self, params: JSONDict, files: dict[str, UploadedFile]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if self._callback_queries.get(query_id, True):
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        self._callback_queries[query_id] = True
        return True

    def _send_document(self, params: JSONDict, files: dict[str, UploadedFile]) -> JSONDict:
        upload = files.get("document")
        if upload is not None:
            info = self.register_file(upload["content"], upload["filename"])
            document = {
                "file_id": info["file_id"],
                "file_unique_id": info["file_unique_id"],
                "file_name": upload["filename"],
                "mime_type": upload["content_type"],
                "file_size": info["file_size"],
            }
        elif isinstance(params.get("document"), str) and params["document"] in self._files:
            info = self._files[params["document"]][0]
            document = {k: info[k] for k in ("file_id", "file_unique_id", "file_size")}
        else:
            raise ApiError(400, "Bad Request: there is no document in the request")
        message = self._bot_message(params)
        message["document"] = document
        if params.get("caption"):
            message["caption"] = params["caption"]
        return copy.deepcopy(message)

    def _get_file(self, params: JSONDict, files: dict[str, UploadedFile]) -> JSONDict:
        stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored[0]["file_size"] > MAX_DOWNLOAD_SIZE:
            raise ApiError(400, "Bad Request: file is too big")
        return dict(stored[0])


def _refuse_in_event_loop(name: str) -> None:
    """Blocking inside the loop would freeze the bot under test until the timeout."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() blocks; from async code use `await asyncio.to_thread(fake.{name}, ...)`")
