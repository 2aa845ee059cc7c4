"""As of a past moment: views computed from the log equal what the live views showed then,
captured while a load was running."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import TYPE_CHECKING, Any, cast

import asyncpg

from events.connect import connect
from events.domain.commands import (
    AssignRole,
    ConfirmAttendance,
    InviteFaction,
    NameDelegationLeader,
    ParticipantRef,
    RecordInteraction,
    RegisterActor,
    RetractEvent,
    ScheduleMeeting,
)
from events.domain.handler import CommandHandler
from projections.as_of import contact_history_as_of
from projections.contacts import ContactsProjection, contact_history
from projections.roster import RosterProjection, get_roster
from projections.runner import ProjectionRunner, checkpoint_of
from tests.roster_oracle import fold_log

if TYPE_CHECKING:
    from events import ConnectionOptions, Cursor, EventStore


async def _load(handler: CommandHandler, tag: str, rounds: int) -> None:
    """Commands that keep changing the faction's history and the meeting's roster."""
    rng = random.Random(tag)
    faction, meeting = f"f_{tag}", f"m_{tag}"
    people = [f"p{n}_{tag}" for n in range(4)]
    await handler.handle(
        RegisterActor(actor_id=faction, kind="organisation", canonical_name=f"Front {tag}")
    )
    others = [f"o{n}_{tag}" for n in range(3)]
    for n, other in enumerate(others):
        await handler.handle(
            RegisterActor(actor_id=other, kind="organisation", canonical_name=f"Party {n} {tag}")
        )
    for n, person in enumerate(people):
        await handler.handle(
            RegisterActor(actor_id=person, kind="person", canonical_name=f"Envoy {n} {tag}")
        )
        await handler.handle(
            AssignRole(actor=person, organisation=faction, valid_time=f"{2000 + n}/{2020 + n}")
        )
    await handler.handle(ScheduleMeeting(meeting_id=meeting, title="Talks", valid_time="2024-03"))
    steps: list[Any] = [
        *(InviteFaction(meeting_id=meeting, faction=o) for o in others),
        ConfirmAttendance(meeting_id=meeting, faction=others[0]),
        NameDelegationLeader(meeting_id=meeting, faction=others[0], person=people[0]),
        ConfirmAttendance(meeting_id=meeting, faction=others[1]),
        NameDelegationLeader(meeting_id=meeting, faction=others[1], person=people[1]),
        ConfirmAttendance(meeting_id=meeting, faction=others[2]),
    ]
    recorded: list[tuple[str, str]] = []
    for n in range(rounds):
        if n % 4 == 3 and steps:
            await handler.handle(steps.pop(0))
        elif rng.random() < 0.8 or not recorded:
            a, b = rng.sample(people, 2)
            outcome = await handler.handle(
                RecordInteraction(
                    kind=rng.choice(["phone_call", "meeting", "visit"]),
                    interaction_id=f"i{n}_{tag}",
                    participants=(
                        ParticipantRef(actor=a, role="initiator"),
                        ParticipantRef(actor=b, role="recipient"),
                    ),
                    valid_time=f"{rng.randint(2001, 2020)}-{rng.randint(1, 12):02d}",
                )
            )
            recorded.append((outcome.stream_id, outcome.event_ids[0]))
        else:
            stream, event_id = recorded.pop(rng.randrange(len(recorded)))
            await handler.handle(RetractEvent(stream=stream, target_event_id=event_id, reason="r"))
        await asyncio.sleep(rng.uniform(0, 0.02))


async def test_views_as_of_a_cursor_equal_the_live_views_captured_then(
    store: EventStore, pool: asyncpg.Pool, app_options: ConnectionOptions
) -> None:
    tag = uuid.uuid4().hex[:8]
    contacts = ContactsProjection(name=f"c_{tag}", prefix=f"c_{tag}_")
    roster = RosterProjection(name=f"r_{tag}", table_prefix=f"r_{tag}")
    runners = [
        ProjectionRunner(store, p, lambda: connect(app_options), batch_size=5)
        for p in (contacts, roster)
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    captures: list[tuple[Cursor, list[Any], Cursor, Any]] = []

    async def capture() -> None:
        async with pool.acquire() as proxy:
            conn = cast("asyncpg.Connection", proxy)
            while True:
                try:
                    # One snapshot: each checkpoint and the view it stands for, together.
                    async with conn.transaction(isolation="repeatable_read", readonly=True):
                        c_cursor, _ = await checkpoint_of(conn, contacts.name, 1)
                        history = await contact_history(conn, f"f_{tag}", prefix=contacts.prefix)
                        r_cursor, _ = await checkpoint_of(conn, roster.name, 1)
                        view = await get_roster(
                            conn, f"m_{tag}", at=r_cursor, table_prefix=f"r_{tag}"
                        )
                except asyncpg.UndefinedTableError:
                    pass  # the runners have not created their tables yet
                else:
                    captures.append((c_cursor, history, r_cursor, view))
                await asyncio.sleep(0.03)

    capturing = asyncio.create_task(capture())
    try:
        await _load(CommandHandler(store), tag, rounds=40)
        await asyncio.sleep(1.0)
    finally:
        for task in (*tasks, capturing):
            task.cancel()
        await asyncio.gather(*tasks, capturing, return_exceptions=True)

    distinct = {(len(h), v is not None and len(v.factions)) for _, h, _, v in captures}
    assert len(distinct) > 3, "the captures did not see the views change"
    for c_cursor, history, r_cursor, view in captures[:: max(1, len(captures) // 12)]:
        assert await contact_history_as_of(store, f"f_{tag}", cursor=c_cursor) == history
        assert await fold_log(store, f"m_{tag}", r_cursor) == view
        assert await get_roster(pool, f"m_{tag}", at=r_cursor, table_prefix=f"r_{tag}") == view
