"""The embedded company the simulator plays: groups, teams, courses and their lifecycle.

The catalogue is fixed (it does not depend on the seed) so that course, team and activity ids are
stable: the dbt seed of mandatory courses and the README's examples can name them. The seed only
drives the learners and their journeys. Pure data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Team:
    team_id: int
    group_id: int
    name: str


@dataclass(frozen=True)
class Activity:
    """One lesson, assessment or in-course survey; ``finish_rate`` is P(finish | reached)."""

    activity_id: int
    module_id: int
    kind: str  # lesson | assessment | survey
    finish_rate: float
    pass_mark: int = 0  # assessments only: the score needed to pass


@dataclass(frozen=True)
class TeamChange:
    """A team assigned to (or removed from) a course ``day`` days after the course was added."""

    day: float
    team_id: int
    assigned: bool


@dataclass(frozen=True)
class Course:
    """A course and its lifecycle, in days after the simulation's catalogue start.

    ``published_day`` None means a draft that is never published. ``title_history`` lists
    ``(day, new_title)`` changes after the initial ``title``. The course is open to learners from
    publication until it is unpublished or deleted (whichever is first).
    """

    course_id: int
    course_key: str
    title: str
    group_id: int
    modules: tuple[tuple[Activity, ...], ...]
    added_day: float
    published_day: float | None
    team_changes: tuple[TeamChange, ...]
    title_history: tuple[tuple[float, str], ...] = ()
    unpublished_day: float | None = None
    deleted_day: float | None = None
    start_rate: float = 0.85  # P(an activated learner starts the course)

    @property
    def activities(self) -> tuple[Activity, ...]:
        return tuple(activity for module in self.modules for activity in module)

    @property
    def module_ids(self) -> tuple[int, ...]:
        return tuple(module[0].module_id for module in self.modules)

    @property
    def closed_day(self) -> float | None:
        ends = [day for day in (self.unpublished_day, self.deleted_day) if day is not None]
        return min(ends) if ends else None


@dataclass(frozen=True)
class Company:
    groups: tuple[int, ...]
    teams: tuple[Team, ...]
    courses: tuple[Course, ...]
    standalone_surveys: tuple[int, ...]
    group_weights: tuple[float, ...] = field(default=(0.8, 0.2))

    def teams_in(self, group_id: int) -> tuple[Team, ...]:
        return tuple(team for team in self.teams if team.group_id == group_id)


# Activity specs: (kind, finish_rate[, pass_mark]) per module; ids are assigned below in order.
_LESSON, _HARD, _VERY_HARD = ("lesson", 0.96), ("lesson", 0.8), ("lesson", 0.62)
_QUIZ, _EXAM = ("assessment", 0.93, 60), ("assessment", 0.85, 80)
_SURVEY = ("survey", 0.9)


def _modules(
    first_module_id: int, first_activity_id: int, spec: list[list[tuple]]
) -> tuple[tuple[Activity, ...], ...]:
    modules, activity_id = [], first_activity_id
    for offset, module_spec in enumerate(spec):
        module_id = first_module_id + offset
        activities = []
        for kind, finish_rate, *rest in module_spec:
            activities.append(Activity(activity_id, module_id, kind, finish_rate, *rest))
            activity_id += 1
        modules.append(tuple(activities))
    return tuple(modules)


def default_company() -> Company:
    """The embedded default: a logistics company with a UK and a Spanish group.

    The dbt seed ``mandatory_courses.csv`` names 14150 (health & safety induction, due within
    30 days) and 14155 (its Spanish counterpart, 14 days) as mandatory; 14148 is eduMe's
    documented sample course, kept recognisable, and is not mandatory.
    """
    uk, spain = 1297, 1298
    teams = (
        Team(3493, uk, "Warehouse Leeds"),
        Team(3494, uk, "Drivers North"),
        Team(3495, uk, "Head office"),
        Team(3496, uk, "Shift managers"),
        Team(3510, spain, "Almacén Madrid"),
        Team(3511, spain, "Repartidores"),
    )
    a, r = True, False
    courses = (
        # The published sample course of eduMe's documentation, kept recognisable.
        Course(
            14148,
            "reboarding_your_workforce4900",
            "Reboarding your workforce",
            uk,
            _modules(15010, 8558, [[_LESSON, _SURVEY, _QUIZ]]),
            added_day=0,
            published_day=1,
            team_changes=(TeamChange(0.5, 3493, a), TeamChange(0.6, 3495, a)),
        ),
        Course(
            14150,
            "health_and_safety_induction",
            "Health & safety induction",
            uk,
            _modules(15020, 8600, [[_LESSON, _LESSON], [_HARD, _QUIZ], [_LESSON, _SURVEY]]),
            added_day=0.2,
            published_day=1.5,
            team_changes=(
                TeamChange(1.0, 3493, a),
                TeamChange(1.0, 3494, a),
                TeamChange(1.1, 3495, a),
                TeamChange(1.1, 3496, a),
            ),
        ),
        Course(
            14151,
            "manual_handling_basics",
            "Manual handling basics",
            uk,
            _modules(15030, 8620, [[_LESSON, _VERY_HARD], [_LESSON, _EXAM]]),
            added_day=2,
            published_day=3,
            team_changes=(TeamChange(2.5, 3493, a), TeamChange(2.5, 3494, a)),
        ),
        Course(
            14152,
            "night_driving",
            "Night driving",
            uk,
            _modules(15040, 8640, [[_LESSON, _HARD], [_LESSON, _QUIZ, _SURVEY]]),
            added_day=3,
            published_day=4,
            team_changes=(TeamChange(3.5, 3494, a),),
            title_history=((10, "Safe driving at night"),),
        ),
        Course(
            14153,
            "customer_care_essentials",
            "Customer care essentials",
            uk,
            _modules(15050, 8660, [[_LESSON, _LESSON, _QUIZ]]),
            added_day=4,
            published_day=5,
            unpublished_day=55,
            team_changes=(TeamChange(4.5, 3495, a),),
        ),
        Course(
            14154,
            "leading_a_shift",
            "Leading a shift",
            uk,
            _modules(15060, 8680, [[_LESSON, _HARD], [_VERY_HARD, _EXAM]]),
            added_day=5,
            published_day=6,
            team_changes=(
                TeamChange(5.5, 3496, a),
                TeamChange(5.6, 3495, a),
                TeamChange(30, 3495, r),
            ),
        ),
        Course(
            14155,
            "seguridad_en_el_almacen",
            "Seguridad en el almacén",
            spain,
            _modules(15070, 8700, [[_LESSON, _HARD, _QUIZ], [_LESSON, _SURVEY]]),
            added_day=1,
            published_day=2,
            team_changes=(TeamChange(1.5, 3510, a), TeamChange(1.5, 3511, a)),
        ),
        # eduMe's own samples show two courses sharing a courseKey: key on courseId.
        Course(
            14156,
            "reboarding_your_workforce4900",
            "Reincorporación al trabajo",
            spain,
            _modules(15080, 8720, [[_LESSON, _LESSON, _QUIZ]]),
            added_day=6,
            published_day=7,
            team_changes=(TeamChange(6.5, 3511, a),),
            title_history=((8, "Reincorporación: guía rápida"),),
        ),
        Course(
            14157,
            "gdpr_refresher_2023",
            "GDPR refresher 2023",
            uk,
            _modules(15090, 8740, [[_LESSON, _QUIZ]]),
            added_day=1,
            published_day=2,
            deleted_day=40,
            team_changes=(TeamChange(1.5, 3495, a),),
        ),
        Course(
            14158,
            "forklift_certification",
            "Forklift certification (draft)",
            uk,
            _modules(15100, 8760, [[_LESSON, _LESSON], [_EXAM]]),
            added_day=20,
            published_day=None,
            team_changes=(),
        ),
    )
    return Company(
        groups=(uk, spain), teams=teams, courses=courses, standalone_surveys=(2700, 2701)
    )
