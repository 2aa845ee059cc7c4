"""Following the feed: catch-up then live events, resuming by cursor, polling without a
listener, notifications, and the listener's reconnection after its connection is killed."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import asyncpg
import msgspec

from events import (
    START,
    ConnectionOptions,
    Cursor,
    EventStore,
    FeedFilter,
    FeedListener,
    NewEvent,
    Notifier,
    RecordedEvent,
    connect,
)
from events.notify import FEED_CHANNEL
from service.problems import problem_details_config

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable

    from events.records import FeedPage

# Long enough that a follower relying on them would hit the test's own timeout: a store built
# with these is only woken by notifications (or the listener's reconnection).
NEVER = 3_600.0
TIMEOUT = 20.0


def new_category() -> str:
    """A category no other test uses."""
    return f"t{uuid4().hex[:10]}"


def new_events(n: int, label: str = "") -> list[NewEvent]:
    return [NewEvent(type="Follow.Probe", data={"label": label, "i": i}) for i in range(n)]


def ids(events: list[RecordedEvent] | list[NewEvent]) -> list[UUID]:
    return [e.event_id for e in events]


async def eventually(check: Callable[[], bool]) -> None:
    """Wait until ``check()`` holds (state of a background task with no event to wait on)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


class Follower:
    """Runs ``store.follow`` in a task and queues what it yields."""

    def __init__(
        self,
        store: EventStore,
        *,
        after: Cursor = START,
        filter: FeedFilter | None = None,
        batch_size: int = 1_000,
    ) -> None:
        self.queue: asyncio.Queue[RecordedEvent] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(store, after, filter, batch_size))

    async def _run(
        self, store: EventStore, after: Cursor, flt: FeedFilter | None, batch_size: int
    ) -> None:
        # An async generator: closing it unsubscribes it from the listener at once.
        feed = cast(
            "AsyncGenerator[RecordedEvent, None]",
            store.follow(after, filter=flt, batch_size=batch_size),
        )
        async with contextlib.aclosing(feed):
            async for event in feed:
                await self.queue.put(event)

    async def take(self, count: int, *, nudge: EventStore | None = None) -> list[RecordedEvent]:
        """The next ``count`` events. With ``nudge``, keep sending feed notifications while
        waiting: wake-ups then still only come through LISTEN/NOTIFY, but a notification that
        arrived while an unrelated transaction held the horizon does not stall the test."""
        taken: list[RecordedEvent] = []
        async with asyncio.timeout(TIMEOUT):
            while len(taken) < count:
                if self._task.done():
                    self._task.result()
                    raise AssertionError("the follower stopped")
                if nudge is None:
                    taken.append(await self.queue.get())
                    continue
                try:
                    taken.append(await asyncio.wait_for(self.queue.get(), 0.2))
                except TimeoutError:
                    nudge.notify_committed()
        return taken

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@contextlib.asynccontextmanager
async def following(
    store: EventStore,
    *,
    after: Cursor = START,
    filter: FeedFilter | None = None,
    batch_size: int = 1_000,
) -> AsyncIterator[Follower]:
    follower = Follower(store, after=after, filter=filter, batch_size=batch_size)
    try:
        yield follower
    finally:
        await follower.close()


async def assert_nothing_more(
    follower: Follower, store: EventStore, stream_id: str, *, nudge: EventStore | None = None
) -> None:
    """Append a sentinel: if it is the very next event, nothing was duplicated or extra."""
    sentinel = new_events(1, "sentinel")
    await store.append(stream_id, sentinel)
    assert ids(await follower.take(1, nudge=nudge)) == ids(sentinel)
    assert follower.queue.empty()


async def test_follow_yields_existing_then_new_events(store: EventStore) -> None:
    category = new_category()
    flt = FeedFilter(category=category)
    existing = new_events(3, "existing")
    await store.append(f"{category}-a", existing)

    async with following(store, filter=flt, batch_size=2) as follower:
        assert ids(await follower.take(3)) == ids(existing)
        later = new_events(2, "later")
        await store.append(f"{category}-b", later[:1])
        await store.append(f"{category}-a", later[1:])
        assert ids(await follower.take(2)) == ids(later)
        await assert_nothing_more(follower, store, f"{category}-c")


