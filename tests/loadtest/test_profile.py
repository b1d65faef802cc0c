"""Summarizing py-spy's collapsed stacks: self and inclusive shares per function."""

from gatehouse_loadtest.profile import render_profile, summarize

COLLAPSED = """\
run (asyncio/base_events.py:640);__call__ (gatehouse_gateway/proxy.py:150);pick (x/cursor.py:20) 30
run (asyncio/base_events.py:640);__call__ (gatehouse_gateway/proxy.py:151) 50
run (asyncio/base_events.py:640);send (.venv/lib/python3.11/site-packages/aiohttp/client.py:9) 20
garbage line without a count
"""


def test_self_and_inclusive_counts() -> None:
    profile = summarize(COLLAPSED)
    assert profile.samples == 100
    own = dict(profile.self_counts)
    assert own["__call__ (gatehouse_gateway/proxy.py)"] == 50
    assert own["send (aiohttp/client.py)"] == 20
    inclusive = dict(profile.inclusive_counts)
    assert inclusive["run (asyncio/base_events.py)"] == 100
    # lines 150 and 151 of one function are one row
    assert inclusive["__call__ (gatehouse_gateway/proxy.py)"] == 80


def test_render_shows_shares() -> None:
    text = render_profile(summarize(COLLAPSED), "title")
    assert " 50.0%  __call__ (gatehouse_gateway/proxy.py)" in text
    assert "100 samples" in text


def test_empty_profile_renders() -> None:
    assert "0 samples" in render_profile(summarize(""), "nothing")
