"""The files cryptofeed's raw-data recorder (`cryptofeed.raw_data_collection.AsyncFileCallback`)
writes, read back for replay.

One recording is a set of files named after cryptofeed's exchange id `NAME`:
- `NAME.0`: a `configuration: {json}` line (the feed's channels and symbols) and the start-up
  REST calls as `URL -> ts: body`;
- `NAME.http.N.M`: REST calls made while running (book snapshots), same format;
- `NAME.ws.N.M`: websocket session N (M counts the recorder's file rotations): `URL <-> ts`
  when it connected, `URL <- ts: json` for each sent message, `ts: json` for each received one.
Timestamps are the local wall clock in seconds, as `time.time()` printed them.
"""

from __future__ import annotations

import ast
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

_URL_SCHEMES = ("wss://", "ws://", "https://", "http://")
_CONFIGURATION = "configuration: "

RestTranslation = Callable[[str, str], tuple[str, str]]


def seconds_to_ns(text: str) -> int:
    """Exact nanoseconds from a printed `time.time()`; float would lose the last digits."""
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or not (fraction.isdigit() or fraction == ""):
        raise ValueError(f"not a timestamp in seconds: {text!r}")
    return int(whole) * 1_000_000_000 + int(fraction[:9].ljust(9, "0"))


class RecordedResponses:
    """REST bodies by URL, served first-in first-out in the order cryptofeed asks for them."""

    __slots__ = ("_by_url",)

    def __init__(self) -> None:
        self._by_url: dict[str, deque[tuple[int, str]]] = {}

    def add(self, url: str, receive_ns: int, body: str) -> None:
        self._by_url.setdefault(url, deque()).append((receive_ns, body))

    def holds(self, url: str) -> bool:
        """Whether a response to `url` is (still) recorded."""
        return bool(self._by_url.get(url))

    def take(self, url: str) -> tuple[int, str]:
        """The next recorded `(receive_ns, body)` for `url`."""
        responses = self._by_url.get(url)
        if not responses:
            raise LookupError(f"the recording holds no (further) response to GET {url}")
        return responses.popleft()

    def take_alike(self, url: str) -> tuple[int, str]:
        """As `take`, else the next response recorded for the same call to another version of
        the endpoint or another depth: an older cryptofeed asked Binance US for its book at
        `/api/v1/depth?symbol=MANAUSD&limit=5000` where 2.4.1 asks `/api/v3/...&limit=1000`.
        Only one such call may match (the symbol and every other parameter are the same)."""
        if self.holds(url):
            return self.take(url)
        key = _alike(url)
        matches = [u for u, responses in self._by_url.items() if responses and _alike(u) == key]
        if len(matches) != 1:
            return self.take(url)
        return self._by_url[matches[0]].popleft()


class Recording:
    """One exchange's recording: what the feed was configured with and what it was sent."""

    __slots__ = ("configuration", "sessions", "single_file", "snapshots", "startup")

    def __init__(
        self,
        configuration: dict[str, list[str]],
        startup: RecordedResponses,
        snapshots: RecordedResponses,
        sessions: list[Path],
        single_file: bool = False,
    ) -> None:
        self.configuration = configuration
        self.startup = startup
        self.snapshots = snapshots
        self.sessions = sessions
        self.single_file = single_file


def load_recording(directory: Path, name: str, translate_rest: RestTranslation) -> Recording:
    """Read `name`'s start-up and REST files; `translate_rest(url, body)` may rewrite each call.

    A recorder of early 2021 (cryptofeed's sample `BITSTAMP-b88f8b.0`) wrote one file per feed:
    the configuration, the websocket session (connect, sent and received lines) and the REST
    calls made while running, but no start-up symbol lists. Such a file is its own session, and
    the start-up calls it lacks are taken from the exchange's start-up file `EXCHANGE.0` beside
    it when there is one (symbol lists of another day: an instrument they lack cannot be named).

    Raises FileNotFoundError when the start-up file or every websocket session is missing and
    ValueError (with file and line) for an unreadable start-up line: without them no feed can
    be built, so these fail the whole replay rather than one message.
    """
    startup_path = directory / f"{name}.0"
    if not startup_path.is_file():
        raise FileNotFoundError(f"no cryptofeed recording {startup_path}")
    sessions = sorted(directory.glob(f"{name}.ws.*"), key=_session_order)
    if not sessions and _connected_address(startup_path):
        sessions = [startup_path]
    if not sessions:
        raise FileNotFoundError(f"no websocket session {name}.ws.N.M in {directory}")

    configuration: dict[str, list[str]] | None = None
    startup = RecordedResponses()
    snapshots = RecordedResponses()
    single_file = sessions == [startup_path]
    connected = False
    for line_no, line in _lines(startup_path):
        head = line.partition(": ")[0]
        if line.startswith(_CONFIGURATION):
            configuration = _parse_json(line[len(_CONFIGURATION) :], startup_path, line_no)
        elif not single_file:
            _add_rest_call(startup, line, startup_path, line_no, translate_rest)
        elif " <-> " in head:
            connected = True
        elif line.startswith(_URL_SCHEMES) and " -> " in head:
            store = snapshots if connected else startup
            _add_rest_call(store, line, startup_path, line_no, translate_rest)
    if configuration is None:
        raise ValueError(f"{startup_path}: no 'configuration:' line naming channels and symbols")
    exchange_startup = directory / f"{_exchange_of(name)}.0"
    if single_file and exchange_startup != startup_path and exchange_startup.is_file():
        for line_no, line in _lines(exchange_startup):
            if not line.startswith(_CONFIGURATION):
                _add_rest_call(startup, line, exchange_startup, line_no, translate_rest,
                               missing_only=True)

    for path in sorted(directory.glob(f"{name}.http.*"), key=_session_order):
        for line_no, line in _lines(path):
            _add_rest_call(snapshots, line, path, line_no, translate_rest)
    return Recording(configuration, startup, snapshots, sessions, single_file)