async def test_append_sends_a_feed_notification(store: EventStore, owner_dsn: str) -> None:
    received = asyncio.Event()
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.add_listener(FEED_CHANNEL, lambda *_: received.set())
        await store.append(f"{new_category()}-a", new_events(1))
        async with asyncio.timeout(TIMEOUT):
            await received.wait()
    finally:
        await conn.close()


async def test_follower_is_woken_by_the_listener(
    pool: asyncpg.Pool, listener: FeedListener
) -> None:
    """No polling at all: only notifications received by the listener wake the follower."""
    assert listener.listening
    notifier = Notifier(pool)
    quiet = EventStore(
        pool, notifier=notifier, listener=listener, poll_interval=NEVER, idle_poll_interval=NEVER
    )
    category = new_category()
    flt = FeedFilter(category=category)
    subscribers = listener.subscribers
    try:
        async with following(quiet, filter=flt) as follower:
            for round in range(3):
                batch = new_events(2, f"round {round}")
                await quiet.append(f"{category}-a", batch)
                assert ids(await follower.take(2, nudge=quiet)) == ids(batch)
            await assert_nothing_more(follower, quiet, f"{category}-b", nudge=quiet)
        # Closing the follower unsubscribed it from the listener.
        assert listener.subscribers == subscribers
    finally:
        await notifier.close()


async def test_follow_resumes_from_a_cursor_without_duplicates(store: EventStore) -> None:
    category = new_category()
    flt = FeedFilter(category=category)
    first = new_events(5, "first")
    await store.append(f"{category}-a", first[:2])
    end_of_first = (await store.append(f"{category}-b", first[2:])).cursor

    async with following(store, filter=flt, batch_size=2) as follower:
        head = await follower.take(3)
    assert ids(head) == ids(first[:3])
    resume_at = Cursor.decode(head[-1].cursor.encode())

    async with following(store, after=resume_at, filter=flt) as follower:
        assert ids(await follower.take(2)) == ids(first[3:])
        later = new_events(3, "later")
        await store.append(f"{category}-a", later)
        assert ids(await follower.take(3)) == ids(later)
        await assert_nothing_more(follower, store, f"{category}-c")

    # Resuming from an append's cursor yields only what came after that append.
    async with following(store, after=end_of_first, filter=flt) as follower:
        tail = await follower.take(4)
    assert ids(tail[:3]) == ids(later)
    assert msgspec.json.decode(tail[3].data)["label"] == "sentinel"


async def test_follow_polls_without_a_listener(pool: asyncpg.Pool) -> None:
    polling = EventStore(pool, poll_interval=0.05)
    assert polling.listener is None
    category = new_category()
    flt = FeedFilter(category=category)
    existing = new_events(2, "existing")
    await polling.append(f"{category}-a", existing)

    async with following(polling, filter=flt) as follower:
        assert ids(await follower.take(2)) == ids(existing)
        for round in range(3):
            batch = new_events(1, f"round {round}")
            await polling.append(f"{category}-a", batch)
            assert ids(await follower.take(1)) == ids(batch)
        # Events committed by a caller's transaction, with no notification at all.
        async with pool.acquire() as conn, conn.transaction():
            inside = new_events(2, "inside")
            await polling.append(f"{category}-b", inside, connection=conn)
        assert ids(await follower.take(2)) == ids(inside)
        await assert_nothing_more(follower, polling, f"{category}-c")


