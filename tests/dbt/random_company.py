"""A seeded, messy eduMe customer for the order-independence tests: events on a coarse time grid
(so unrelated and related events share timestamps), course changes in random order, renames at
the very same instant, learners on the fixture company's teams, and eduMe-style retries."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from edume_bodies import (
    Body,
    course_event,
    course_ref,
    learner_activity_event,
    learner_course_completed,
    learner_membership_event,
    serialise,
    user,
)
from warehouse_harness import Delivery

START = datetime(2024, 1, 1, tzinfo=UTC)
TEAMS = (3493, 3494, 3495)


def _courses(rng: random.Random, moment) -> tuple[list[Body], dict[int, list[tuple[int, str]]]]:
    bodies: list[Body] = []
    structures: dict[int, list[tuple[int, str]]] = {}
    for course_id in (500, 501, 502):
        activities = [
            (course_id * 10 + n, rng.choice(["lesson", "assessment", "survey"]))
            for n in range(rng.randint(1, 4))
        ]
        activities[0] = (activities[0][0], "lesson")
        structures[course_id] = activities
        modules = [course_id * 100 + n for n in range(rng.randint(1, 3))]
        kinds = ["course.added", "course.published", "course.unpublished", "course.published"]
        kinds += ["course.updated"] * 3
        tie = moment()
        for index, kind in enumerate(kinds):
            teams = sorted(rng.sample(TEAMS, rng.randint(0, 3)))
            # Two renames share one instant: the tie must resolve the same way every time.
            at = tie if index >= len(kinds) - 2 else moment()
            change = (
                {"type": "title.changed", "previousTitle": "x"}
                if kind == "course.updated"
                else None
            )
            bodies.append(
                course_event(
                    kind,
                    at,
                    course_id,
                    f"Course {course_id} v{index}",
                    teams=teams,
                    modules=modules,
                    activities=activities,
                    published=kind == "course.published",
                    change=change,
                )
            )
    return bodies, structures


def _learners(rng: random.Random, moment, structures, count: int) -> list[Body]:
    bodies: list[Body] = []
    catalogue = [*structures.items(), (14150, [(8558, "lesson"), (6743, "assessment")])]
    for number in range(count):
        learner = user(7000 + number, f"ext-{number}" if number % 3 else None, "Lee", f"N{number}")
        teams = sorted(rng.sample(TEAMS, rng.randint(1, 2)))
        for course_id, activities in rng.sample(catalogue, rng.randint(1, 3)):
            course = course_ref(course_id, f"Course {course_id}")
            if rng.random() < 0.8:  # some learners never get learner.added
                bodies.append(
                    learner_membership_event("learner.added", moment(), learner, course, teams)
                )
            if rng.random() < 0.6:
                bodies.append(
                    learner_membership_event("learner.activated", moment(), learner, course, teams)
                )
            if rng.random() < 0.3:
                continue
            bodies.append(learner_activity_event("started", moment(), learner, course, "course"))
            for activity_id, kind in activities[: rng.randint(1, len(activities))]:
                bodies.append(
                    learner_activity_event(
                        "started",
                        moment(),
                        learner,
                        course,
                        kind,
                        activity_id=activity_id,
                        module_id=1,
                    )
                )
                if rng.random() < 0.6:
                    score = rng.randint(0, 100) if kind == "assessment" else None
                    bodies.append(
                        learner_activity_event(
                            "finished",
                            moment(),
                            learner,
                            course,
                            kind,
                            activity_id=activity_id,
                            module_id=1,
                            score=score,
                            passed=None if score is None else score >= 50,
                        )
                    )
            if rng.random() < 0.4:
                bodies.append(
                    learner_course_completed(moment(), learner, course, teams, [1], activities)
                )
        if rng.random() < 0.2:
            bodies.append(
                learner_activity_event(
                    "finished", moment(), learner, None, "survey", activity_id=9999
                )
            )
    return bodies


def random_deliveries(seed: int, learners: int = 30) -> list[Delivery]:
    """The deliveries, sorted by received_at, with about 10% re-delivered later."""
    rng = random.Random(seed)

    def moment() -> datetime:
        return START + timedelta(minutes=30 * rng.randrange(0, 48 * 40))

    course_bodies, structures = _courses(rng, moment)
    deliveries = []
    for body in course_bodies + _learners(rng, moment, structures, learners):
        occurred = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
        received = occurred + timedelta(seconds=rng.randrange(1, 3 * 86400))
        deliveries.append(Delivery(serialise(body), received))
        if rng.random() < 0.1:
            deliveries.append(Delivery(serialise(body), received + timedelta(hours=1)))
    return sorted(deliveries, key=lambda d: d.received_at)
