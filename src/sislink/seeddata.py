"""The synthetic district's people, as a pure function of the seed: shared by the built-in SIS and
the local Google Classroom, so both sandboxes hold the same teachers and students by email.

Neutral ground for the two protocol layers (`oneroster/` and `googleclassroom/` never import each
other): the vocabulary of names and places, the rule that makes email local parts unique, and the
school and staff sizing. `oneroster/provider/seed.py` builds its whole district on these;
`googleclassroom/emulator/` builds only its directory of users from `district_people`.
`tests/googleclassroom/test_directory_matches_the_built_in_sis.py` keeps the two in agreement.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

STUDENTS_PER_SCHOOL = 1000
STUDENTS_PER_TEACHER = 20

FIRST_NAMES = (
    "Aaliyah", "Aarav", "Abigail", "Adrian", "Aiden", "Alejandro", "Alexis", "Amara", "Amelia",
    "Ana", "Andre", "Aria", "Asher", "Ava", "Benjamin", "Brianna", "Caleb", "Camila", "Carlos",
    "Charlotte", "Chloe", "Daniel", "David", "Diego", "Elena", "Eli", "Elijah", "Emily", "Emma",
    "Ethan", "Evelyn", "Fatima", "Gabriel", "Grace", "Hana", "Harper", "Hiro", "Isaac",
    "Isabella", "Jackson", "Jada", "James", "Jasmine", "Javier", "Jayden", "Julia", "Kai",
    "Kayla", "Leah", "Leo", "Liam", "Lucas", "Luna", "Madison", "Malik", "Maria", "Mason",
    "Mateo", "Maya", "Mia", "Michael", "Mohammed", "Naomi", "Noah", "Nora", "Oliver", "Olivia",
    "Omar", "Priya", "Rafael", "Riley", "Ryan", "Samuel", "Santiago", "Sara", "Sofia", "Sophia",
    "Tariq", "Theo", "Valentina", "Victoria", "Wei", "William", "Xavier", "Yusuf", "Zara", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Ahmed", "Allen", "Alvarez", "Anderson", "Baker", "Bennett", "Brooks", "Brown",
    "Campbell", "Carter", "Castillo", "Chen", "Clark", "Collins", "Cruz", "Davis", "Diaz",
    "Edwards", "Evans", "Flores", "Foster", "Garcia", "Gomez", "Gonzalez", "Gray", "Green",
    "Hall", "Harris", "Hernandez", "Hill", "Huang", "Hughes", "Jackson", "James", "Johnson",
    "Jones", "Kelly", "Khan", "Kim", "King", "Lee", "Lewis", "Lopez", "Martin", "Martinez",
    "Mendoza", "Miller", "Mitchell", "Moore", "Morales", "Murphy", "Nguyen", "Okafor", "Ortiz",
    "Parker", "Patel", "Perez", "Phillips", "Price", "Ramirez", "Reed", "Reyes", "Rivera",
    "Roberts", "Robinson", "Rodriguez", "Rogers", "Ross", "Sanchez", "Scott", "Shah", "Singh",
    "Smith", "Stewart", "Sullivan", "Taylor", "Thomas", "Thompson", "Torres", "Turner", "Walker",
    "Wang", "Ward", "White", "Williams", "Wilson", "Wright", "Young", "Zhang",
)  # fmt: skip
PLACES = (
    "Lincoln", "Riverside", "Lakeview", "Hillcrest", "Oak Ridge", "Maple Grove", "Cedar Park",
    "Pine Valley", "Westfield", "Eastwood", "Northgate", "Southridge", "Fairview", "Greenwood",
    "Brookside", "Highland", "Jefferson", "Roosevelt", "Washington", "Franklin", "Madison",
    "Kennedy", "Sunset Hills", "Willow Creek", "Stonebridge", "Bayside", "Meadowbrook",
    "Clearwater", "Silver Lake", "Summit",
)  # fmt: skip


class EmailLocalParts:
    """Unique lowercase email local parts: `ava.smith`, then `ava.smith2`, `ava.smith3`, ..."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def claim(self, given: str, family: str) -> str:
        stem = f"{given}.{family}".lower().replace(" ", "").replace("'", "")
        n = self._seen.get(stem, 0) + 1
        self._seen[stem] = n
        return stem if n == 1 else f"{stem}{n}"


def district_place(seed: int) -> str:
    """The district's town: the first draw of the seed's generator."""
    return random.Random(seed).choice(PLACES)


def district_domain(seed: int) -> str:
    """The district's email domain (teachers); students are on `students.` + this domain."""
    return f"{district_place(seed).lower().replace(' ', '')}.example.org"


def school_count(students: int, schools: int | None) -> int:
    """Schools in a district: as asked, or one per ~1,000 students."""
    return schools if schools is not None else max(1, round(students / STUDENTS_PER_SCHOOL))


def school_sizes(students: int, schools: int | None) -> list[int]:
    """Students per school: spread evenly, the first schools taking the remainder."""
    n = school_count(students, schools)
    return [students // n + (1 if i < students % n else 0) for i in range(n)]


def teachers_for(school_students: int) -> int:
    """Teachers a school of this many students has (about one per 20 students)."""
    return max(1, round(school_students / STUDENTS_PER_TEACHER))


@dataclass(frozen=True)
class DistrictPerson:
    """One person of the synthetic district, as a directory knows them."""

    role: str  # "teacher" or "student"
    given_name: str
    family_name: str
    email: str
    school: int  # from 1


def district_people(
    seed: int, students: int, schools: int | None = None
) -> Iterator[DistrictPerson]:
    """Every teacher (school by school), then every student, in the order the SIS seeds them."""
    domain = district_domain(seed)
    sizes = school_sizes(students, schools)
    rng = random.Random(seed * 7919 + 1)
    local_parts = EmailLocalParts()
    for number, size in enumerate(sizes, start=1):
        for _ in range(teachers_for(size)):
            given, family = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            local = local_parts.claim(given, family)
            yield DistrictPerson("teacher", given, family, f"{local}@{domain}", number)
    for number, size in enumerate(sizes, start=1):
        for _ in range(size):
            given, family = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            local = local_parts.claim(given, family)
            yield DistrictPerson("student", given, family, f"{local}@students.{domain}", number)
