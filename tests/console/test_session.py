"""The console's pieces without a browser: login tickets, sessions signed out, where a sign-in
may lead, the action forms read from the contracts, the board's filters, the map's shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.auth import (
    InvalidToken,
    VerifiedTokens,
    mint_login_ticket,
    mint_token,
    read_login_ticket,
    read_token,
)
from api.console.actions import ROLE_ACTIONS, action_forms, suggested
from api.console.board import BOARD_STATUSES, DESK_STATUS, BoardFilters
from api.console.geo import Frame, hull
from api.console.session import SpentTickets, safe_next
from handlers.access import Principal, Role

SECRET = "a-secret-of-thirty-two-bytes-or-more"  # noqa: S105 - a test's own
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
OFFICER = Principal(subject="officer", role=Role.DUTY_OFFICER, scope="510100")


def test_a_login_ticket_is_no_bearer_token_and_a_bearer_token_no_ticket() -> None:
    ticket = mint_login_ticket(SECRET, OFFICER, timedelta(minutes=15), now=NOW)
    with pytest.raises(InvalidToken):
        read_token(SECRET, ticket, NOW.timestamp())
    token = mint_token(SECRET, OFFICER, timedelta(hours=1), now=NOW)
    with pytest.raises(InvalidToken):
        read_login_ticket(SECRET, token, NOW.timestamp())
    assert read_login_ticket(SECRET, ticket, NOW.timestamp()).principal == OFFICER


def test_a_ticket_is_taken_once_and_not_after_it_expires() -> None:
    ticket = read_login_ticket(
        SECRET, mint_login_ticket(SECRET, OFFICER, timedelta(minutes=15), now=NOW), NOW.timestamp()
    )
    spent = SpentTickets()
    assert spent.take(ticket, NOW.timestamp())
    assert not spent.take(ticket, NOW.timestamp() + 60)
    with pytest.raises(InvalidToken):
        read_login_ticket(
            SECRET,
            mint_login_ticket(SECRET, OFFICER, timedelta(minutes=15), now=NOW),
            (NOW + timedelta(minutes=16)).timestamp(),
        )


def test_a_signed_out_token_is_refused_even_when_remembered() -> None:
    tokens = VerifiedTokens(SECRET, clock=NOW.timestamp)
    token = mint_token(SECRET, OFFICER, timedelta(hours=1), now=NOW)
    assert tokens.principal(token) == OFFICER  # remembered now
    tokens.sign_out(token)
    with pytest.raises(InvalidToken, match="signed out"):
        tokens.principal(token)
    other = mint_token(SECRET, OFFICER, timedelta(hours=2), now=NOW)
    assert tokens.verified(other) == (OFFICER, int((NOW + timedelta(hours=2)).timestamp()))


@pytest.mark.parametrize(
    ("wanted", "goes"),
    [
        ("/console/cases/CL-1", "/console/cases/CL-1"),
        ("/console?status=lead", "/console?status=lead"),
        ("https://elsewhere.example/console", "/console"),
        ("//elsewhere.example/console", "/console"),
        ("/v1/cases", "/console"),
        ("/console\\@elsewhere", "/console"),
        (None, "/console"),
    ],
)
def test_signing_in_leads_only_to_a_console_page(wanted: str | None, goes: str) -> None:
    assert safe_next(wanted) == goes


def test_every_action_a_role_is_offered_has_a_form_from_its_contract() -> None:
    forms = action_forms()
    for actions in ROLE_ACTIONS.values():
        for action in actions:
            assert action in forms, action
    fields = {field.name: field for field in forms["request_extension"].fields}
    assert fields["minutes"].kind == "integer" and fields["minutes"].required
    assert {field.name for field in forms["dispatch"].fields} >= {"category_code"}
    assert next(f for f in forms["dispatch"].fields if f.name == "category_code").kind == "category"
    assert not {"command_id", "case_id", "actor", "issued_at"} & {
        field.name for form in forms.values() for field in form.fields
    }


def test_the_actions_that_fit_a_status_come_first() -> None:
    fitting, others = suggested("department", "dispatched", pending_extension=False)
    assert fitting[0] == "accept" and "resolve" in others
    fitting, _ = suggested("duty_officer", "accepted", pending_extension=True)
    assert "grant_extension" in fitting
    assert suggested("dispatcher", DESK_STATUS, False)[0][:1] == ["dispatch"]
    assert suggested("auditor", "dispatched", False) == ([], [])


def test_board_filters_drop_what_no_case_can_have() -> None:
    filters = BoardFilters.of(
        {"status": "closed", "loop": "huge", "source": "iot", "overdue": "true", "area": "\x00"}
    )
    assert filters == BoardFilters(source="iot", overdue=True)
    assert filters.query(area="510104") == {"source": "iot", "overdue": "true", "area": "510104"}
    assert DESK_STATUS == BOARD_STATUSES[0]


def test_a_hull_and_a_frame_hold_every_point() -> None:
    points = [(30.0, 104.0), (30.0, 104.1), (30.1, 104.0), (30.1, 104.1), (30.05, 104.05)]
    assert set(hull(points)) == set(points) - {(30.05, 104.05)}
    frame = Frame.around(points)
    for point in points:
        x, y = frame.xy(point)
        assert 0 <= x <= 1000 and 0 <= y <= frame.height
    north_west = frame.xy((30.1, 104.0))
    south_east = frame.xy((30.0, 104.1))
    assert north_west[0] < south_east[0] and north_west[1] < south_east[1]
