"""Where persist stands in Kafka, kept in the database beside the rows it produced.

Exactly-once into PostgreSQL rests on one rule: a flush commits, in ONE transaction, the rows
of every message read so far and, per Kafka partition, the offset of the next message to
read (`persist_offsets`). A process killed at any point leaves either both or neither; on
start each partition is read again from its stored offset (none stored: the beginning), so
nothing is written twice and nothing is skipped. Kafka group commits and Bytewax snapshots
play no part in it.

`md_book_top` rows depend on the book built from every earlier L2 message, so the books of
the instruments a flush touched are stored in the same transaction (`persist_books`,
pickled `models.book.OrderBook`s) and restored on start: the rows after a restart are the
rows an uninterrupted run would have written.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping

import psycopg

# Plain tables in both schema flavours: a handful of rows, updated in place.
POSITIONS_DDL = (
    "CREATE TABLE persist_offsets (\n"
    "    consumer text NOT NULL,\n"
    "    topic text NOT NULL,\n"
    "    partition integer NOT NULL,\n"
    "    next_offset bigint NOT NULL,\n"
    "    updated_at timestamptz NOT NULL DEFAULT now(),\n"
    "    PRIMARY KEY (consumer, topic, partition)\n"
    ")",
    "CREATE TABLE persist_books (\n"
    "    consumer text NOT NULL,\n"
    "    instrument text NOT NULL,\n"
    "    book bytea NOT NULL,\n"
    "    PRIMARY KEY (consumer, instrument)\n"
    ")",
)

Partition = tuple[str, int]  # (full topic name, partition index)


def load_offsets(conn: psycopg.Connection, consumer: str) -> dict[Partition, int]:
    """The next offset to read of every partition `consumer` has stored rows from."""
    rows = conn.execute(
        "SELECT topic, partition, next_offset FROM persist_offsets WHERE consumer = %s",
        (consumer,),
    ).fetchall()
    return {(topic, partition): offset for topic, partition, offset in rows}


def load_books(conn: psycopg.Connection, consumer: str) -> dict[str, object]:
    """The order books `consumer` stored, by instrument key (`venue:symbol`)."""
    rows = conn.execute(
        "SELECT instrument, book FROM persist_books WHERE consumer = %s", (consumer,)
    ).fetchall()
    # Our own pickles, written by this module into our own database.
    return {instrument: pickle.loads(book) for instrument, book in rows}


def save(
    conn: psycopg.Connection,
    consumer: str,
    offsets: Mapping[Partition, int],
    books: Mapping[str, object],
) -> None:
    """Upsert offsets and books; call inside the transaction that wrote their rows."""
    with conn.cursor() as cursor:
        if offsets:
            cursor.executemany(
                "INSERT INTO persist_offsets (consumer, topic, partition, next_offset)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (consumer, topic, partition)"
                " DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()",
                [(consumer, topic, part, offset) for (topic, part), offset in offsets.items()],
            )
        if books:
            cursor.executemany(
                "INSERT INTO persist_books (consumer, instrument, book) VALUES (%s, %s, %s)"
                " ON CONFLICT (consumer, instrument) DO UPDATE SET book = EXCLUDED.book",
                [
                    (consumer, key, pickle.dumps(book, pickle.HIGHEST_PROTOCOL))
                    for key, book in books.items()
                ],
            )
