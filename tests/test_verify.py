"""Hash-chain verification on a database of the test's own, tampered with by a superuser who
switches the triggers off, and the canonical JSON the digests are taken over."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import APP_ROLE, ConnectionOptions, EventStore, NewEvent, create_pool, verify_chains
from events.hashing import (
    canonical_json,
    chain_hash,
    content_digest,
    digest_of_parts,
    encode_canonical,
    field_part,
)
from events.verify import BrokenLink

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

STREAMS = ("meeting-a", "meeting-b", "visit-c")
PER_STREAM = 5

# Values whose JSON text jsonb rewrites (exponents, negative zero) or that are easy to get wrong.
AWKWARD: list[Any] = [
    1e20,
    -1e20,
    1e23,
    1.2345678901234567e19,
    1e300,
    1.7976931348623157e308,
    -0.0,
    0.0,
    1.5,
    -2.25,
    1e-7,
    5e-324,
    0.1,
    12345678901234567890,
    -(2**70),
    "Zürich ✓ 北京 \U0001f54a",
    'line\nbreak\t"quoted" \\ \u001f',
    [1, [2.5, [3e21, []]], {"z": -0.0, "a": None}],
    {"b": True, "a": False, "é": {"y": 1e16, "x": [1e-20]}},
]


@pytest.fixture
async def own_store(own_dsn: str) -> AsyncIterator[EventStore]:
    """An event store over the app role's pool on ``own_dsn``."""
    pool = await create_pool(
        ConnectionOptions(dsn=own_dsn, role=APP_ROLE, min_pool_size=1, max_pool_size=4)
    )
    yield EventStore(pool)
    await pool.close()


@pytest.fixture
async def filled(own_store: EventStore) -> EventStore:
    """``STREAMS`` with ``PER_STREAM`` events each, in several appends."""
    for stream in STREAMS:
        await own_store.append(
            stream, [NewEvent(type="test.step", data={"n": 1, "stream": stream})]
        )
        await own_store.append(
            stream,
            [
                NewEvent(type="test.step", data={"n": n, "awkward": AWKWARD[n]})
                for n in range(2, PER_STREAM + 1)
            ],
        )
    return own_store


