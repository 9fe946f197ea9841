"""Pure generation: a company's eduMe events and the ground truth they imply.

:func:`generate` is deterministic for a given seed, learner count and end time: it returns the
events (envelopes as dicts, keys in eduMe's order) sorted by when they occurred, and a
:class:`Truth` recording, per course, how many learners reached each funnel step. No I/O, no
signing, no noise (duplicates, disorder and forgeries are added by ``deliveries.py``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.simulator.catalogue import Activity, Company, Course, Team, default_company

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
CATALOGUE_DAYS = 90  # the catalogue starts this many days before the end of the simulation
NEVER_ACTIVATE_RATE = 0.15
STANDALONE_SURVEY_RATES = (0.3, 0.15)
MAX_ASSESSMENT_ATTEMPTS = 3

FIRST_NAMES = (
    "Ada",
    "Zoë",
    "José",
    "Łukasz",
    "Amara",
    "Chloé",
    "Søren",
    "Priya",
    "Mateo",
    "Aoife",
    "Björn",
    "Nguyễn",
    "Fatima",
    "Oliver",
    "Inés",
    "Kwame",
    "Mia",
    "Yūki",
)
LAST_NAMES = (
    "Okafor",
    "García",
    "Müller",
    "Nowak",
    "Smith",
    "Dubois",
    "O'Brien",
    "Jensen",
    "Patel",
    "Fernández",
    "Kowalski",
    "Øster",
    "Silva",
    "Brown",
    "Núñez",
    "Tanaka",
)


@dataclass(frozen=True)
class Event:
    """One eduMe event: ``at_ms`` is when it occurred (Unix ms), ``body`` the envelope dict."""

    at_ms: int
    body: dict


@dataclass
class ActivityTruth:
    reached: int = 0  # learners who started it (in-course surveys: who finished it)
    finished: int = 0


@dataclass
class CourseTruth:
    """What really happened in one course. Funnel counts are distinct learners, nested."""

    course_id: int
    course_key: str
    title: str
    group_id: int
    status: str
    teams: list[int]
    count_modules: int
    count_lessons: int
    count_assessments: int
    count_surveys: int
    learners_added: int = 0
    learners_activated: int = 0
    learners_started: int = 0
    learners_finished_first_lesson: int = 0
    learners_completed: int = 0
    activities: dict[int, ActivityTruth] = field(default_factory=dict)


@dataclass
class Truth:
    seed: int
    learners: int
    end: str
    learners_seen: int = 0  # learners with at least one event (dim_learners' rows)
    learners_never_activated: int = 0
    standalone_surveys_finished: int = 0
    deliveries: dict[str, int] = field(default_factory=dict)  # filled by plan_deliveries
    courses: dict[int, CourseTruth] = field(default_factory=dict)


@dataclass(frozen=True)
class Learner:
    user_id: int
    external_user_id: str | None
    first_name: str
    last_name: str
    group_id: int
    teams: tuple[Team, ...]
    joined_ms: int
    activated_ms: int | None  # None: never activates their account


def iso_ms(at_ms: int) -> str:
    """eduMe's timestamp format: ISO-8601 UTC with milliseconds, e.g. 2023-05-31T11:42:57.633Z."""
    moment = datetime.fromtimestamp(at_ms / 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{at_ms % 1000:03d}Z"


def envelope(event_type: str, payload: dict, at_ms: int) -> Event:
    return Event(at_ms, {"type": event_type, "payload": payload, "timestamp": iso_ms(at_ms)})


# ---- the course side --------------------------------------------------------------------------


def _team_intervals(course: Course, team_id: int, start_ms: int) -> list[tuple[int, int | None]]:
    """When ``team_id`` is assigned to ``course``: [from, until) in ms, until None = still."""
    intervals: list[tuple[int, int | None]] = []
    since: int | None = None
    for change in sorted(course.team_changes, key=lambda c: c.day):
        if change.team_id != team_id:
            continue
        at = start_ms + round(change.day * DAY_MS)
        if change.assigned and since is None:
            since = at
        elif not change.assigned and since is not None:
            intervals.append((since, at))
            since = None
    if since is not None:
        intervals.append((since, None))
    return intervals


def _course_status(course: Course) -> str:
    if course.deleted_day is not None:
        return "deleted"
    if course.unpublished_day is not None:
        return "unpublished"
    return "draft" if course.published_day is None else "published"


def _course_object(course: Course, title: str) -> dict:
    return {"courseId": course.course_id, "courseKey": course.course_key, "title": title}


def _course_payload(course: Course, title: str, teams: list[int], published: bool) -> dict:
    return {
        "group": {"groupId": course.group_id},
        "teams": [{"teamId": team_id} for team_id in teams],
        "course": _course_object(course, title),
        "modules": [{"moduleId": module_id} for module_id in course.module_ids],
        "activities": [
            {"activityId": a.activity_id, "published": published, "type": a.kind}
            for a in course.activities
        ],
    }


def course_events(course: Course, start_ms: int) -> list[Event]:
    """An admin's lifecycle of a course: added, teams, titles, (un)published, deleted."""
    steps: list[tuple[float, int, str, dict]] = [(course.added_day, 0, "added", {})]
    steps += [(c.day, 1, "team", {"change": c}) for c in course.team_changes]
    steps += [(day, 1, "title", {"title": title}) for day, title in course.title_history]
    for day, name in (
        (course.published_day, "published"),
        (course.unpublished_day, "unpublished"),
        (course.deleted_day, "deleted"),
    ):
        if day is not None:
            steps.append((day, 2, name, {}))
    title, teams, published, events = course.title, [], False, []
    for day, _, name, detail in sorted(steps, key=lambda s: (s[0], s[1])):
        at = start_ms + round(day * DAY_MS)
        change: dict | None = None
        if name == "team":
            team_change = detail["change"]
            if team_change.assigned:
                teams = [*teams, team_change.team_id]
            else:
                teams = [t for t in teams if t != team_change.team_id]
            kind = "team.assigned" if team_change.assigned else "team.removed"
            change = {"type": kind, "teamId": team_change.team_id}
        elif name == "title":
            change = {"type": "title.changed", "previousTitle": title}
            title = detail["title"]
        elif name == "published":
            published = True
        elif name == "unpublished":
            published = False
        payload = _course_payload(course, title, teams, published)
        if change is not None:
            payload["change"] = change
        payload["version"] = 1
        event_type = "course.updated" if change is not None else f"course.{name}"
        events.append(envelope(event_type, payload, at))
    return events


def title_at(course: Course, at_ms: int, start_ms: int) -> str:
    title = course.title
    for day, new_title in course.title_history:
        if start_ms + round(day * DAY_MS) <= at_ms:
            title = new_title
    return title


# ---- the learner side -------------------------------------------------------------------------


def _make_learners(
    rng: random.Random, company: Company, count: int, start_ms: int, end_ms: int
) -> list[Learner]:
    learners = []
    for index in range(count):
        group_id = rng.choices(company.groups, weights=company.group_weights)[0]
        group_teams = company.teams_in(group_id)
        teams = tuple(
            sorted(rng.sample(group_teams, 2 if rng.random() < 0.2 else 1), key=lambda t: t.team_id)
        )
        joined = start_ms + rng.randint(8 * DAY_MS, CATALOGUE_DAYS * DAY_MS - 2 * DAY_MS)
        activated: int | None = None
        if rng.random() >= NEVER_ACTIVATE_RATE:
            activated = joined + round(rng.expovariate(1 / (1.5 * DAY_MS))) + MINUTE_MS
        learners.append(
            Learner(
                user_id=90_001 + index,
                external_user_id=f"emp-{index + 1:05d}" if rng.random() < 0.95 else None,
                first_name=rng.choice(FIRST_NAMES),
                last_name=rng.choice(LAST_NAMES),
                group_id=group_id,
                teams=teams,
                joined_ms=joined,
                activated_ms=activated if activated is not None and activated < end_ms else None,
            )
        )
    return learners


def _user_object(learner: Learner) -> dict:
    user: dict = {"userId": learner.user_id}
    if learner.external_user_id is not None:
        user["externalUserId"] = learner.external_user_id
    user["firstName"] = learner.first_name
    user["lastName"] = learner.last_name
    return user


def _access(
    course: Course, learner: Learner, start_ms: int, end_ms: int
) -> tuple[int, int, list[int]] | None:
    """The first window [from, until) in which the learner sees the course, and via which teams."""
    if course.published_day is None:
        return None
    open_from = start_ms + round(course.published_day * DAY_MS)
    closed = course.closed_day
    open_until = end_ms if closed is None else start_ms + round(closed * DAY_MS)
    windows = []
    for team in learner.teams:
        for since, until in _team_intervals(course, team.team_id, start_ms):
            lo = max(since, open_from, learner.joined_ms)
            hi = min(until if until is not None else end_ms, open_until, end_ms)
            if lo < hi:
                windows.append((lo, hi, team.team_id))
    if not windows:
        return None
    lo = min(w[0] for w in windows)
    via = sorted({w[2] for w in windows if w[0] <= lo + HOUR_MS})
    hi = max(w[1] for w in windows if w[0] <= lo + HOUR_MS)
    return lo, hi, via


def _gap(rng: random.Random) -> int:
    """Time between two activities: mostly minutes, sometimes hours, now and then days."""
    roll = rng.random()
    if roll < 0.7:
        return rng.randint(MINUTE_MS, 20 * MINUTE_MS)
    if roll < 0.95:
        return rng.randint(HOUR_MS, 24 * HOUR_MS)
    return rng.randint(DAY_MS, 5 * DAY_MS)


class _Journey:
    """Emits one learner's events in one course, stopping at the end of their access window."""

    def __init__(
        self, course: Course, learner: Learner, start_ms: int, until_ms: int, teams: list[int]
    ) -> None:
        self.course, self.learner = course, learner
        self.start_ms, self.until_ms = start_ms, until_ms
        self.teams = teams
        self.events: list[Event] = []

    def emit(self, event_type: str, at_ms: int, fields: dict) -> bool:
        """Emit unless ``at_ms`` is past the access window; returns whether it was emitted."""
        if at_ms >= self.until_ms:
            return False
        payload = {"group": {"groupId": self.learner.group_id}}
        if "teams" in fields:
            payload["teams"] = [{"teamId": t} for t in self.teams]
        payload["user"] = _user_object(self.learner)
        payload["course"] = _course_object(self.course, title_at(self.course, at_ms, self.start_ms))
        payload.update({k: v for k, v in fields.items() if k != "teams"})
        self.events.append(envelope(event_type, payload, at_ms))
        return True

    def activity(
        self, verb: str, activity: Activity, at_ms: int, result: dict | None = None
    ) -> bool:
        fields = {
            "module": {"moduleId": activity.module_id},
            "activity": {"type": activity.kind, "activityId": activity.activity_id},
        }
        if result is not None:
            fields["result"] = result
        return self.emit(f"learner.activity.{verb}", at_ms, fields)


def _walk_course(rng: random.Random, journey: _Journey, at: int, truth: CourseTruth) -> None:
    """Started the course at ``at``: walk its activities until done, dropped or out of time."""
    course = journey.course
    completed_at: dict[int, int] = {}
    finished_a_lesson = False
    for activity in course.activities:
        at += _gap(rng)
        attempts = MAX_ASSESSMENT_ATTEMPTS if activity.kind == "assessment" else 1
        done = False
        for _ in range(attempts):
            if activity.kind != "survey":
                if not journey.activity("started", activity, at):
                    return
                truth.activities[activity.activity_id].reached += _first(completed_at, activity)
            at += rng.randint(2 * MINUTE_MS, 15 * MINUTE_MS)
            if rng.random() >= activity.finish_rate:
                return  # dropped off here: some activities lose far more learners than others
            result = None
            if activity.kind == "assessment":
                score = max(0, min(100, round(rng.gauss(activity.pass_mark + 8, 15))))
                result = {"score": score, "passed": score >= activity.pass_mark}
            if not journey.activity("finished", activity, at, result):
                return
            if activity.kind == "survey":
                truth.activities[activity.activity_id].reached += 1
            if activity.activity_id not in completed_at:
                truth.activities[activity.activity_id].finished += 1
            completed_at[activity.activity_id] = at
            if result is None or result["passed"]:
                done = True
                break
            at += _gap(rng)
        if not done:
            return  # failed every attempt and gave up
        if activity.kind == "lesson" and not finished_a_lesson:
            finished_a_lesson = True
            truth.learners_finished_first_lesson += 1
    at += rng.randint(1_000, 10_000)
    if not journey.emit("learner.activity.finished", at, {"activity": {"type": "course"}}):
        return
    journey.emit(
        "learner.course.completed",
        at,
        {
            "teams": True,
            "modules": [{"moduleId": module_id} for module_id in course.module_ids],
            "activities": [
                {
                    "activityId": a.activity_id,
                    "type": a.kind,
                    "completedAt": iso_ms(completed_at[a.activity_id]),
                }
                for a in course.activities
            ],
            "completedAt": iso_ms(at),
            "version": 1,
        },
    )
    truth.learners_completed += 1


def _first(completed_at: dict[int, int], activity: Activity) -> int:
    """1 the first time a learner reaches an activity (a retake is not a new learner)."""
    return 0 if activity.activity_id in completed_at else 1


def _learner_in_course(
    rng: random.Random,
    course: Course,
    learner: Learner,
    start_ms: int,
    end_ms: int,
    truth: CourseTruth,
) -> list[Event]:
    """One learner's events in one course. The added/activated counts are the caller's: an
    account is activated once, whichever course's event says so."""
    access = _access(course, learner, start_ms, end_ms)
    if access is None:
        return []
    lo, hi, via = access
    journey = _Journey(course, learner, start_ms, hi, via)
    at = lo + rng.randint(MINUTE_MS, 30 * MINUTE_MS)
    if not journey.emit("learner.added", at, {"teams": True, "version": 1}):
        return journey.events
    if learner.activated_ms is None:
        return journey.events
    at = max(at, learner.activated_ms) + rng.randint(5_000, 120_000)
    if not journey.emit("learner.activated", at, {"teams": True, "version": 1}):
        return journey.events
    if rng.random() >= course.start_rate:
        return journey.events
    at += round(rng.expovariate(1 / DAY_MS)) + MINUTE_MS
    if not journey.emit("learner.activity.started", at, {"activity": {"type": "course"}}):
        return journey.events
    truth.learners_started += 1
    _walk_course(rng, journey, at, truth)
    return journey.events


def _standalone_surveys(
    rng: random.Random, company: Company, learner: Learner, end_ms: int, truth: Truth
) -> list[Event]:
    events = []
    if learner.activated_ms is None:
        return events
    for survey_id, rate in zip(company.standalone_surveys, STANDALONE_SURVEY_RATES, strict=True):
        if rng.random() >= rate:
            continue
        at = learner.activated_ms + rng.randint(HOUR_MS, 20 * DAY_MS)
        if at >= end_ms:
            continue
        payload = {
            "group": {"groupId": learner.group_id},
            "user": _user_object(learner),
            "activity": {"type": "survey", "activityId": survey_id},
        }
        events.append(envelope("learner.activity.finished", payload, at))
        truth.standalone_surveys_finished += 1
    return events


def _course_truth(course: Course) -> CourseTruth:
    kinds = [a.kind for a in course.activities]
    final_teams: list[int] = []
    for change in sorted(course.team_changes, key=lambda c: c.day):
        final_teams = (
            [*final_teams, change.team_id]
            if change.assigned
            else [t for t in final_teams if t != change.team_id]
        )
    title = course.title_history[-1][1] if course.title_history else course.title
    return CourseTruth(
        course_id=course.course_id,
        course_key=course.course_key,
        title=title,
        group_id=course.group_id,
        status=_course_status(course),
        teams=sorted(final_teams),
        count_modules=len(course.modules),
        count_lessons=kinds.count("lesson"),
        count_assessments=kinds.count("assessment"),
        count_surveys=kinds.count("survey"),
        activities={a.activity_id: ActivityTruth() for a in course.activities},
    )


def default_end() -> datetime:
    """A fixed end, so that a seed alone pins every byte; the demo passes today instead."""
    return datetime(2026, 11, 1, tzinfo=UTC)


def journeys(
    learners: int, seed: int, end: datetime | None = None, company: Company | None = None
) -> tuple[Truth, Iterator[list[Event]]]:
    """The truth, and an iterator of event batches: the catalogue's, then one per learner.

    The truth is complete once the iterator is exhausted. Batches are in generation order (each
    sorted by occurrence within itself), so a million events never need to sit in memory at
    once. Raises ``ValueError`` for a negative learner count.
    """
    if learners < 0:
        raise ValueError(f"the number of learners must be zero or more, got {learners}")
    company = company or default_company()
    end = (end or default_end()).astimezone(UTC)
    end_ms = int(end.timestamp() * 1000)
    start_ms = end_ms - CATALOGUE_DAYS * DAY_MS
    truth = Truth(seed=seed, learners=learners, end=iso_ms(end_ms))
    for course in company.courses:
        truth.courses[course.course_id] = _course_truth(course)

    def batches() -> Iterator[list[Event]]:
        rng = random.Random(seed)
        yield [event for course in company.courses for event in course_events(course, start_ms)]
        for learner in _make_learners(rng, company, learners, start_ms, end_ms):
            own = _one_learner(rng, company, learner, start_ms, end_ms, truth)
            own.sort(key=lambda e: e.at_ms)
            yield own

    return truth, batches()


def _one_learner(
    rng: random.Random, company: Company, learner: Learner, start_ms: int, end_ms: int, truth: Truth
) -> list[Event]:
    own: list[Event] = []
    added_to: list[CourseTruth] = []
    for course in company.courses:
        course_truth = truth.courses[course.course_id]
        in_course = _learner_in_course(rng, course, learner, start_ms, end_ms, course_truth)
        own += in_course
        if in_course:
            added_to.append(course_truth)
    activated = any(e.body["type"] == "learner.activated" for e in own)
    for course_truth in added_to:
        course_truth.learners_added += 1
        course_truth.learners_activated += activated
    own += _standalone_surveys(rng, company, learner, end_ms, truth)
    truth.learners_seen += bool(own)
    truth.learners_never_activated += bool(own) and learner.activated_ms is None
    return own


def generate(
    learners: int, seed: int, end: datetime | None = None, company: Company | None = None
) -> tuple[list[Event], Truth]:
    """Every event of ``learners`` learners' journeys, sorted by occurrence, and the truth.

    Raises ``ValueError`` for a negative learner count.
    """
    truth, batches = journeys(learners, seed, end, company)
    events = [event for batch in batches for event in batch]
    events.sort(key=lambda e: e.at_ms)  # stable: ties keep their causal order
    return events, truth