async def test_listener_reconnects_and_delivers_what_was_missed(
    pool: asyncpg.Pool, app_options: ConnectionOptions, owner_dsn: str
) -> None:
    application_name = f"diplofeed-test-{uuid4().hex[:12]}"
    options = msgspec.structs.replace(app_options, application_name=application_name)
    may_connect = asyncio.Event()
    may_connect.set()

    async def connect_when_allowed() -> asyncpg.Connection:
        await may_connect.wait()
        return await connect(options)

    listener = FeedListener(connect_when_allowed, health_interval=0.5, max_backoff=0.2)
    notifier = Notifier(pool)
    quiet = EventStore(
        pool, notifier=notifier, listener=listener, poll_interval=NEVER, idle_poll_interval=NEVER
    )
    category = new_category()
    flt = FeedFilter(category=category)
    owner = await asyncpg.connect(owner_dsn)
    await listener.start()
    try:
        assert listener.listening
        assert listener.reconnects == 0
        async with following(quiet, filter=flt) as follower:
            before = new_events(1, "before")
            await quiet.append(f"{category}-a", before)
            assert ids(await follower.take(1, nudge=quiet)) == ids(before)

            # Kill the listener's connection, and keep it from coming back for now.
            may_connect.clear()
            killed = await owner.fetch(
                "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity"
                " WHERE application_name = $1",
                application_name,
            )
            assert [row["killed"] for row in killed] == [True]
            await eventually(lambda: listener.reconnects >= 1)
            assert not listener.listening
            assert listener.reconnects == 1

            # Appended while nobody listens: the notification is lost.
            missed = new_events(2, "missed")
            await quiet.append(f"{category}-b", missed)
            await notifier.close()

            # The reconnection itself wakes every follower.
            waiter = listener.subscribe()
            try:
                waiter.clear()
                may_connect.set()
                async with asyncio.timeout(TIMEOUT):
                    await waiter.wait()
            finally:
                listener.unsubscribe(waiter)
            assert listener.listening
            assert ids(await follower.take(2, nudge=quiet)) == ids(missed)

            # And notifications flow again over the new connection.
            after = new_events(1, "after")
            await quiet.append(f"{category}-a", after)
            assert ids(await follower.take(1, nudge=quiet)) == ids(after)
            await assert_nothing_more(follower, quiet, f"{category}-c", nudge=quiet)

            rows = await owner.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1", application_name
            )
            assert len(rows) == 1  # the old connection is gone, one new one listens
        assert listener.reconnects == 1
    finally:
        may_connect.set()
        await listener.close()
        await notifier.close()
        await owner.close()
    assert not listener.listening


async def test_listener_survives_a_refused_reconnection(owner_dsn: str) -> None:
    """The server refusing the listener's reconnection ("too many connections") is transient:
    the listener keeps trying and is back once the server accepts connections again."""
    role = f"diplofeed_t{uuid4().hex[:12]}"
    owner = await asyncpg.connect(owner_dsn)
    password = uuid4().hex
    await owner.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
    parts = urlsplit(owner_dsn)
    host = f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    role_dsn = urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))
    refusals: list[BaseException] = []

    async def connect_as_role() -> asyncpg.Connection:
        try:
            return await asyncpg.connect(role_dsn, server_settings={"application_name": role})
        except Exception as exc:
            refusals.append(exc)
            raise

    listener = FeedListener(connect_as_role, health_interval=0.5, max_backoff=0.2)
    try:
        await listener.start()
        assert listener.listening
        await owner.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 0')
        killed = await owner.fetch(
            "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity"
            " WHERE application_name = $1",
            role,
        )
        assert [row["killed"] for row in killed] == [True]
        await eventually(lambda: len(refusals) >= 2)
        assert all(isinstance(e, asyncpg.TooManyConnectionsError) for e in refusals)
        assert not listener.listening

        await owner.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
        await eventually(lambda: listener.listening)
        assert listener.reconnects == 1
    finally:
        await listener.close()
        await owner.execute(f'DROP ROLE IF EXISTS "{role}"')
        await owner.close()


class _BrokenOnce(EventStore):
    """A store whose next read meets a connection that a shutting-down server had already told
    to go away (asyncpg raises InternalClientError on it)."""

    broken = True

    async def read_all(self, *args: Any, **kwargs: Any) -> FeedPage:
        if self.broken:
            self.broken = False
            raise asyncpg.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress"
            )
        return await super().read_all(*args, **kwargs)


async def test_a_follower_rides_out_a_connection_left_broken_by_a_shutdown(
    pool: asyncpg.Pool,
) -> None:
    store = _BrokenOnce(pool, poll_interval=0.05)
    category = new_category()
    events = new_events(2, "after the restart")
    await store.append(f"{category}-a", events)
    async with following(store, filter=FeedFilter(category=category)) as follower:
        assert ids(await follower.take(2)) == ids(events)
    assert not store.broken


def test_a_connection_left_broken_by_a_shutdown_answers_503() -> None:
    mapping = problem_details_config().exception_to_problem_detail_map
    answer = mapping[asyncpg.InternalClientError](asyncpg.InternalClientError("state 12"))
    assert answer.status_code == 503
