"""The local Classroom's domain directory: the built-in SIS's teachers and students by email
(from the same seed, through `sislink.seeddata`), a domain administrator, and a few accounts
that are not in the domain or cannot use Classroom, to be refused as Google refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sislink.seeddata import district_domain, district_people


@dataclass(frozen=True)
class User:
    id: str  # Google's numeric user id, as a string
    email: str
    given_name: str
    family_name: str
    role: str  # "admin", "teacher", "student", "outsider"
    in_domain: bool
    classroom_enabled: bool = True

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def profile(self, *, with_email: bool) -> dict[str, object]:
        """A UserProfile; the email only for callers holding classroom.profile.emails."""
        found: dict[str, object] = {
            "id": self.id,
            "name": {
                "givenName": self.given_name,
                "familyName": self.family_name,
                "fullName": f"{self.given_name} {self.family_name}",
            },
        }
        if with_email:
            found["emailAddress"] = self.email
        if self.role in ("teacher", "admin"):
            found["permissions"] = [{"permission": "CREATE_COURSE"}]
            found["verifiedTeacher"] = self.role == "teacher"
        return found


class Directory:
    """Users by id and by email (lowercase)."""

    def __init__(self, domain: str, users: list[User]) -> None:
        self.domain = domain
        self.users = users
        self.by_id = {user.id: user for user in users}
        self.by_email = {user.email.lower(): user for user in users}

    def find(self, key: str) -> User | None:
        """A user by numeric id or email."""
        return self.by_id.get(key) or self.by_email.get(key.strip().lower())

    def in_domain(self, email: str) -> bool:
        host = email.rpartition("@")[2].lower()
        return host == self.domain or host.endswith("." + self.domain)

    @property
    def admin(self) -> User:
        return next(user for user in self.users if user.is_admin)

    @property
    def first_teacher(self) -> User:
        return next(user for user in self.users if user.role == "teacher")


def seeded_directory(seed: int, students: int, schools: int | None = None) -> Directory:
    """The district of `sislink sis serve --seed SEED --students N`, plus the extra accounts."""
    domain = district_domain(seed)
    users: list[User] = []

    def add(email: str, given: str, family: str, role: str, **extra: bool) -> None:
        number = 100_000_000_000_000_000_000 + len(users) + 1
        in_domain = extra.pop("in_domain", True)
        users.append(User(str(number), email, given, family, role, in_domain, **extra))

    add(f"admin@{domain}", "Dana", "Admin", "admin")
    for person in district_people(seed, students, schools):
        add(person.email, person.given_name, person.family_name, person.role)
    # Not in the domain: a Google account elsewhere (adding it is @UserInIllegalDomain).
    add("visitor@elsewhere.example.net", "Val", "Visitor", "outsider", in_domain=False)
    add("guest.teacher@gmail.example.com", "Gus", "Guest", "outsider", in_domain=False)
    # In the domain, but Classroom is turned off for them (@ClassroomApiDisabled).
    add(f"no.classroom@{domain}", "Nell", "Offline", "teacher", classroom_enabled=False)
    return Directory(domain, users)
