"""aiosqlite with one hand-off to its thread per statement.

aiosqlite runs every call on a connection in that connection's own thread. SQLAlchemy's adapter
makes four calls per statement (open a cursor, execute, fetch the rows, close the cursor), so
each statement crossed to the thread and back four times, and each crossing wakes the event loop.
Here a cursor runs all four in one crossing and keeps the rows it fetched; SQLAlchemy's adapter
reads them without crossing again.
"""

import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

import aiosqlite

_Rows = list[Any]
_Outcome = tuple[Any, int, int | None, _Rows]


def connect(database: str, **kwargs: Any) -> aiosqlite.Connection:
    """Like `aiosqlite.connect`, awaitable, with cursors that run a statement in one hand-off."""

    def connector() -> sqlite3.Connection:
        opened: sqlite3.Connection = sqlite3.connect(database, **kwargs)
        return opened

    connection = _Connection(connector, iter_chunk_size=64)
    # As SQLAlchemy does for the connections it opens: a pool still open at exit holds no
    # thread that would keep the process alive.
    connection._thread.daemon = True
    return connection


class _Connection(aiosqlite.Connection):
    def cursor(self) -> "_Cursor":  # type: ignore[override]
        return _Cursor(self)

    async def rollback(self) -> None:
        # The pool rolls back every connection it takes back, also one whose transaction was
        # committed: nothing to send to the thread for that.
        if self._connection is not None and not self._connection.in_transaction:
            return
        await super().rollback()

    async def hand_off(
        self,
        function: Callable[[sqlite3.Connection, str, Any], _Outcome],
        sql: str,
        parameters: Any,
    ) -> _Outcome:
        """`function` run with the connection in the connection's thread."""
        # aiosqlite's own queue of calls for the thread; it is not typed.
        queued = self._execute(function, self._conn, sql, parameters)  # type: ignore[no-untyped-call]
        outcome: _Outcome = await queued
        return outcome


def _run(connection: sqlite3.Connection, sql: str, parameters: Any) -> _Outcome:
    cursor = connection.cursor()
    try:
        cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


def _run_many(connection: sqlite3.Connection, sql: str, parameters: Any) -> _Outcome:
    cursor = connection.cursor()
    try:
        cursor.executemany(sql, parameters)
        return None, cursor.rowcount, cursor.lastrowid, []
    finally:
        cursor.close()


class _Cursor:
    """The DB-API cursor's async face, as SQLAlchemy's aiosqlite adapter uses it. A statement's
    rows are all fetched with it: a streamed (server-side) read gets them at once too."""

    arraysize = 1

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: _Rows = []
        self._position = 0

    def __await__(self) -> Generator[Any, None, "_Cursor"]:  # older adapters await cursor()
        return self.__aenter__().__await__()

    async def __aenter__(self) -> "_Cursor":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> "_Cursor":
        self._take(await self._connection.hand_off(_run, sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> "_Cursor":
        self._take(await self._connection.hand_off(_run_many, sql, parameters))
        return self

    def _take(self, outcome: _Outcome) -> None:
        self.description, self.rowcount, self.lastrowid, self._rows = outcome
        self._position = 0

    async def fetchone(self) -> Any:
        taken = await self.fetchmany(1)
        return taken[0] if taken else None

    async def fetchmany(self, size: int | None = None) -> _Rows:
        # From a position, not by cutting the front off: a streamed read takes every row this
        # way, one or a few at a time.
        start = self._position
        self._position = min(start + (self.arraysize if size is None else size), len(self._rows))
        return self._rows[start : self._position]

    async def fetchall(self) -> _Rows:
        taken = self._rows[self._position :] if self._position else self._rows
        self._rows, self._position = [], 0
        return taken

    async def close(self) -> None:
        self._rows, self._position = [], 0
