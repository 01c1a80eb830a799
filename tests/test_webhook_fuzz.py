"""Whatever arrives signed at the webhook, the answer is never a 5xx."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.db import get_db
from bot.settings.stored import seed_demo
from tests.conftest import PYWA_UPDATES, examples, load_json, post_notification
from tests.payloads import json_paths

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)

REAL = [body for path in sorted(PYWA_UPDATES.glob("*.json")) for body in load_json(path).values()]


@st.composite
def mutated_notifications(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(REAL)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(json_paths(doc)))
        if not path:
            return draw(json_values)
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values)
    return doc


@pytest.fixture
def app(app: Flask) -> Flask:
    """With settings that answer everything, so every message goes through the reply rules."""
    with get_db(app).session() as session:
        seed_demo(session)
    return app


FUZZ = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(doc=json_values)
def test_random_json_never_5xx(app: Flask, doc: Any) -> None:
    response = post_notification(app.test_client(), json.dumps(doc).encode())
    assert response.status_code in (200, 400)


@FUZZ
@given(doc=mutated_notifications())
def test_mutated_real_notifications_never_5xx(app: Flask, doc: Any) -> None:
    response = post_notification(app.test_client(), json.dumps(doc).encode())
    assert response.status_code in (200, 400)


@FUZZ
@given(body=st.binary(max_size=200))
def test_random_bytes_never_5xx(app: Flask, body: bytes) -> None:
    response = post_notification(app.test_client(), body)
    assert response.status_code in (200, 400)
