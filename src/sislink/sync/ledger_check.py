"""The ledger checked against the SIS: what sislink remembers sending for a class, compared with
the lineItems and results the SIS has for it now. An entry the SIS no longer has (lost, or
deleted there by someone: gone from its lists, or listed as `tobedeleted`) is marked to be sent
again, and the class is planned again at its next export. Run when a class's SIS facts are
refreshed on demand (an export of an unchanged class asks the SIS nothing, so this is where
what only the SIS knows is found), and after an export whose result the SIS refused under a
lineItem the ledger says it has (sislink.sync.mark_export).
"""

from __future__ import annotations

from sqlalchemy import delete, select

from sislink.classroom import Classroom
from sislink.classroom.models import ClassExportState, ExportKind, ExportRecord, utc_now
from sislink.classroom.services import connections
from sislink.oneroster.consumer import OneRosterClient
from sislink.oneroster.consumer.exceptions import StatusError
from sislink.sync.identity import class_identity

LOST = "lost_in_sis"


async def check_ledger_against_sis(
    classroom: Classroom, client: OneRosterClient, class_id: int
) -> int | None:
    """Mark the class's ledger entries the SIS does not have to be sent again; how many. None
    when the SIS does not list a class's lineItems or results (it answers 404, or refuses this
    client: then nothing is changed, and the refresh of the facts stands)."""
    with classroom.session() as session:
        link = connections.class_link(session, class_id)
        connection = connections.current_connection(session)
        if link is None or connection is None:
            return None
        sis_class = link.sis_class_sourced_id
        scope = class_identity(connection.partner, sis_class)
    # Only what the SIS lists as active: a record listed as `tobedeleted` was deleted there
    # (OneRoster keeps listing it so that consumers learn of the deletion). A deleted
    # lineItem's results are taken as gone with it: sent again, to the same ids.
    try:
        line_items = {
            li.sourced_id
            for li in await client.line_items_for_class(sis_class)
            if li.status == "active"
        }
        results: set[str] = set()
        for line_item in sorted(line_items):
            results.update(
                r.sourced_id
                for r in await client.results_for_line_item(sis_class, line_item)
                if r.status == "active"
            )
    except StatusError:
        return None
    lost = 0
    with classroom.transaction() as session:
        for record in session.scalars(
            select(ExportRecord).where(ExportRecord.sis_identity == scope)
        ):
            has = line_items if record.kind == ExportKind.LINE_ITEM else results
            if record.sis_sourced_id in has or record.content_hash is None:
                continue
            if record.last_status == "deleted":
                continue
            record.content_hash = None  # send it again
            record.last_status = LOST
            record.last_message = "The SIS no longer had it when the ledger was checked."
            record.updated_at = utc_now()
            lost += 1
        # The class's next export plans again (it may have lost nothing, but its facts are new).
        session.execute(delete(ClassExportState).where(ClassExportState.class_id == class_id))
    return lost
