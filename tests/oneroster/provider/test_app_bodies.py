"""Collection bodies: a 1.2 page assembled from stored text equals one rebuilt from decoded records.

The provider serves a 1.2 page of whole objects by joining the records' stored JSON texts and
rooting their hrefs (`texts_body`); every other page is decoded, reshaped and re-encoded
(`records_body`). Both must give the same bytes, for every entity kind, for awkward strings, and
over HTTP for 1.1 and 1.2 with and without `fields`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sislink.oneroster.filters import parse
from sislink.oneroster.provider.app import records_body, texts_body
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.oneroster.provider.store import ENTITIES, ProviderStore
from sislink.oneroster.versions import ENTITIES as KINDS
from sislink.oneroster.versions import spec_for

# Strings a naive href rewrite would damage: leading NULs, text that reads like a stored href,
# an escaped quote before a NUL, JSON-looking text, non-ASCII.
AWKWARD = ["\x00", "\x00\x00rostering", '"\x00', "\\/rostering/v1p2/orgs/x", '"\\/', "Zoë \u2028 ☃"]


def _awkward_records() -> dict[str, list[dict[str, Any]]]:
    modified = "2025-01-01T00:00:00.000Z"
    base = {"status": "active", "dateLastModified": modified}
    return {
        "org": [
            {
                **base,
                "sourcedId": 'org-"odd"/ü\\',
                "name": AWKWARD[0],
                "type": "school",
                "identifier": AWKWARD[3],
                # A GUIDRef with only a sourcedId, as Google's consumer sends them.
                "parent": {"sourcedId": "org-district"},
                "metadata": {"href": "/rostering/v1p2/orgs/x", "notes": AWKWARD},
            }
        ],
        "user": [
            {
                **base,
                "sourcedId": "usr-awkward",
                "enabledUser": "true",
                "givenName": AWKWARD[5],
                "familyName": AWKWARD[2],
                "username": AWKWARD[1],
                "roles": [
                    {"roleType": "primary", "role": "student", "org": {"sourcedId": "org-sch-001"}},
                    {
                        "roleType": "secondary",
                        "role": "aide",
                        "org": {"sourcedId": 'org-"odd"/ü\\', "href": "http://elsewhere/x"},
                    },
                ],
                "primaryOrg": {"sourcedId": "org-sch-001", "type": "org", "href": "\x00"},
                "agents": [{"sourcedId": "stu-000001"}],
                "metadata": {"x": {"href": AWKWARD[4], "sourcedId": "not-a-ref"}},
            }
        ],
        "enrollment": [
            {
                **base,
                "sourcedId": "enr-awkward",
                "user": {"sourcedId": "usr-awkward"},
                "class": {"sourcedId": "cls-00001", "href": AWKWARD[3], "type": "class"},
                "school": {"type": "org", "sourcedId": 'org-"odd"/ü\\'},
                "role": "student",
            }
        ],
    }


@pytest.fixture(scope="module")
def store() -> Iterator[ProviderStore]:
    store = ProviderStore()
    seed_district(store, seed=5, students=60)
    for entity, records in _awkward_records().items():
        store.insert_many(entity, records)
    store.insert_many(
        "lineItem",
        [
            {
                "sourcedId": "li-1",
                "status": "active",
                "dateLastModified": "2025-01-01T00:00:00.000Z",
                "title": AWKWARD[1],
                "assignDate": "2025-09-01T00:00:00.000Z",
                "dueDate": "2025-09-02T00:00:00.000Z",
                "class": {"sourcedId": "cls-00001"},
                "school": {"sourcedId": "org-sch-001"},
                "category": {"sourcedId": "cat-00001-1"},
                "scoreScale": {"sourcedId": "ss-1"},
                "resultValueMax": 10.5,
            }
        ],
    )
    store.insert_many(
        "result",
        [
            {
                "sourcedId": "res-1",
                "status": "active",
                "dateLastModified": "2025-01-01T00:00:00.000Z",
                "lineItem": {"sourcedId": "li-1"},
                "student": {"sourcedId": "usr-awkward"},
                "scoreStatus": "exempt",
                "score": 11.25,
                "scoreDate": "2025-09-03",
                "comment": AWKWARD[0] + AWKWARD[2],
            }
        ],
    )
    store.insert_many(
        "scoreScale",
        [
            {
                "sourcedId": "ss-1",
                "status": "active",
                "dateLastModified": "2025-01-01T00:00:00.000Z",
                "title": "Letters",
                "type": "letter",
                "class": {"sourcedId": "cls-00001"},
                "scoreScaleValue": [{"itemValueLHS": "A", "itemValueRHS": "90"}],
            }
        ],
    )
    yield store
    store.close()


@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize(
    "root", ["http://127.0.0.1:8100/ims/oneroster", 'https://bücher.example/a"b/ims/oneroster/']
)
def test_a_page_from_stored_text_equals_the_page_from_decoded_records(
    store: ProviderStore, entity: str, root: str
) -> None:
    key = KINDS[entity].collection_key
    spec = spec_for("1.2")
    total = store.count(entity)
    assert total, f"the fixture holds no {entity}"
    for offset in range(0, total, 97):
        texts = store.query_text(entity, limit=97, offset=offset)
        records = store.query(entity, limit=97, offset=offset)
        assert texts.total == records.total == total
        fast = texts_body(key, texts.texts, root)
        assert fast == records_body(key, records.records, spec, entity, root, None)


def test_awkward_strings_are_served_as_they_were_stored(store: ProviderStore) -> None:
    root = "http://h/ims/oneroster"
    texts = store.query_text("user", filter=parse("sourcedId='usr-awkward'"))
    [user] = httpx.Response(200, content=texts_body("users", texts.texts, root)).json()["users"]
    assert [user["givenName"], user["familyName"], user["username"]] == [
        AWKWARD[5],
        AWKWARD[2],
        AWKWARD[1],
    ]
    assert user["metadata"] == {"x": {"href": AWKWARD[4], "sourcedId": "not-a-ref"}}
    assert user["primaryOrg"] == {
        "sourcedId": "org-sch-001",
        "type": "org",
        "href": f"{root}/rostering/v1p2/orgs/org-sch-001",
    }
    assert user["roles"][1]["org"]["href"] == f'{root}/rostering/v1p2/orgs/org-"odd"/ü\\'
    assert user["agents"][0]["href"] == f"{root}/rostering/v1p2/users/stu-000001"


# ---- over HTTP: whatever path the server takes, the body is the decoded rendering ------------


@pytest.fixture(scope="module")
def served(
    store: ProviderStore, fetch_token: Any
) -> Iterator[dict[str, tuple[RunningProvider, httpx.Client]]]:
    # A profile serves only its own version: one SIS of each version, on the same store.
    with (
        running_provider(store=store, profile="generic-1.1") as sis_1_1,
        running_provider(store=store, profile="generic-1.2") as sis_1_2,
    ):
        clients = {}
        with contextlib.ExitStack() as stack:
            for sis in (sis_1_1, sis_1_2):
                headers = {"Authorization": f"Bearer {fetch_token(sis, version=sis.version)}"}
                clients[sis.version] = (
                    sis,
                    stack.enter_context(
                        httpx.Client(base_url=sis.base_url + "/", headers=headers, timeout=30)
                    ),
                )
            yield clients


_PAGES = [
    ("users", "user", {}),
    ("users", "user", {"limit": "7", "offset": "14"}),
    ("users", "user", {"filter": "familyName~'a'", "sort": "givenName", "orderBy": "desc"}),
    ("enrollments", "enrollment", {"limit": "50", "offset": "450"}),
    ("orgs", "org", {}),
    ("classes", "class", {"limit": "5", "offset": "3"}),
    ("courses", "course", {}),
    ("academicSessions", "academicSession", {"sort": "startDate"}),
]
_FIELDS = {
    "user": {"1.1": "sourcedId,role,orgs,givenName,metadata", "1.2": "roles,sourcedId,givenName"},
    "enrollment": {"1.1": "class,user,role", "1.2": "school,sourcedId"},
    "org": {"1.1": "parent,name", "1.2": "name,parent,metadata"},
    "class": {"1.1": "terms,title", "1.2": "terms,course"},
    "course": {"1.1": "org", "1.2": "schoolYear,org"},
    "academicSession": {"1.1": "parent,children", "1.2": "children,title"},
}


@pytest.mark.parametrize("with_fields", [False, True], ids=["whole", "fields"])
@pytest.mark.parametrize("version", ["1.1", "1.2"])
@pytest.mark.parametrize(("path", "entity", "params"), _PAGES)
def test_served_pages_equal_the_decoded_rendering(
    served: dict[str, tuple[RunningProvider, httpx.Client]],
    store: ProviderStore,
    version: str,
    with_fields: bool,
    path: str,
    entity: str,
    params: dict[str, str],
) -> None:
    sis, client = served[version]
    spec = spec_for(version)
    query = dict(params)
    fields = None
    if with_fields:
        query["fields"] = _FIELDS[entity][version]
        fields = query["fields"].split(",")
    response = client.get(f"{spec.service_roots[KINDS[entity].service]}/{path}", params=query)
    assert response.status_code == 200, response.text
    sort = params.get("sort")
    if version == "1.1" and sort == "role":
        sort = "roles.role"
    page = store.query(
        entity,
        filter=parse(params["filter"]) if "filter" in params else None,
        sort=sort,
        descending=params.get("orderBy") == "desc",
        limit=int(params.get("limit", "100")),
        offset=int(params.get("offset", "0")),
    )
    assert page.records, "a page with nothing on it compares nothing"
    expected = records_body(
        KINDS[entity].collection_key, page.records, spec, entity, sis.base_url, fields
    )
    assert response.content == expected
    assert response.headers["x-total-count"] == str(page.total)
