"""eduMe-shaped webhook bodies (shared/edume-webhooks.md sections 4-5) for the warehouse tests.

Pure functions: each returns the body as a dict in eduMe's key order; :func:`serialise` turns it
into the bytes eduMe would send (``JSON.stringify``: compact, non-ASCII unescaped).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

Body = dict[str, Any]


def iso(moment: datetime) -> str:
    """The envelope timestamp format: ISO-8601 UTC with milliseconds and a Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def serialise(body: Body) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def course_event(
    event_type: str,
    at: datetime,
    course_id: int,
    title: str,
    *,
    teams: list[int],
    modules: list[int],
    activities: list[tuple[int, str]],
    published: bool = False,
    change: dict[str, Any] | None = None,
    course_key: str = "course-key",
    group_id: int = 1297,
) -> Body:
    payload: dict[str, Any] = {
        "group": {"groupId": group_id},
        "teams": [{"teamId": team} for team in teams],
        "course": {"courseId": course_id, "courseKey": course_key, "title": title},
        "modules": [{"moduleId": module} for module in modules],
        "activities": [
            {"activityId": activity_id, "published": published, "type": kind}
            for activity_id, kind in activities
        ],
        "version": 1,
    }
    if change is not None:
        payload["change"] = change
    return {"type": event_type, "payload": payload, "timestamp": iso(at)}


def user(learner_id: int, external_id: str | None, first: str, last: str) -> dict[str, Any]:
    found: dict[str, Any] = {"userId": learner_id}
    if external_id is not None:
        found["externalUserId"] = external_id
    found.update({"firstName": first, "lastName": last})
    return found


def course_ref(course_id: int, title: str, course_key: str = "course-key") -> dict[str, Any]:
    return {"courseId": course_id, "courseKey": course_key, "title": title}


def learner_membership_event(
    event_type: str,
    at: datetime,
    learner: dict[str, Any],
    course: dict[str, Any],
    teams: list[int],
    group_id: int = 1297,
) -> Body:
    """``learner.added`` or ``learner.activated``."""
    return {
        "type": event_type,
        "payload": {
            "group": {"groupId": group_id},
            "teams": [{"teamId": team} for team in teams],
            "user": learner,
            "course": course,
            "version": 1,
        },
        "timestamp": iso(at),
    }


def learner_activity_event(
    verb: str,
    at: datetime,
    learner: dict[str, Any],
    course: dict[str, Any] | None,
    kind: str,
    *,
    activity_id: int | None = None,
    module_id: int | None = None,
    score: float | None = None,
    passed: bool | None = None,
    group_id: int = 1297,
) -> Body:
    """``learner.activity.<verb>``; ``course`` None makes a standalone survey."""
    payload: dict[str, Any] = {"group": {"groupId": group_id}, "user": learner}
    if course is not None:
        payload["course"] = course
    if module_id is not None:
        payload["module"] = {"moduleId": module_id}
    activity: dict[str, Any] = {"type": kind}
    if activity_id is not None:
        activity["activityId"] = activity_id
    payload["activity"] = activity
    if score is not None:
        payload["result"] = {"score": score, "passed": passed}
    payload["version"] = 1
    return {"type": f"learner.activity.{verb}", "payload": payload, "timestamp": iso(at)}


def learner_course_completed(
    at: datetime,
    learner: dict[str, Any],
    course: dict[str, Any],
    teams: list[int],
    modules: list[int],
    activities: list[tuple[int, str]],
    group_id: int = 1297,
) -> Body:
    return {
        "type": "learner.course.completed",
        "payload": {
            "group": {"groupId": group_id},
            "teams": [{"teamId": team} for team in teams],
            "user": learner,
            "course": course,
            "modules": [{"moduleId": module} for module in modules],
            "activities": [
                {"activityId": activity_id, "type": kind, "completedAt": iso(at)}
                for activity_id, kind in activities
            ],
            "completedAt": iso(at),
            "version": 1,
        },
        "timestamp": iso(at),
    }
