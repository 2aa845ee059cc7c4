"""A meeting's purpose (its agenda): given when it is scheduled, stated or corrected later, and
shown by the roster; events recorded before the field existed still decode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from events import Cursor
from events.domain import meetings
from events.domain.amendments import Stored
from events.domain.catalogue import (
    CATALOGUE,
    EventCorrected,
    EventRetracted,
    MeetingCancelled,
    MeetingPurposeStated,
    MeetingScheduled,
)
from events.domain.coding import code_for
from events.domain.commands import (
    COMMAND_DECODER,
    ScheduleMeeting,
    StateMeetingPurpose,
)
from events.domain.errors import UnknownTargetError
from events.domain.valid_time import valid_time
from events.domain.vocabulary import Source
from projections.roster import Fact, roster_from
from tests.domain_bdd import given
from tests.test_api_writes import new_id, schedule

if TYPE_CHECKING:
    from tests.api_server import ApiServer

SOURCE = Source(language="en", quote="The meeting aims to overcome internal divisions.")
UNITY = "to overcome internal divisions among Palestinian factions"
SCHEDULED = MeetingScheduled(
    meeting_id="moscow_2024",
    title="Inter-Palestinian meeting in Moscow",
    valid_time=valid_time("2024-02-28/2024-02-29"),
    coding=code_for("meeting_scheduled"),
)


# -- the rules ------------------------------------------------------------------------------------


def test_scheduling_records_the_purpose_given() -> None:
    given(meetings).when(
        ScheduleMeeting(
            meeting_id="moscow_2024",
            title="Inter-Palestinian meeting in Moscow",
            valid_time="2024-02-28/2024-02-29",
            purpose=UNITY,
        )
    ).then(msgspec.structs.replace(SCHEDULED, purpose=UNITY))


def test_a_purpose_stated_later_is_recorded_with_its_source() -> None:
    given(meetings, Stored("m1", SCHEDULED)).when(
        StateMeetingPurpose(meeting_id="moscow_2024", purpose=UNITY, sources=(SOURCE,))
    ).then(MeetingPurposeStated(meeting_id="moscow_2024", purpose=UNITY, sources=(SOURCE,)))


def test_the_same_purpose_stated_again_records_nothing() -> None:
    stated = MeetingPurposeStated(meeting_id="moscow_2024", purpose=UNITY)
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", stated)).when(
        StateMeetingPurpose(meeting_id="moscow_2024", purpose=UNITY)
    ).then()
    given(meetings, Stored("m1", msgspec.structs.replace(SCHEDULED, purpose=UNITY))).when(
        StateMeetingPurpose(meeting_id="moscow_2024", purpose=UNITY)
    ).then()


def test_a_corrected_purpose_is_the_one_the_rules_know() -> None:
    corrected = EventCorrected(
        target_event_id="m2", changes={"purpose": "to sign a declaration"}, reason="misread"
    )
    stated = MeetingPurposeStated(meeting_id="moscow_2024", purpose=UNITY)
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", stated), Stored("m3", corrected)).when(
        StateMeetingPurpose(meeting_id="moscow_2024", purpose=UNITY)
    ).then(MeetingPurposeStated(meeting_id="moscow_2024", purpose=UNITY))


def test_a_cancelled_meeting_may_still_be_told_what_it_was_for() -> None:
    cancelled = MeetingCancelled(meeting_id="moscow_2024")
    given(meetings, Stored("m1", SCHEDULED), Stored("m2", cancelled)).when(
        StateMeetingPurpose(meeting_id="moscow_2024", purpose=UNITY)
    ).then(MeetingPurposeStated(meeting_id="moscow_2024", purpose=UNITY))


def test_the_purpose_of_a_meeting_never_scheduled_is_refused() -> None:
    given(meetings).when(StateMeetingPurpose(meeting_id="moscow_2025", purpose=UNITY)).then_raises(
        UnknownTargetError, match="'moscow_2025' was never scheduled", field="meeting_id"
    )


@pytest.mark.parametrize(
    ("purpose", "reason"),
    [("", "length >= 1"), ("x" * 5001, "length <= 5000"), ("a\x00b", "matching regex")],
    ids=["empty", "too_long", "control_character"],
)
@pytest.mark.parametrize("command", ["schedule_meeting", "state_meeting_purpose"])
def test_a_purpose_is_bounded_prose(command: str, purpose: str, reason: str) -> None:
    fields = {"type": command, "meeting_id": "m", "title": "t", "valid_time": "2024-03"}
    if command == "state_meeting_purpose":
        fields = {"type": command, "meeting_id": "m"}
    with pytest.raises(msgspec.ValidationError, match=r"\$\.purpose") as caught:
        COMMAND_DECODER.decode(msgspec.json.encode({**fields, "purpose": purpose}))
    assert reason in str(caught.value)


def test_a_scheduling_stored_before_purposes_existed_still_decodes() -> None:
    stored = (
        b'{"meeting_id":"moscow_2019","title":"Inter-Palestinian meeting in Moscow (2019)",'
        b'"valid_time":{"edtf":"2019-02","precision":"month","lower":"2019-02-01",'
        b'"upper":"2019-02-28"},"modality":"reported","coding":{"cameo":"036","goldstein":4.0,'
        b'"quad_class":1,"plover_type":"AGREE","mapping_version":"diplofeed-2026.1"}}'
    )
    event = CATALOGUE.decode_data("meeting.scheduled.v1", 1, stored)
    assert isinstance(event, MeetingScheduled)
    assert (event.meeting_id, event.purpose) == ("moscow_2019", None)
    # And a scheduling without a purpose is stored as it always was: no new key.
    assert "purpose" not in CATALOGUE.new_event(event).data


# -- the roster ------------------------------------------------------------------------------------


def _facts(*events: Any) -> list[Fact]:
    at = datetime(2024, 2, 1, tzinfo=UTC)
    return [
        Fact(
            event_id=f"e{n}",
            stream_id="meeting-moscow_2024",
            recorded_at=at,
            cursor=Cursor(1, n),
            event=event,
        )
        for n, event in enumerate(events, start=1)
    ]


def _purpose(*events: Any) -> str | None:
    view = roster_from(_facts(*events))
    assert view is not None
    return view.purpose


def test_the_roster_shows_the_purpose_last_stated() -> None:
    stated = MeetingPurposeStated(meeting_id="moscow_2024", purpose=UNITY)
    assert _purpose(SCHEDULED) is None
    assert _purpose(msgspec.structs.replace(SCHEDULED, purpose="talks")) == "talks"
    assert _purpose(msgspec.structs.replace(SCHEDULED, purpose="talks"), stated) == UNITY


def test_the_roster_applies_corrections_and_retractions_of_a_purpose() -> None:
    scheduled = msgspec.structs.replace(SCHEDULED, purpose="talks")
    stated = MeetingPurposeStated(meeting_id="moscow_2024", purpose=UNITY)
    fixed = EventCorrected(target_event_id="e2", changes={"purpose": "unity"}, reason="typo")
    withdrawn = EventRetracted(target_event_id="e2", reason="wrong meeting")
    assert _purpose(scheduled, stated, fixed) == "unity"
    assert _purpose(scheduled, stated, withdrawn) == "talks"


# -- over HTTP -------------------------------------------------------------------------------------


async def test_purpose_given_stated_and_corrected_over_http(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id = new_id("m")
        scheduled = await client.post(
            "/meetings",
            json={"meeting_id": meeting_id, "title": "Talks", "valid_time": "2024-03",
                  "purpose": "talks"},
        )  # fmt: skip
        assert scheduled.status_code == 201, scheduled.text
        first = await client.get(
            f"/meetings/{meeting_id}", params={"reflect": scheduled.json()["cursor"]}
        )
        stated = await client.post(
            f"/meetings/{meeting_id}/purpose", json={"purpose": UNITY, "sources": [{"quote": "q"}]}
        )
        assert stated.status_code == 201, stated.text
        assert stated.headers["Location"] == f"/meetings/{meeting_id}"
        second = await client.get(
            f"/meetings/{meeting_id}", params={"reflect": stated.json()["cursor"]}
        )
        listed = await client.get("/meetings", params={"reflect": stated.json()["cursor"]})
        event_id = stated.json()["event_ids"][0]
        corrected = await client.post(
            f"/streams/meeting-{meeting_id}/events/{event_id}/corrections",
            json={"changes": {"purpose": "to end internal divisions"}, "reason": "misquoted"},
            headers={"If-Match": '"2"'},
        )
        assert corrected.status_code == 201, corrected.text
        third = await client.get(
            f"/meetings/{meeting_id}", params={"reflect": corrected.json()["cursor"]}
        )
    assert first.json()["purpose"] == "talks"
    assert second.json()["purpose"] == UNITY
    mine = [m for m in listed.json() if m["meeting_id"] == meeting_id]
    assert [m["purpose"] for m in mine] == [UNITY]
    assert third.json()["purpose"] == "to end internal divisions"


async def test_a_meeting_without_a_purpose_shows_null(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, response = await schedule(client)
        view = await client.get(
            f"/meetings/{meeting_id}", params={"reflect": response.json()["cursor"]}
        )
    assert "purpose" in view.json()
    assert view.json()["purpose"] is None


async def test_stating_a_purpose_badly_is_a_problem(api: ApiServer) -> None:
    async with api.client("write") as client:
        meeting_id, _ = await schedule(client)
        unknown = await client.post(f"/meetings/{new_id('m')}/purpose", json={"purpose": UNITY})
        too_long = await client.post(
            f"/meetings/{meeting_id}/purpose", json={"purpose": "x" * 5001}
        )
        missing = await client.post(f"/meetings/{meeting_id}/purpose", json={})
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "$.purpose"
    assert missing.status_code in (400, 422)
    assert missing.headers["content-type"].startswith("application/problem+json")
