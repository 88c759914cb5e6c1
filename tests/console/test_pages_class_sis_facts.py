"""The class page's "Refresh from the SIS" button reads the class's categories and grading
periods again, so a category the SIS administrator just added can be chosen at once."""

from __future__ import annotations

import re
from pathlib import Path

from console.console_world import (
    ADMIN_EMAIL,
    connect_and_authorise,
    console,
    import_roster,
    invite_and_sign_in,
)
from sislink.classroom.models import Class, utc_now
from sislink.oneroster.models import format_datetime
from sislink.oneroster.provider.server import running_provider


def test_the_refresh_button_offers_a_category_the_sis_just_added(tmp_path: Path) -> None:
    with running_provider(profile="generic-1.2", students=40) as sis, console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, sis)
        import_roster(served, admin)
        teacher = invite_and_sign_in(served, sis.teacher_email)
        listed = teacher.get("/classes")
        class_id = int(re.findall(r'href="/classes/(\d+)"', listed.text)[0])
        with served.classroom.session() as session:
            klass = session.get(Class, class_id)
            assert klass is not None and klass.sis_sourced_id is not None
            sis_class = klass.sis_sourced_id
        template = next(sis.store.iter_all("category"))
        sis.store.put(
            "category",
            {
                **template,
                "sourcedId": "cat-added",
                "title": "Lab reports",
                "metadata": {"classSourcedId": sis_class},
                "dateLastModified": format_datetime(utc_now()),
            },
        )
        page = teacher.get(f"/classes/{class_id}")
        assert 'id="refresh-sis-facts"' in page.text
        assert "Lab reports" not in teacher.get(f"/classes/{class_id}/coursework/new").text
        refreshed = teacher.post(f"/classes/{class_id}/sis-facts")
        assert refreshed.status_code == 200
        assert "Read from the SIS" in refreshed.text and "Lab reports" in refreshed.text
        assert "Lab reports" in teacher.get(f"/classes/{class_id}/coursework/new").text