def _exchange_of(name: str) -> str:
    """`BITSTAMP` of a recorder's `BITSTAMP-b88f8b`."""
    return re.sub(r"-[0-9a-f]+$", "", name)


def websocket_sessions(sessions: list[Path]) -> list[tuple[str | None, list[Path]]]:
    """`(address, files)` per websocket session N, its rotations M in order; the address is
    the URL of the session's `URL <-> ts` connect line (None when the recording has none)."""
    grouped: dict[int, list[Path]] = {}
    for path in sessions:
        grouped.setdefault(_session_order(path)[0], []).append(path)
    return [(_connected_address(paths[0]), paths) for paths in grouped.values()]


def _connected_address(path: Path) -> str | None:
    """The URL of the session's `URL <-> ts` connect line: the first line of a session file,
    the first after the configuration and start-up calls of a single-file recording."""
    for _, line in _lines(path):
        if line.startswith(_CONFIGURATION) or (line.startswith(_URL_SCHEMES)
                                               and " -> " in line.partition(": ")[0]):
            continue
        url, connected, _ = line.partition(" <-> ")
        return url if connected and url.startswith(_URL_SCHEMES) else None
    return None


def received_lines(sessions: list[Path]) -> Iterator[tuple[str, str]]:
    """`(location, line)` for every received message, sessions one after another.

    Connect and sent lines start with the URL and are skipped; anything else is a received
    message, including a corrupt line, which the caller must account for.
    """
    for path in sessions:
        for line_no, line in _lines(path):
            if not line.startswith(_URL_SCHEMES) and not line.startswith(_CONFIGURATION):
                yield f"{path.name}:{line_no}", line


def split_received(line: str) -> tuple[int, str, str | bytes]:
    """`(receive_ns, seconds, message)` of a received line `ts: message`.

    A binary websocket frame (Huobi's gzip, Upbit's and older OKX/OKCoin frames) was written as
    Python prints bytes, `b'\\x1f\\x8b...'`: it is handed back as those bytes, as received.
    """
    seconds, separator, message = line.partition(": ")
    if not separator:
        raise ValueError("not a recorded message 'timestamp: message'")
    if message[:2] in ("b'", 'b"'):
        message = _frame_bytes(message)
    return seconds_to_ns(seconds), seconds, message


def _frame_bytes(text: str) -> bytes:
    try:
        frame = ast.literal_eval(text)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"unreadable binary frame: {exc}") from None
    if not isinstance(frame, bytes):
        raise ValueError("unreadable binary frame: not a bytes literal")
    return frame


_API_VERSION = re.compile(r"/v\d+/")
_DEPTH_PARAMETERS = ("limit", "depth")


def _alike(url: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """`url` without its API version and depth, its host reduced to the domain: where a call
    asked to the same endpoint of another version or host of the exchange (Binance's
    `www.binance.com/api/v1/depth` of April 2021, now `api.binance.com/api/v3/depth`), or for
    another depth, is the same call."""
    address, _, query = url.partition("?")
    host, _, path = address.partition("://")[2].partition("/")
    parameters = tuple(sorted(
        (name, value) for name, _, value in (p.partition("=") for p in query.split("&") if p)
        if name not in _DEPTH_PARAMETERS
    ))
    domain = ".".join(host.split(":")[0].split(".")[-2:])
    return domain, _API_VERSION.sub("/v/", "/" + path), parameters


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", errors="replace") as file:
        for line_no, line in enumerate(file, start=1):
            line = line.rstrip("\n")
            if line:
                yield line_no, line


def _add_rest_call(
    store: RecordedResponses, line: str, path: Path, line_no: int, translate: RestTranslation,
    *, missing_only: bool = False,
) -> None:
    url, arrow, rest = line.partition(" -> ")
    seconds, colon, body = rest.partition(": ")
    if not (arrow and colon):
        raise ValueError(f"{path}:{line_no}: not a recorded REST call 'URL -> ts: body'")
    url, body = translate(url, body)
    if not (missing_only and store.holds(url)):
        store.add(url, seconds_to_ns(seconds), body)


def _parse_json(text: str, path: Path, line_no: int) -> dict:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}:{line_no}: unreadable configuration: {exc}") from None


def _session_order(path: Path) -> tuple[int, ...]:
    """`NAME.ws.10.0` after `NAME.ws.9.0`: numeric, not text, order of the counters."""
    return tuple(int(part) for part in path.name.split(".") if part.isdigit())
