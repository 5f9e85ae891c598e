"""Stream the rows of a JSON document (a list of row objects, or an ``{id: row}`` mapping).

``json.load`` would hold the whole file and every parsed row at once; a 100k-row annotation file
must not. This reads the file in chunks and hands ``json.JSONDecoder.raw_decode`` one element at a
time, so memory is bounded by the largest row, not the file. A syntax error in the middle of a
JSON document leaves no reliable next row boundary, so it is a file-level error (``JsonStreamError``);
JSONL files, where every line stands alone, are read line by line elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

_WHITESPACE = " \t\n\r"
_DELIMITERS = _WHITESPACE + ",:]}"


class JsonStreamError(ValueError):
    """The document is not a JSON list or object of rows; the message says where."""


class _Cursor:
    """A sliding window over a text stream: ``buf[pos:]`` is what is not consumed yet."""

    def __init__(self, handle: TextIO, chunk_chars: int) -> None:
        self.handle = handle
        self.chunk_chars = chunk_chars
        self.buf = ""
        self.pos = 0
        self.eof = False

    def more(self) -> bool:
        chunk = self.handle.read(self.chunk_chars)
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        if not chunk:
            self.eof = True
        return bool(chunk)

    def peek(self) -> str:
        """The next non-whitespace character ('' at end of input), without consuming it."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def expect(self, chars: str, what: str) -> str:
        char = self.peek()
        if not char or char not in chars:
            found = repr(char) if char else "end of file"
            raise JsonStreamError(f"expected {what}, found {found}")
        self.pos += 1
        return char

    def value(self, decoder: json.JSONDecoder) -> Any:
        """Decode one value; refill while the buffer ends mid-value."""
        self.peek()
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                if self.eof:
                    raise JsonStreamError(err.msg) from None
            else:
                # A number cut by the chunk edge ("2." of "2.5") decodes too: accept a value only
                # when a delimiter (or the end of input) follows it.
                if self.eof or (end < len(self.buf) and self.buf[end] in _DELIMITERS):
                    self.pos = end
                    return value
            self.more()


def iter_json_rows(handle: TextIO, chunk_chars: int = 1 << 20) -> Iterator[tuple[str | None, Any]]:
    """Yield ``(key, value)`` per element: key is None in a list, the member name in an object.

    >>> import io
    >>> list(iter_json_rows(io.StringIO('[{"a": 1}, {"a": 2}]'), chunk_chars=3))
    [(None, {'a': 1}), (None, {'a': 2})]
    >>> list(iter_json_rows(io.StringIO('{"7": {"q": "x"}}')))
    [('7', {'q': 'x'})]
    """
    cursor = _Cursor(handle, chunk_chars)
    decoder = json.JSONDecoder()
    opener = cursor.expect("[{", "'[' (a list of rows) or '{' (an id -> row mapping)")
    closer = "]" if opener == "[" else "}"
    index = 0
    try:
        if cursor.peek() == closer:
            cursor.pos += 1
        else:
            while True:
                key = None
                if opener == "{":
                    key = cursor.value(decoder)
                    if not isinstance(key, str):
                        raise JsonStreamError("expected a member name")
                    cursor.expect(":", "':'")
                yield key, cursor.value(decoder)
                index += 1
                if cursor.expect("," + closer, f"',' or '{closer}'") == closer:
                    break
        if cursor.peek():
            raise JsonStreamError("extra data after the end of the document")
    except JsonStreamError as err:
        raise JsonStreamError(f"element {index}: {err}") from None
