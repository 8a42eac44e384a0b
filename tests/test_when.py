"""The one reader of the dates people type (kb.when), against a table of inputs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kb.when import BadDate, looks_like_commit, parse_when

NOW = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)  # a Monday


def d(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("today", "2026-11-30", "2026-12-01"),
        ("Today", "2026-11-30", "2026-12-01"),
        ("yesterday", "2026-11-29", "2026-11-30"),
        ("last monday", "2026-11-23", "2026-11-24"),
        ("sunday", "2026-11-29", "2026-11-30"),
        ("last  friday", "2026-11-27", "2026-11-28"),
        ("3 days ago", "2026-11-27", "2026-11-28"),
        ("2 weeks ago", "2026-11-16", "2026-11-17"),
        ("a week ago", "2026-11-23", "2026-11-24"),
        ("1 month ago", "2026-10-30", "2026-10-31"),
        ("2 years ago", "2024-11-30", "2024-12-01"),
        ("last week", "2026-11-23T23:00", "2026-11-30T23:00:00.000001"),
        ("last 2 weeks", "2026-11-16T23:00", "2026-11-30T23:00:00.000001"),
        ("this week", "2026-11-30", "2026-11-30T23:00:00.000001"),
        ("this month", "2026-11-01", "2026-11-30T23:00:00.000001"),
        ("2021-11", "2021-11-01", "2021-12-01"),
        ("2021-12", "2021-12-01", "2022-01-01"),
        ("2021", "2021-01-01", "2022-01-01"),
        ("2021-11-25", "2021-11-25", "2021-11-26"),
        ("2021-11-25T10:30", "2021-11-25T10:30", "2021-11-25T10:30"),
        ("2021-11-25 10:30", "2021-11-25T10:30", "2021-11-25T10:30"),
        ("2021-11-19T16:02:40.897Z", "2021-11-19T16:02:40.897", "2021-11-19T16:02:40.897"),
        ("2021-11-19T18:02:40+02:00", "2021-11-19T16:02:40", "2021-11-19T16:02:40"),
        ("2 hours ago", "2026-11-30T21:00", "2026-11-30T21:00"),
    ],
)
def test_forms(text: str, start: str, end: str) -> None:
    when = parse_when(text, NOW)
    assert (when.start, when.end) == (d(start), d(end))
    assert when.start <= when.last <= when.end


@pytest.mark.parametrize(
    "text",
    [
        "",
        "  ",
        "soon",
        "2021-02-30",
        "2021-13",
        "last fortnight",
        "this 2 weeks",
        "99999999 years ago",
        "monday next",
        "2021-11-25T99:00",
        "../etc",
    ],
)
def test_unreadable_dates_are_usage_errors_that_show_the_forms(text: str) -> None:
    with pytest.raises(BadDate) as caught:
        parse_when(text, NOW)
    assert caught.value.exit_code == 2
    assert "3 days ago" in str(caught.value) and "\n" not in str(caught.value)


def test_commit_ids_are_left_to_the_caller() -> None:
    assert looks_like_commit("5ed210c0")
    assert not looks_like_commit("2021")
    assert not looks_like_commit("yesterday")
