"""The team's handling of conversations: state, assignment and the views, unread per person,
pins, archive, internal notes and searching message texts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import event, select

from bot import users
from bot.conversations import state as rules
from bot.conversations.state import State, Team, View
from bot.conversations.text import excerpt, like_pattern
from bot.db import get_db
from bot.models import AuditEntry, ConversationState, Message, Note, User
from tests.test_admin import (  # noqa: F401  (fixtures)
    NOW,
    PASSWORD,
    admin,
    clock,
    contact_id,
    login,
    receive,
    token,
)

ANNA, KARL, LENA = "4915112345678", "4917612345678", "4916012345678"


# --- the rules, without a database ---------------------------------------------------------


def test_the_states_are_the_models_words() -> None:
    assert [str(s) for s in State] == [str(s) for s in ConversationState]


def test_a_reply_moves_open_to_waiting_and_leaves_done_alone() -> None:
    assert rules.after_reply(State.OPEN) == State.WAITING
    assert rules.after_reply(State.WAITING) == State.WAITING
    assert rules.after_reply(State.DONE) == State.DONE


def test_a_customer_message_reopens_and_unarchives_keeping_the_assignee() -> None:
    put_aside = Team(State.DONE, assigned_user_id=3, pinned=True, archived=True)
    assert rules.after_customer_message(put_aside) == Team(State.OPEN, 3, True, False)
    assert rules.needs_reopening(put_aside)
    assert rules.needs_reopening(Team(State.WAITING))
    assert not rules.needs_reopening(Team())


@pytest.mark.parametrize(
    ("team", "listed"),
    [
        (Team(), {View.UNASSIGNED, View.ALL}),
        (Team(assigned_user_id=1), {View.MINE, View.ALL}),
        (Team(assigned_user_id=2), {View.ALL}),
        (Team(State.WAITING, 1), {View.MINE, View.ALL}),
        (Team(State.DONE, 1), {View.ALL, View.DONE}),
        (Team(State.DONE), {View.ALL, View.DONE}),
        (Team(State.OPEN, 1, archived=True), {View.ARCHIVED}),
        (Team(State.DONE, None, archived=True), {View.ARCHIVED}),
    ],
)
def test_which_views_list_a_conversation(team: Team, listed: set[View]) -> None:
    assert {view for view in View if rules.in_view(view, team, user_id=1)} == listed


def test_the_default_view_and_unknown_views() -> None:
    assert rules.default_view(anything_mine=True) == View.MINE
    assert rules.default_view(anything_mine=False) == View.ALL
    assert rules.parse_view("unassigned") == View.UNASSIGNED
    assert rules.parse_view("<script>") is None
    assert rules.parse_view(None) is None


def test_initials() -> None:
    assert rules.initials("Anna Huber") == "AH"
    assert rules.initials("owner") == "O"
    assert rules.initials("max.mueller") == "MM"
    assert rules.initials("  ") == "?"


def test_like_patterns_take_like_characters_literally() -> None:
    assert like_pattern("50%") == "%50\\%%"
    assert like_pattern("a_b") == "%a\\_b%"
    assert like_pattern("c:\\x") == "%c:\\\\x%"


def test_the_excerpt_around_a_match() -> None:
    text = "Guten Tag, ich hätte gern einen großen Strauß TULPEN für Samstag, bitte mit Karte"
    cut = excerpt(text, "tulpen", width=20)
    assert cut is not None
    assert cut.match == "TULPEN"
    assert cut.before.startswith("…") and cut.before.endswith("Strauß ")
    assert cut.after.startswith(" für") and cut.after.endswith("…")
    assert excerpt("Hallo\nWelt", "welt") == rules_excerpt("Hallo ", "Welt", "")
    assert excerpt("Hallo", "Tschüss") is None


def rules_excerpt(before: str, match: str, after: str) -> Any:
    from bot.conversations.text import Excerpt

    return Excerpt(before, match, after)


# --- through the admin ---------------------------------------------------------------------


@pytest.fixture
def owner(admin: FlaskClient) -> FlaskClient:  # noqa: F811
    """The owner, logged in, with the demo business."""
    return admin


def staff(app: Flask, name: str = "berta") -> FlaskClient:
    """A second person of the team, logged in in a browser of their own."""
    users.add_user(get_db(app), name, PASSWORD, role=users.Role.STAFF, now=NOW)
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


def user_id(app: Flask, name: str) -> int:
    with get_db(app).session() as session:
        found = session.scalar(select(User.id).where(User.name == name))
    assert found is not None
    return found


def post(client: FlaskClient, path: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": token(client, "/admin/inbox"), **data})


def team(app: Flask, cid: int) -> Team:
    from bot.conversations.team import team_of

    with get_db(app).session() as session:
        return team_of(session, cid)


def audit(app: Flask, action: str) -> list[AuditEntry]:
    with get_db(app).session() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


def listing(client: FlaskClient, view: str = "all", **args: str) -> dict[str, Any]:
    data: dict[str, Any] = client.get(
        "/admin/inbox.json", query_string={"view": view, **args}
    ).get_json()
    return data


def names(client: FlaskClient, view: str = "all", **args: str) -> list[str]:
    return [c["name"] for c in listing(client, view, **args)["conversations"]]


def test_the_state_is_set_by_hand_and_each_change_is_in_the_audit_log(
    app: Flask, owner: FlaskClient
) -> None:
    receive(owner)
    cid = contact_id(app)
    assert team(app, cid).state == State.OPEN
    for wanted in ("waiting", "done", "open"):
        response = post(owner, f"/admin/inbox/{cid}/state", state=wanted)
        assert response.status_code == 302
        assert team(app, cid).state == wanted
    entries = audit(app, "conversation.state")
    assert [(e.before, e.after) for e in entries] == [
        ("open", "waiting"),
        ("waiting", "done"),
        ("done", "open"),
    ]
    assert {(e.user_name, e.subject) for e in entries} == {("owner", f"contact:{cid}")}
    assert post(owner, f"/admin/inbox/{cid}/state", state="lost").status_code == 400


def test_every_action_needs_the_csrf_token(app: Flask, owner: FlaskClient) -> None:
    receive(owner)
    cid = contact_id(app)
    for action, data in [
        ("state", {"state": "done"}),
        ("assign", {"user": ""}),
        ("pin", {"on": "1"}),
        ("archive", {"on": "1"}),
        ("unread", {}),
        ("note", {"text": "Hallo"}),
    ]:
        assert owner.post(f"/admin/inbox/{cid}/{action}", data=data).status_code == 400
    assert team(app, cid) == Team()
    with get_db(app).session() as session:
        assert session.scalar(select(Note.id)) is None


def test_a_reply_by_a_person_moves_the_conversation_to_waiting_but_not_a_done_one(
    app: Flask, owner: FlaskClient
) -> None:
    receive(owner)
    cid = contact_id(app)
    assert post(owner, f"/admin/inbox/{cid}/reply", text="Gern!").status_code == 302
    assert team(app, cid).state == State.WAITING
    post(owner, f"/admin/inbox/{cid}/state", state="done")
    post(owner, f"/admin/inbox/{cid}/reply", text="Gern geschehen.")
    assert team(app, cid).state == State.DONE


def test_a_customer_message_reopens_a_waiting_or_done_conversation_and_unarchives_it(
    app: Flask, owner: FlaskClient
) -> None:
    receive(owner)
    cid = contact_id(app)
    me = user_id(app, "owner")
    post(owner, f"/admin/inbox/{cid}/assign", user=str(me))
    for n, (state, archived) in enumerate(
        [("waiting", False), ("done", False), ("open", True), ("done", True)], start=1
    ):
        post(owner, f"/admin/inbox/{cid}/state", state=state)
        post(owner, f"/admin/inbox/{cid}/archive", on="1" if archived else "0")
        assert team(app, cid) == Team(State(state), me, False, archived)
        receive(owner, at=NOW + timedelta(minutes=n))
        # Open and listed again, still with whoever had it.
        assert team(app, cid) == Team(State.OPEN, me, False, False)


def test_an_ordinary_message_writes_nothing_to_the_conversations_table(
    app: Flask, owner: FlaskClient
) -> None:
    receive(owner)
    cid = contact_id(app)
    post(owner, f"/admin/inbox/{cid}/assign", user=str(user_id(app, "owner")))
    written: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("UPDATE CONVERSATIONS", "INSERT INTO CONV")):
            written.append(statement)

    engine = get_db(app).engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        receive(owner, at=NOW + timedelta(minutes=1))  # open already: nothing to change
        assert written == []
        post(owner, f"/admin/inbox/{cid}/state", state="waiting")
        written.clear()
        receive(owner, at=NOW + timedelta(minutes=2))
        assert len(written) == 1  # the one UPDATE that reopens it
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert team(app, cid).state == State.OPEN


def test_assignment_and_the_mine_unassigned_and_all_views(app: Flask, owner: FlaskClient) -> None:
    berta = staff(app)
    receive(owner, wa_id=ANNA, name="Anna")
    receive(owner, wa_id=KARL, name="Karl", at=NOW + timedelta(minutes=1))
    receive(owner, wa_id=LENA, name="Lena", at=NOW + timedelta(minutes=2))
    anna, karl = contact_id(app, ANNA), contact_id(app, KARL)
    berta_id, owner_id = user_id(app, "berta"), user_id(app, "owner")

    # Nothing assigned to anyone yet: the inbox opens with all of them.
    assert listing(owner, view="")["view"] == "all"
    assert post(owner, f"/admin/inbox/{anna}/assign", user=str(berta_id)).status_code == 302
    post(berta, f"/admin/inbox/{karl}/assign", user=str(owner_id))

    assert names(owner, "mine") == ["Karl"]
    assert names(berta, "mine") == ["Anna"]
    assert names(owner, "unassigned") == names(berta, "unassigned") == ["Lena"]
    assert names(owner, "all") == ["Lena", "Karl", "Anna"]
    # Something is assigned to each of them now: their inbox opens with their own.
    assert listing(owner, view="")["view"] == listing(berta, view="")["view"] == "mine"

    items = {c["name"]: c for c in listing(owner)["conversations"]}
    assert items["Anna"]["assigned"] == {"id": berta_id, "name": "berta", "initials": "B"}
    assert (items["Anna"]["mine"], items["Karl"]["mine"]) == (False, True)
    assert items["Lena"]["assigned"] is None
    assert {items[n]["state"] for n in items} == {"open"}

    # Done leaves the work queues (mine, unassigned) but stays under all, and under done.
    post(owner, f"/admin/inbox/{karl}/state", state="done")
    assert names(owner, "mine") == []
    assert names(owner, "all") == ["Lena", "Karl", "Anna"]
    assert names(owner, "done") == ["Karl"]

    # Back to nobody.
    post(owner, f"/admin/inbox/{anna}/assign", user="")
    assert names(berta, "mine") == []
    assert names(owner, "unassigned") == ["Lena", "Anna"]
    assert [(e.before, e.after) for e in audit(app, "conversation.assigned")] == [
        ("", "berta"),
        ("", "owner"),
        ("berta", ""),
    ]

    # The list shows who has it, and the header offers the active users.
    page = owner.get("/admin/inbox?view=all").get_data(as_text=True)
    assert 'class="initials" translate="no">O</span>' in page
    header = owner.get(f"/admin/inbox/{karl}").get_data(as_text=True)
    assert f'<option value="{berta_id}" translate="no" >berta</option>' in header


def test_only_active_users_can_be_assigned(app: Flask, owner: FlaskClient) -> None:
    staff(app)
    receive(owner)
    cid = contact_id(app)
    with get_db(app).session() as session:
        session.scalars(select(User).where(User.name == "berta")).one().active = False
    post(owner, f"/admin/inbox/{cid}/assign", user=str(user_id(app, "berta")))
    post(owner, f"/admin/inbox/{cid}/assign", user="99999")
    assert team(app, cid).assigned_user_id is None
    assert audit(app, "conversation.assigned") == []


def test_unread_counts_are_per_person(app: Flask, owner: FlaskClient) -> None:
    berta = staff(app)
    receive(owner, wa_id=ANNA, name="Anna")
    anna = contact_id(app, ANNA)
    # Neither has opened it: unread for both. The owner opening it reads it for the owner only.
    assert listing(owner)["conversations"][0]["unread"] == 1
    assert listing(berta)["conversations"][0]["unread"] == 1
    owner.get(f"/admin/inbox/{anna}")
    assert listing(owner)["conversations"][0]["unread"] == 0
    assert listing(berta)["conversations"][0]["unread"] == 1
    berta.get(f"/admin/inbox/{anna}")
    receive(owner, wa_id=ANNA, at=NOW + timedelta(minutes=1))
    receive(owner, wa_id=ANNA, at=NOW + timedelta(minutes=2))
    assert listing(owner)["conversations"][0]["unread"] == 2
    # The owner reads it; Berta has still not.
    owner.get(f"/admin/inbox/{anna}")
    assert listing(owner)["conversations"][0]["unread"] == 0
    assert listing(berta)["conversations"][0]["unread"] == 2
    assert listing(berta)["unread"] == {"mine": 0, "unassigned": 1, "all": 1}
    assert listing(owner)["unread"] == {"mine": 0, "unassigned": 0, "all": 0}
    # Seen on an open page: the poll marks what it shows.
    receive(owner, wa_id=ANNA, at=NOW + timedelta(minutes=3))
    data = berta.get(f"/admin/inbox/{anna}/messages.json?after=0").get_json()
    assert data["messages"]
    assert listing(berta)["conversations"][0]["unread"] == 0
    assert listing(owner)["conversations"][0]["unread"] == 1


def test_what_came_before_someone_joined_is_not_unread_for_them(
    app: Flask, owner: FlaskClient
) -> None:
    receive(owner, wa_id=ANNA, name="Anna")
    receive(owner, wa_id=ANNA, at=NOW + timedelta(minutes=1))
    berta = staff(app)
    assert listing(berta)["conversations"][0]["unread"] == 0
    assert listing(berta)["unread"]["all"] == 0
    receive(owner, wa_id=ANNA, at=NOW + timedelta(minutes=2))
    assert listing(berta)["conversations"][0]["unread"] == 1
    assert listing(owner)["conversations"][0]["unread"] == 3


def test_mark_unread_is_for_the_one_who_marks(app: Flask, owner: FlaskClient) -> None:
    berta = staff(app)
    receive(owner)
    cid = contact_id(app)
    owner.get(f"/admin/inbox/{cid}")
    berta.get(f"/admin/inbox/{cid}")
    response = post(owner, f"/admin/inbox/{cid}/unread", view="all")
    assert response.status_code == 302 and response.location.endswith("/admin/inbox?view=all")
    assert listing(owner)["conversations"][0]["unread"] == 1
    assert listing(berta)["conversations"][0]["unread"] == 0
    assert [e.subject for e in audit(app, "conversation.unread")] == [f"contact:{cid}"]
    owner.get(f"/admin/inbox/{cid}")  # opened again: read
    assert listing(owner)["conversations"][0]["unread"] == 0


def test_the_view_tabs_show_their_unread_counts(app: Flask, owner: FlaskClient) -> None:
    receive(owner, wa_id=ANNA, name="Anna")
    receive(owner, wa_id=KARL, name="Karl", at=NOW + timedelta(minutes=1))
    post(owner, f"/admin/inbox/{contact_id(app, KARL)}/assign", user=str(user_id(app, "owner")))
    assert listing(owner)["unread"] == {"mine": 1, "unassigned": 1, "all": 2}
    page = owner.get("/admin/inbox").get_data(as_text=True)
    assert 'data-view="mine" class="view-tab current" aria-current="page">Meine' in page
    assert '<span class="view-unread" translate="no">2</span>' in page


def test_pinned_conversations_come_first_in_every_view(app: Flask, owner: FlaskClient) -> None:
    for n, (wa_id, name) in enumerate([(ANNA, "Anna"), (KARL, "Karl"), (LENA, "Lena")]):
        receive(owner, wa_id=wa_id, name=name, at=NOW + timedelta(minutes=n))
    assert names(owner) == ["Lena", "Karl", "Anna"]
    anna = contact_id(app, ANNA)
    post(owner, f"/admin/inbox/{anna}/pin", on="1")
    assert names(owner) == ["Anna", "Lena", "Karl"]
    assert names(owner, "unassigned") == ["Anna", "Lena", "Karl"]
    assert names(owner, "all", q="a") == ["Anna", "Lena", "Karl"]
    assert listing(owner)["conversations"][0]["pinned"] is True
    post(owner, f"/admin/inbox/{anna}/pin", on="0")
    assert names(owner) == ["Lena", "Karl", "Anna"]
    assert [(e.before, e.after) for e in audit(app, "conversation.pinned")] == [
        ("no", "yes"),
        ("yes", "no"),
    ]


def test_archived_conversations_are_hidden_until_unarchived(app: Flask, owner: FlaskClient) -> None:
    receive(owner, wa_id=ANNA, name="Anna")
    receive(owner, wa_id=KARL, name="Karl", at=NOW + timedelta(minutes=1))
    anna = contact_id(app, ANNA)
    response = post(owner, f"/admin/inbox/{anna}/archive", on="1")
    assert response.location.endswith("/admin/inbox")
    for view in ("mine", "unassigned", "all", "done"):
        assert "Anna" not in names(owner, view)
    assert names(owner, "archived") == ["Anna"]
    assert listing(owner, "archived")["conversations"][0]["archived"] is True
    page = owner.get(f"/admin/inbox/{anna}").get_data(as_text=True)
    assert "Archiviert: nicht im Posteingang" in page
    post(owner, f"/admin/inbox/{anna}/archive", on="0")
    assert names(owner, "all") == ["Karl", "Anna"]
    assert names(owner, "archived") == []
    assert [(e.before, e.after) for e in audit(app, "conversation.archived")] == [
        ("no", "yes"),
        ("yes", "no"),
    ]


XSS_NOTE = "<script>alert('note')</script> Kundin will <b>rote</b> Rosen"


def test_notes_show_in_the_timeline_escaped_and_are_never_sent(
    app: Flask, owner: FlaskClient
) -> None:
    receive(owner)
    cid = contact_id(app)
    with get_db(app).session() as session:
        outbound_before = session.scalars(select(Message.id).where(Message.direction == "out"))
        before = list(outbound_before)
    response = owner.post(
        f"/admin/inbox/{cid}/note",
        data={"csrf_token": token(owner, "/admin/inbox"), "text": XSS_NOTE},
        headers={"Accept": "application/json"},
    )
    assert response.get_json()["ok"] is True
    assert response.get_json()["note"]["author"] == "owner"
    receive(owner, at=NOW + timedelta(minutes=5))

    with get_db(app).session() as session:
        outbound_after = list(session.scalars(select(Message.id).where(Message.direction == "out")))
        texts = list(session.scalars(select(Message.text)))
    # The customer's second message got its own auto-reply, if any; the note sent nothing.
    assert all(XSS_NOTE not in (text or "") for text in texts)
    assert len(outbound_after) - len(before) <= 1

    page = owner.get(f"/admin/inbox/{cid}").get_data(as_text=True)
    assert "<script>alert('note')" not in page
    assert str(escape(XSS_NOTE)) in page
    assert "Notiz von owner" in page
    # In order: the first message, the note, the second message.
    first = page.index('class="msg in')
    note = page.index('class="team-note"')
    assert first < note < page.index('class="msg in', note)
    assert [e.subject for e in audit(app, "conversation.note")] == [f"contact:{cid}"]

    data = owner.get(f"/admin/inbox/{cid}/messages.json?after=0&notes_after=0").get_json()
    assert [n["text"] for n in data["notes"]] == [XSS_NOTE]
    assert (
        owner.get(f"/admin/inbox/{cid}/messages.json?notes_after=99999").get_json()["notes"] == []
    )
    empty = post(owner, f"/admin/inbox/{cid}/note", text="   ")
    assert empty.status_code == 302
    with get_db(app).session() as session:
        assert len(list(session.scalars(select(Note.id)))) == 1


def test_a_note_never_reaches_the_graph_api(app: Flask, owner: FlaskClient) -> None:
    from tests.fakegraph import FakeGraph
    from tests.test_dispatcher import TOKEN, Running, wait_until

    receive(owner)
    cid = contact_id(app)
    post(owner, f"/admin/inbox/{cid}/note", text="Nur intern: Stammkundin")
    post(owner, f"/admin/inbox/{cid}/reply", text="Ihr Strauß ist fertig.")

    def outbound() -> list[str]:
        with get_db(app).session() as session:
            return list(session.scalars(select(Message.status).where(Message.direction == "out")))

    with FakeGraph(token=TOKEN) as graph, Running(app, graph):
        wait_until(lambda: all(status in ("sent", "failed") for status in outbound()))
        # One request per message the outbox held (the auto-reply and the reply), nothing more.
        assert graph.count == len(outbound())
        bodies = [json.dumps(r.json, ensure_ascii=False) for r in graph.requests]
    assert any("Ihr Strauß ist fertig." in body for body in bodies)
    assert not any("Stammkundin" in body for body in bodies)


def test_search_finds_conversations_by_message_text_case_insensitive(
    app: Flask, owner: FlaskClient
) -> None:
    receive(owner, {"text": {"body": "Haben Sie heute TULPEN da?"}}, wa_id=ANNA, name="Anna")
    receive(
        owner,
        {"text": {"body": "Ich möchte Rosen"}},
        wa_id=KARL,
        name="Karl",
        at=NOW + timedelta(minutes=1),
    )
    found = listing(owner, q="tulpen")["conversations"]
    assert [c["name"] for c in found] == ["Anna"]
    assert found[0]["match"] == {"before": "Haben Sie heute ", "match": "TULPEN", "after": " da?"}
    # Found by number: no excerpt.
    assert listing(owner, q="176 12345")["conversations"][0]["match"] is None
    assert names(owner, q="Nelken") == []


@pytest.mark.parametrize(
    ("query", "expected"),
    [("50%", ["Anna"]), ("a_b", ["Karl"]), ("c:\\temp", ["Lena"]), ("%", ["Anna"])],
)
def test_search_takes_like_characters_literally(
    app: Flask, owner: FlaskClient, query: str, expected: list[str]
) -> None:
    texts = [
        (ANNA, "Anna", "Gibt es 50% Rabatt?"),
        (KARL, "Karl", "Code a_b bitte"),
        (LENA, "Lena", "Datei liegt in c:\\temp"),
        ("4915200000001", "Decoy", "50 Rosen, axb, c:temp, ctemp"),
    ]
    for n, (wa_id, name, text) in enumerate(texts):
        receive(
            owner, {"text": {"body": text}}, wa_id=wa_id, name=name, at=NOW + timedelta(minutes=n)
        )
    assert names(owner, q=query) == expected


def test_the_found_text_is_escaped_with_the_match_marked(app: Flask, owner: FlaskClient) -> None:
    receive(owner, {"text": {"body": "<img src=x onerror=alert(1)> Tulpen <b>bitte</b>"}})
    page = owner.get("/admin/inbox?q=tulpen&view=all").get_data(as_text=True)
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt; <mark>Tulpen</mark> &lt;b&gt;bitte&lt;/b&gt;" in page
    # The conversation's link keeps the search and the view.
    cid = contact_id(app)
    assert f'href="/admin/inbox/{cid}?q=tulpen&amp;view=all"' in page


def test_inbox_json_keeps_its_keys_and_gains_the_team_ones(app: Flask, owner: FlaskClient) -> None:
    receive(owner)
    data = listing(owner)
    assert set(data) >= {"conversations", "view", "unread"}
    item = data["conversations"][0]
    assert set(item) >= {
        "id",
        "name",
        "number",
        "unread",
        "labels",
        "preview",
        "time",
        "at",
        "url",
        "assigned",
        "state",
        "pinned",
        "archived",
        "mine",
    }