async def _tamper(dsn: str, sql: str, *args: Any) -> None:
    """Run ``sql`` as superuser with triggers disabled (what an attacker with access does)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET session_replication_role = replica")
        status = await conn.execute(sql, *args)
        assert status.endswith(" 1"), status
    finally:
        await conn.close()


async def _row(dsn: str, stream: str, version: int) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT event_id, type, schema_version, data::text, metadata::text, hash "
            "FROM events WHERE stream_id = $1 AND stream_version = $2",
            stream,
            version,
        )
    finally:
        await conn.close()
    assert row is not None
    return row


def _recompute(stream: str, version: int, row: asyncpg.Record, previous: bytes) -> bytes:
    digest = content_digest(
        stream_id=stream,
        event_id=row["event_id"],
        type=row["type"],
        schema_version=row["schema_version"],
        data=canonical_json(row["data"]),
        metadata=canonical_json(row["metadata"]),
    )
    return chain_hash(previous, version, digest)


async def test_intact_chains_verify(own_dsn: str, filled: EventStore) -> None:
    report = await verify_chains(filled.pool)
    assert report.ok
    assert (report.streams, report.events) == (len(STREAMS), len(STREAMS) * PER_STREAM)
    assert report.broken == []
    # Paging by (stream, version) across page boundaries gives the same answer.
    for page in (1, 2, 3, 7):
        paged = await verify_chains(filled.pool, page=page)
        assert (paged.ok, paged.streams, paged.events) == (True, report.streams, report.events)


async def test_verify_on_an_empty_log(own_dsn: str) -> None:
    conn = await asyncpg.connect(own_dsn)
    try:
        report = await verify_chains(conn)
    finally:
        await conn.close()
    assert report.ok
    assert (report.streams, report.events) == (0, 0)


async def test_changed_data_is_reported_at_that_version_only(
    own_dsn: str, filled: EventStore
) -> None:
    target = STREAMS[1]
    before = await _row(own_dsn, target, 2)
    first = await _row(own_dsn, target, 1)
    await _tamper(
        own_dsn,
        "UPDATE events SET data = jsonb_set(data, '{n}', '999') "
        "WHERE stream_id = $1 AND stream_version = 2",
        target,
    )
    after = await _row(own_dsn, target, 2)
    assert after["data"] != before["data"]
    assert after["hash"] == before["hash"]

    for page in (2, 5_000):
        report = await verify_chains(filled.pool, page=page)
        assert not report.ok
        assert (report.streams, report.events) == (len(STREAMS), len(STREAMS) * PER_STREAM)
        assert report.broken == [
            BrokenLink(
                stream_id=target,
                stream_version=2,
                expected_hash=_recompute(target, 2, after, first["hash"]).hex(),
                found_hash=before["hash"].hex(),
                reason="stored hash does not match the recomputed one",
            )
        ]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("type", "'test.other'"),
        ("schema_version", "2"),
        ("metadata", """'{"recorded_by": "mallory"}'::jsonb"""),
        ("event_id", "gen_random_uuid()"),
        ("stream_id", "'meeting-a'"),
    ],
)
async def test_every_hashed_column_is_covered(
    own_dsn: str, filled: EventStore, column: str, value: str
) -> None:
    target = STREAMS[2]
    # Moving the last event of visit-c to meeting-a (as version 99) breaks both streams.
    version = PER_STREAM if column == "stream_id" else 3
    extra = ", stream_version = 99" if column == "stream_id" else ""
    await _tamper(
        own_dsn,
        f"UPDATE events SET {column} = {value}{extra} WHERE stream_id = $1 AND stream_version = $2",
        target,
        version,
    )
    report = await verify_chains(filled.pool)
    broken = {(b.stream_id, b.stream_version) for b in report.broken}
    if column == "stream_id":
        # visit-c merely lost its last event, which no hash chain can tell on its own.
        assert broken == {("meeting-a", 99)}
    else:
        assert broken == {(target, version)}


async def test_a_deleted_middle_event_is_reported_as_missing(
    own_dsn: str, filled: EventStore
) -> None:
    target = STREAMS[0]
    await _tamper(own_dsn, "DELETE FROM events WHERE stream_id = $1 AND stream_version = 3", target)
    report = await verify_chains(filled.pool)
    assert [(b.stream_id, b.stream_version, b.reason) for b in report.broken] == [
        (target, 4, "version 3 is missing")
    ]
    assert report.events == len(STREAMS) * PER_STREAM - 1


async def test_a_deleted_first_event_is_reported_as_missing(
    own_dsn: str, filled: EventStore
) -> None:
    target = STREAMS[2]
    await _tamper(own_dsn, "DELETE FROM events WHERE stream_id = $1 AND stream_version = 1", target)
    report = await verify_chains(filled.pool)
    assert [(b.stream_id, b.stream_version, b.reason) for b in report.broken] == [
        (target, 2, "version 1 is missing")
    ]


async def test_each_broken_stream_is_reported_once(own_dsn: str, filled: EventStore) -> None:
    for stream in (STREAMS[0], STREAMS[2]):
        for version in (2, 4):
            await _tamper(
                own_dsn,
                "UPDATE events SET data = data || '{\"x\": 1}' "
                "WHERE stream_id = $1 AND stream_version = $2",
                stream,
                version,
            )
    report = await verify_chains(filled.pool, page=3)
    assert [(b.stream_id, b.stream_version) for b in report.broken] == [
        (STREAMS[0], 2),
        (STREAMS[2], 2),
    ]


def _diplofeed() -> str:
    found = shutil.which("diplofeed", path=str(Path(sys.executable).parent)) or shutil.which(
        "diplofeed"
    )
    assert found is not None, "the diplofeed command is not installed next to this Python"
    return found


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DIPLOFEED_") and not k.endswith("DATABASE_URL")
    }
    process = await asyncio.create_subprocess_exec(
        _diplofeed(),
        *args,
        env={**base, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_verify(own_dsn: str, filled: EventStore) -> None:
    status, out, err = await _cli("verify", env={"DATABASE_URL": own_dsn})
    assert status == 0, err
    assert "BROKEN" not in out
    assert f"checked {len(STREAMS) * PER_STREAM} events in {len(STREAMS)} streams" in out
    assert "all chains intact" in out

    target = STREAMS[1]
    found = (await _row(own_dsn, target, 2))["hash"].hex()
    await _tamper(
        own_dsn,
        "UPDATE events SET data = jsonb_set(data, '{n}', '7') "
        "WHERE stream_id = $1 AND stream_version = 2",
        target,
    )
    status, out, err = await _cli("verify", env={"DATABASE_URL": own_dsn})
    assert status == 1, err
    broken = [line for line in out.splitlines() if line.startswith("BROKEN")]
    assert len(broken) == 1
    assert broken[0].startswith(f"BROKEN stream={target} version=2 expected=")
    assert f"found={found}" in broken[0]
    assert "1 broken" in out


# -- canonical JSON ----------------------------------------------------------------------------


@pytest.fixture
async def admin(server_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(server_url)
    yield conn
    await conn.close()


async def _jsonb(conn: asyncpg.Connection, text: str | bytes) -> str:
    raw = text.decode() if isinstance(text, bytes) else text
    result: str = await conn.fetchval("SELECT $1::jsonb::text", raw)
    return result


@pytest.mark.parametrize("value", AWKWARD, ids=repr)
async def test_canonical_json_survives_jsonb(admin: asyncpg.Connection, value: Any) -> None:
    written = msgspec.json.encode({"v": value, "nested": [value, {"v": value}]})
    canonical = canonical_json(written)
    # What Python writes and what PostgreSQL gives back are the same canonical bytes...
    assert canonical_json(await _jsonb(admin, written)) == canonical
    # ...and the canonical form itself survives the round trip unchanged.
    assert canonical_json(await _jsonb(admin, canonical)) == canonical
    assert canonical_json(canonical) == canonical
    assert encode_canonical({"v": value, "nested": [value, {"v": value}]}) == canonical


@pytest.mark.parametrize(
    "text",
    [
        '{"v": 1.5e3}',
        '{"v": 1.50e2}',
        '{"v": 1.500e2}',
        '{"v": 1E+2}',
        '{"v": -1e-3}',
        '{"v": 100000000000000000000.0}',
        '{"v": 123456789012345678901.2}',
        '{"v": 1.234567890123456789012e20}',
        '{"v": 12345678901234567.5}',
        '{"v": 1e400}',
        '{"v": -0.00}',
        '{"v": -0}',
        '{"v": 0.0000001}',
        '{"b": [1.0, 2.50, {"c": 3e0}], "a": "1e5 -0.0"}',
    ],
)
async def test_canonical_json_of_hand_written_json(admin: asyncpg.Connection, text: str) -> None:
    canonical = canonical_json(text)
    assert canonical_json(await _jsonb(admin, text)) == canonical
    assert canonical_json(await _jsonb(admin, canonical)) == canonical
    assert canonical_json(canonical) == canonical


async def test_canonical_json_survives_jsonb_for_many_floats(admin: asyncpg.Connection) -> None:
    rng = random.Random(20240601)
    values = [rng.uniform(-1, 1) * 10 ** rng.uniform(-30, 300) for _ in range(2_000)]
    values += [float(rng.randrange(1, 10**6)) * 10**e for e in range(10, 40) for _ in range(3)]
    texts = [msgspec.json.encode({"v": v}).decode() for v in values]
    returned: list[str] = [
        r[0] for r in await admin.fetch("SELECT t::jsonb::text FROM unnest($1::text[]) t", texts)
    ]
    mismatched = [
        (text, back)
        for text, back in zip(texts, returned, strict=True)
        if canonical_json(text) != canonical_json(back)
    ]
    assert mismatched == []


def test_canonical_json_normalises_what_jsonb_rewrites() -> None:
    assert (
        canonical_json('{"b": 1, "a": [1e20, -0.0, 1.5]}')
        == b'{"a":[100000000000000000000,0.0,1.5],"b":1}'
    )
    assert canonical_json(b'{"v": 1e23}') == b'{"v":100000000000000000000000}'
    assert canonical_json('{"v": -1E+20}') == b'{"v":-100000000000000000000}'
    assert canonical_json('{"v": 1e-7}') == canonical_json('{"v": 0.0000001}')
    assert canonical_json('{"v": 100000000000000000000.0}') == b'{"v":100000000000000000000}'
    assert canonical_json('{"v": 1.5e3}') == b'{"v":1500}'
    assert canonical_json('{"v": 1.25e1}') == b'{"v":12.5}'
    assert canonical_json('{"k": "1e5 -0.0"}') == b'{"k":"1e5 -0.0"}'
    assert canonical_json('{"é": "\\u00e9", "a": "✓"}') == '{"a":"✓","é":"é"}'.encode()


async def test_verify_accepts_events_with_awkward_values(
    own_dsn: str, own_store: EventStore
) -> None:
    data = {f"k{i}": value for i, value in enumerate(AWKWARD)}
    first = NewEvent(type="test.awkward", data=data)
    second = NewEvent(type="test.awkward", data={"all": AWKWARD})
    await own_store.append("awkward-1", [first])
    await own_store.append("awkward-1", [second])
    report = await verify_chains(own_store.pool)
    assert report.ok, report.broken
    assert report.events == 2
    stored = await own_store.read_stream("awkward-1")
    assert canonical_json(stored.events[0].data) == encode_canonical(data)
    # Pre-encoded JSON is stored and verified like the same values given as Python objects.
    raw = NewEvent(
        type="test.awkward",
        data=msgspec.Raw(b'{"big": 100000000000000000000.0, "exp": 1.5e3, "neg": -0.0}'),
    )
    await own_store.append("awkward-2", [raw])
    assert (await verify_chains(own_store.pool)).ok
    # Retrying an append is recognised as a replay: stored and new content compare equal.
    again = await own_store.append("awkward-1", [second])
    assert again.replayed
    assert (again.first_version, again.last_version) == (2, 2)


@pytest.mark.parametrize(
    "text",
    ["4.0", "0.1", "-2.25", "9999999999999998.0", "-9999999999999998.0", "0.0", "-0.0", "1e-7"],
)
def test_the_float_hooks_shortcut_agrees_with_its_general_case(text: str) -> None:
    # Numbers without an exponent inside +-1e16 skip the general reading; the two must agree.
    general = canonical_json('{"v": ' + text.replace("e", "E") + "}")
    assert canonical_json('{"v": ' + text + "}") == general


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e20, -0.0, 0.0, 1e-7, 1e16, 9999999999999998.0, 0.0001, 5e-324])
    | st.text(alphabet=st.sampled_from('ae0159-.E "\\\n✓'), max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=5), _json_values, max_size=5))
def test_the_one_pass_encoding_agrees_with_the_full_canonical_form(value: dict[str, Any]) -> None:
    # encode_canonical skips the decode and re-encode when its byte check finds no number jsonb
    # rewrites; whichever path it takes, the bytes must be the full canonical form.
    full = canonical_json(msgspec.json.encode(value))
    assert encode_canonical(value) == full
    assert canonical_json(full) == full


def test_a_raw_value_given_whole_is_canonicalised() -> None:
    raw = msgspec.Raw(b'{"b": 1.5e3, "a": [ -0.0 ]}')
    assert encode_canonical(raw) == b'{"a":[0.0],"b":1500}'


def test_digest_of_parts_is_the_content_digest() -> None:
    event_id = uuid.uuid4()
    assert digest_of_parts(
        stream_part=field_part("meeting-1"),
        event_id=event_id,
        type_part=field_part("meeting.held"),
        schema_version=3,
        data=b'{"a":1}',
        metadata=b"{}",
    ) == content_digest(
        stream_id="meeting-1",
        event_id=event_id,
        type="meeting.held",
        schema_version=3,
        data=b'{"a":1}',
        metadata=b"{}",
    )
