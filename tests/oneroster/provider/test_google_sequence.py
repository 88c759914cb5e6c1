"""Google's OneRoster 1.2 consumption sequence (SIS-FACTS.md steps 1-11), with plain httpx over HTTP."""

from __future__ import annotations

import uuid

import httpx

from sislink.oneroster.provider.server import running_provider

SCOPE = "https://purl.imsglobal.org/spec/or/v1p2/scope/"
ROSTER = "ims/oneroster/rostering/v1p2"
GRADEBOOK = "ims/oneroster/gradebook/v1p2"


def test_google_classroom_sequence_holds_step_by_step() -> None:
    with running_provider(profile="generic-1.2", students=120) as sis:
        root = sis.origin
        # 1. Token: client credentials by HTTP Basic, the four classroom scopes.
        scopes = " ".join(
            SCOPE + s
            for s in (
                "roster.readonly",
                "gradebook.readonly",
                "gradebook.createput",
                "gradebook.delete",
            )
        )
        response = httpx.post(
            sis.token_url,
            auth=(sis.client_id, sis.client_secret),
            data={"grant_type": "client_credentials", "scope": scopes},
        )
        assert response.status_code == 200
        token = response.json()["access_token"]
        client = httpx.Client(base_url=root, headers={"Authorization": f"Bearer {token}"})

        # 2. teachers?limit=1
        response = client.get(f"/{ROSTER}/teachers", params={"limit": 1})
        assert response.status_code == 200
        assert len(response.json()["users"]) == 1

        # 3. The teacher by email, with page size 10000: exactly one user.
        response = client.get(
            f"/{ROSTER}/teachers",
            params={"filter": f"email='{sis.teacher_email}'", "limit": 10000},
        )
        assert response.status_code == 200
        (teacher,) = response.json()["users"]
        assert teacher["email"] == sis.teacher_email and teacher["sourcedId"]

        # 4. The teacher's active classes, each with school and terms.
        response = client.get(
            f"/{ROSTER}/teachers/{teacher['sourcedId']}/classes",
            params={"limit": 10000, "filter": "status='active'"},
        )
        assert response.status_code == 200
        classes = response.json()["classes"]
        assert classes
        for klass in classes:
            assert klass["school"]["sourcedId"] and klass["terms"][0]["sourcedId"]
        klass = classes[0]

        # 5. The class's students, with email and sourcedId.
        response = client.get(
            f"/{ROSTER}/classes/{klass['sourcedId']}/students", params={"limit": 10000}
        )
        students = response.json()["users"]
        assert students and all(s["email"] and s["sourcedId"] for s in students)

        # 6. The class's categories.
        response = client.get(
            f"/{GRADEBOOK}/classes/{klass['sourcedId']}/categories", params={"limit": 10000}
        )
        assert response.status_code == 200
        category = response.json()["categories"][0]

        # 7. The term's grading periods.
        term_id = klass["terms"][0]["sourcedId"]
        response = client.get(f"/{ROSTER}/terms/{term_id}/gradingPeriods", params={"limit": 10000})
        periods = response.json()["academicSessions"]
        assert periods
        for period in periods:
            assert period["type"] == "gradingPeriod"
            assert {"sourcedId", "title", "startDate", "endDate", "schoolYear"} <= period.keys()

        # 8. PUT a lineItem with a client-chosen UUID: 201, then 201 again (or 200).
        line_item_id = str(uuid.uuid4())
        line_item = {
            "lineItem": {
                "sourcedId": line_item_id,
                "status": "active",
                "title": "Essay 1",
                "description": "First essay",
                "assignDate": "2026-09-01T00:00:00Z",
                "dueDate": "2026-09-08T00:00:00Z",
                "resultValueMin": 0,
                "resultValueMax": 100,
                "class": {"sourcedId": klass["sourcedId"]},
                "category": {"sourcedId": category["sourcedId"]},
                "school": {"sourcedId": klass["school"]["sourcedId"]},
            }
        }
        assert (
            client.put(f"/{GRADEBOOK}/lineItems/{line_item_id}", json=line_item).status_code == 201
        )
        # The same PUT again updates it: Google's notebook accepts 200 or 201; 1EdTech's
        # OpenAPI lists 201 (no body), which the generic profiles answer.
        assert (
            client.put(f"/{GRADEBOOK}/lineItems/{line_item_id}", json=line_item).status_code
            == sis.update_status
            == 201
        )

        # 9. The class's lineItems contain it; a very long title is accepted and kept.
        response = client.get(f"/{GRADEBOOK}/classes/{klass['sourcedId']}/lineItems")
        assert line_item_id in {li["sourcedId"] for li in response.json()["lineItems"]}
        line_item["lineItem"]["title"] = "T" * 5000
        response = client.put(f"/{GRADEBOOK}/lineItems/{line_item_id}", json=line_item)
        assert response.status_code in (200, 201)
        kept = client.get(f"/{GRADEBOOK}/lineItems/{line_item_id}").json()["lineItem"]["title"]
        assert len(kept) == 5000

        # 10. PUT a result: 80 fully graded; then 300 (extra credit) kept; then exempt kept.
        result_id = str(uuid.uuid4())
        result = {
            "result": {
                "sourcedId": result_id,
                "status": "active",
                "score": 80,
                "scoreStatus": "fully graded",
                "scoreDate": "2026-09-09",
                "lineItem": {"sourcedId": line_item_id},
                "student": {"sourcedId": students[0]["sourcedId"]},
            }
        }
        assert client.put(f"/{GRADEBOOK}/results/{result_id}", json=result).status_code in (
            200,
            201,
        )
        result["result"]["score"] = 300
        assert client.put(f"/{GRADEBOOK}/results/{result_id}", json=result).status_code in (
            200,
            201,
        )
        assert client.get(f"/{GRADEBOOK}/results/{result_id}").json()["result"]["score"] == 300
        result["result"]["scoreStatus"] = "exempt"
        assert client.put(f"/{GRADEBOOK}/results/{result_id}", json=result).status_code in (
            200,
            201,
        )
        assert (
            client.get(f"/{GRADEBOOK}/results/{result_id}").json()["result"]["scoreStatus"]
            == "exempt"
        )

        # 11. DELETE the result, then the lineItem: each disappears from the class-scoped GETs.
        results_url = f"/{GRADEBOOK}/classes/{klass['sourcedId']}/lineItems/{line_item_id}/results"
        assert result_id in {r["sourcedId"] for r in client.get(results_url).json()["results"]}
        assert client.delete(f"/{GRADEBOOK}/results/{result_id}").status_code in (200, 204)
        assert result_id not in {r["sourcedId"] for r in client.get(results_url).json()["results"]}
        assert client.get(f"/{GRADEBOOK}/results/{result_id}").status_code == 404
        assert client.delete(f"/{GRADEBOOK}/lineItems/{line_item_id}").status_code in (200, 204)
        response = client.get(f"/{GRADEBOOK}/classes/{klass['sourcedId']}/lineItems")
        assert line_item_id not in {li["sourcedId"] for li in response.json()["lineItems"]}
        client.close()
