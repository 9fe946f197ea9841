"""A small eduMe customer whose marts are computed by hand in test_dbt_fixture_company.py.

Courses (group 1297; teams 3493 Ops, 3494 Sales, 3495 Drivers):
- 14150, mandatory (seed: due within 30 days): added as "Reboarding v1" on Jan 1, renamed to
  "Reboarding v2" on Jan 2 and to "Reboarding your workforce" on Jan 3 (the Jan 2 rename
  ARRIVES last of all the course's events), team 3493 assigned Jan 4, 3494 assigned Jan 5,
  published Jan 6, 3494 removed Jan 10 (that removal arrives before the Jan 5 assignment).
  Modules 15010, 15011; activities 8558 lesson, 2642 survey, 6743 assessment.
- 14147: added, assigned to 3493, published, then deleted on Jan 5.
- 200: added (draft) with team 3495.
- 300: never announced; only learner 90213's events mention it ("Ghost course").

Learners:
- 90211 Ada (team 3493): added, activated, completes 14150 on Jan 8 (assessment score 85),
  then a standalone survey on Jan 9. One of her events is delivered three times.
- 90212 Bo (team 3494, later removed from 14150): starts lesson 8558 on Jan 9, nothing since.
- 90213 Zoë (no teams): never receives learner.added; finishes lesson 8558 of 14150 on Jan 20,
  starts lesson 9001 of course 300 on Jan 21.
- 90214 Cy (team 3495): added to draft course 200 only.
- 90215 Di (team 3493): added Jan 25, starts lesson 8558 on Feb 5.
- 90216 Ed (team 3493): added to 14147 (later deleted) on Dec 20; never starts 14150.
Plus three deliveries that cannot be processed: an unknown type, a learner event without
userId, a body without type.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edume_bodies import (
    course_event,
    course_ref,
    learner_activity_event,
    learner_course_completed,
    learner_membership_event,
    serialise,
    user,
)
from warehouse_harness import Delivery

AS_OF = "2024-02-10 00:00:00"
ACTIVITIES = [(8558, "lesson"), (2642, "survey"), (6743, "assessment")]
MODULES = [15010, 15011]


def at(day: str, clock: str = "09:00:00") -> datetime:
    """A UTC moment from 'YYYY-MM-DD' and 'HH:MM:SS'."""
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=UTC)


def _course_14150() -> list[tuple[dict, datetime]]:
    """(body, received_at) pairs; arrival is out of order where received_at says so."""
    title = "Reboarding your workforce"

    def event(kind, day, name, teams, *, change=None, published=False):
        return course_event(
            kind,
            at(day),
            14150,
            name,
            teams=teams,
            modules=MODULES,
            activities=ACTIVITIES,
            change=change,
            published=published,
            course_key="reboarding_your_workforce4900",
        )

    return [
        (event("course.added", "2024-01-01", "Reboarding v1", []), at("2024-01-01", "09:00:01")),
        # Renamed twice: the Jan 3 rename arrives first, the Jan 2 one last of all (Jan 12).
        (
            event(
                "course.updated",
                "2024-01-03",
                title,
                [],
                change={"type": "title.changed", "previousTitle": "Reboarding v2"},
            ),
            at("2024-01-03", "09:00:01"),
        ),
        (
            event(
                "course.updated",
                "2024-01-02",
                "Reboarding v2",
                [],
                change={"type": "title.changed", "previousTitle": "Reboarding v1"},
            ),
            at("2024-01-12", "10:00:00"),
        ),
        (
            event(
                "course.updated",
                "2024-01-04",
                title,
                [3493],
                change={"type": "team.assigned", "teamId": 3493},
            ),
            at("2024-01-04", "09:00:01"),
        ),
        (
            event("course.published", "2024-01-06", title, [3493, 3494], published=True),
            at("2024-01-06", "09:00:01"),
        ),
        # Team 3494 removed on Jan 10; the removal arrives before its Jan 5 assignment.
        (
            event(
                "course.updated",
                "2024-01-10",
                title,
                [3493],
                change={"type": "team.removed", "teamId": 3494},
                published=True,
            ),
            at("2024-01-10", "09:00:01"),
        ),
        (
            event(
                "course.updated",
                "2024-01-05",
                title,
                [3493, 3494],
                change={"type": "team.assigned", "teamId": 3494},
            ),
            at("2024-01-10", "12:00:00"),
        ),
    ]


def _other_courses() -> list[dict]:
    def old(kind, day, teams, change=None):
        return course_event(
            kind,
            at(day, "08:00:00"),
            14147,
            "Old course",
            teams=teams,
            modules=[15009],
            activities=[],
            change=change,
        )

    return [
        old("course.added", "2024-01-01", []),
        old("course.updated", "2024-01-02", [3493], {"type": "team.assigned", "teamId": 3493}),
        old("course.published", "2024-01-03", [3493]),
        old("course.deleted", "2024-01-05", [3493]),
        course_event(
            "course.added",
            at("2024-01-01", "07:00:00"),
            200,
            "Draft course",
            teams=[3495],
            modules=[20001],
            activities=[(20002, "lesson")],
        ),
    ]


def _learners() -> list[dict]:
    reboarding = course_ref(14150, "Reboarding your workforce", "reboarding_your_workforce4900")
    old = course_ref(14147, "Old course")
    draft = course_ref(200, "Draft course")
    ghost = course_ref(300, "Ghost course", "ghost")
    ada = user(90211, "emp-00172", "Ada", "Okafor")
    bo = user(90212, "emp-00173", "Bo", "Li")
    zoe = user(90213, "emp-00174", "Zoë", "Ñúñez")
    cy = user(90214, None, "Cy", "Ng")
    di = user(90215, "emp-00176", "Di", "Wu")
    ed = user(90216, "emp-00177", "Ed", "Ka")
    started, finished = "started", "finished"
    return [
        learner_membership_event(
            "learner.added", at("2024-01-07", "10:00:00"), ada, reboarding, [3493]
        ),
        learner_membership_event(
            "learner.activated", at("2024-01-07", "11:00:00"), ada, reboarding, [3493]
        ),
        learner_activity_event(started, at("2024-01-08", "09:00:00"), ada, reboarding, "course"),
        learner_activity_event(
            started,
            at("2024-01-08", "09:01:00"),
            ada,
            reboarding,
            "lesson",
            activity_id=8558,
            module_id=15010,
        ),
        learner_activity_event(
            finished,
            at("2024-01-08", "09:10:00"),
            ada,
            reboarding,
            "lesson",
            activity_id=8558,
            module_id=15010,
        ),
        learner_activity_event(
            started,
            at("2024-01-08", "09:20:00"),
            ada,
            reboarding,
            "assessment",
            activity_id=6743,
            module_id=15011,
        ),
        learner_activity_event(
            finished,
            at("2024-01-08", "09:30:00"),
            ada,
            reboarding,
            "assessment",
            activity_id=6743,
            module_id=15011,
            score=85,
            passed=True,
        ),
        learner_activity_event(
            finished,
            at("2024-01-08", "09:40:00"),
            ada,
            reboarding,
            "survey",
            activity_id=2642,
            module_id=15011,
        ),
        learner_course_completed(
            at("2024-01-08", "09:45:00"), ada, reboarding, [3493], MODULES, ACTIVITIES
        ),
        learner_activity_event(
            finished, at("2024-01-09", "12:00:00"), ada, None, "survey", activity_id=7777
        ),
        learner_membership_event(
            "learner.added", at("2024-01-07", "10:00:00"), bo, reboarding, [3494]
        ),
        learner_membership_event(
            "learner.activated", at("2024-01-07", "12:00:00"), bo, reboarding, [3494]
        ),
        learner_activity_event(started, at("2024-01-09", "09:00:00"), bo, reboarding, "course"),
        learner_activity_event(
            started,
            at("2024-01-09", "09:05:00"),
            bo,
            reboarding,
            "lesson",
            activity_id=8558,
            module_id=15010,
        ),
        learner_activity_event(started, at("2024-01-20", "09:00:00"), zoe, reboarding, "course"),
        learner_activity_event(
            finished,
            at("2024-01-20", "09:30:00"),
            zoe,
            reboarding,
            "lesson",
            activity_id=8558,
            module_id=15010,
        ),
        learner_activity_event(started, at("2024-01-21", "09:00:00"), zoe, ghost, "course"),
        learner_activity_event(
            started,
            at("2024-01-21", "09:05:00"),
            zoe,
            ghost,
            "lesson",
            activity_id=9001,
            module_id=9000,
        ),
        learner_membership_event("learner.added", at("2024-01-15", "10:00:00"), cy, draft, [3495]),
        learner_membership_event(
            "learner.added", at("2024-01-25", "10:00:00"), di, reboarding, [3493]
        ),
        learner_membership_event(
            "learner.activated", at("2024-01-25", "11:00:00"), di, reboarding, [3493]
        ),
        learner_activity_event(started, at("2024-02-05", "09:00:00"), di, reboarding, "course"),
        learner_activity_event(
            started,
            at("2024-02-05", "09:10:00"),
            di,
            reboarding,
            "lesson",
            activity_id=8558,
            module_id=15010,
        ),
        learner_membership_event("learner.added", at("2023-12-20", "10:00:00"), ed, old, [3493]),
    ]


def _unprocessable() -> list[dict]:
    return [
        {
            "type": "learner.badge.earned",
            "payload": {"user": {"userId": 90211}},
            "timestamp": "2024-01-11T09:00:00.000Z",
        },
        {
            "type": "learner.activity.started",
            "payload": {
                "user": {"externalUserId": "x"},
                "course": {"courseId": 14150},
                "activity": {"type": "course"},
            },
            "timestamp": "2024-01-11T09:00:00.000Z",
        },
        {"payload": {"course": {"courseId": 14150}}, "timestamp": "2024-01-11T09:00:00.000Z"},
    ]


def company_deliveries() -> list[Delivery]:
    """Every landed line, in arrival (received_at) order, duplicates included."""
    timed = list(_course_14150())
    for body in _other_courses() + _learners() + _unprocessable():
        occurred = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
        timed.append((body, occurred + timedelta(seconds=1)))
    deliveries = [Delivery(serialise(body), received) for body, received in timed]
    # Ada's finished lesson arrives three times (eduMe retries): it must count once.
    ada_lesson = next(
        d
        for d in deliveries
        if b'"finished"' not in d.body
        and b"learner.activity.finished" in d.body
        and b"8558" in d.body
        and b"90211" in d.body
    )
    deliveries += [
        Delivery(ada_lesson.body, ada_lesson.received_at + timedelta(minutes=m)) for m in (5, 60)
    ]
    return sorted(deliveries, key=lambda d: d.received_at)
