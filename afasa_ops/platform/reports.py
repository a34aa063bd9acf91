"""Reports: the request (queued row + event in one transaction), reads for the API, and the
worker's side: claim, render (csv/xlsx/pdf, streamed from the database), mark ready once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afasa_ops.errors import UsageError
from afasa_ops.platform import events
from afasa_ops.platform.db import as_uuid, tenant_transaction
from afasa_ops.platform.outbox import enqueue
from afasa_ops.platform.ranges import bound_problem, readable

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

PRODUCER = "afasa-ops"
FORMATS = ("pdf", "xlsx", "csv")
REPORT_TYPES = ("daily", "weekly", "monthly", "custom")
CONTENT_TYPES = {
    "csv": "text/csv",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# A PDF is read by people: past this many detail rows per section it says how many it left out.
PDF_MAX_ROWS = 2000
FETCH_ROWS = 5000


class ReportRequestError(UsageError):
    """A report request with a bad format or range."""


@dataclass(frozen=True)
class ReportView:
    id: uuid.UUID
    tenant_id: uuid.UUID
    format: str
    report_type: str | None
    range_from: datetime | None  # None: the stored value cannot be read back (see ranges.py)
    range_to: datetime | None
    status: str
    s3_key: str | None
    error: str | None
    attempts: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    requested_by: str | None
    correlation_id: str | None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in asdict(self).items():
            out[k] = (
                str(v)
                if isinstance(v, uuid.UUID)
                else v.isoformat()
                if isinstance(v, datetime)
                else v
            )
        return out


# range_from/range_to are read through a guard: a row stored with a value no reader can hold
# (before ranges were bounded) reads as NULL instead of failing the whole list.
_COLS = (
    f"id, tenant_id, format, report_type, {readable('range_from')}, {readable('range_to')}, "
    "status, s3_key, error, attempts, created_at, started_at, finished_at, requested_by, "
    "correlation_id"
)


def tenant_prefix(tenant_id: uuid.UUID | str) -> str:
    return f"tenant/{tenant_id}/"


def object_key(tenant_id: uuid.UUID | str, report_id: uuid.UUID | str, fmt: str) -> str:
    return f"{tenant_prefix(tenant_id)}reports/{report_id}.{fmt}"


def request_report(
    db: Engine,
    tenant_id: uuid.UUID | str,
    range_from: datetime,
    range_to: datetime,
    fmt: str,
    report_type: str = "custom",
    actor: str | None = None,
    correlation_id: str | None = None,
) -> uuid.UUID:
    from sqlalchemy import text

    if fmt not in FORMATS:
        raise ReportRequestError(f"report format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if report_type not in REPORT_TYPES:
        raise ReportRequestError(
            f"report type {report_type!r}: expected one of {', '.join(REPORT_TYPES)}"
        )
    if range_from.tzinfo is None or range_to.tzinfo is None:
        raise ReportRequestError("report range: give timestamps with a time zone")
    if range_to <= range_from:
        raise ReportRequestError(
            f"report range: range_to {range_to.isoformat()} is not after range_from "
            f"{range_from.isoformat()}"
        )
    for name, value in (("range_from", range_from), ("range_to", range_to)):
        problem = bound_problem(value)
        if problem is not None:
            raise ReportRequestError(f"report range: {name} {problem}")
    tid = str(as_uuid(tenant_id))
    corr = correlation_id or str(uuid.uuid4())
    with tenant_transaction(db, tid) as conn:
        report_id = conn.execute(
            text(
                "INSERT INTO reports (tenant_id, format, report_type, range_from, range_to, "
                "status, requested_by, correlation_id) VALUES (:t, :f, :rt, :a, :b, 'queued', "
                ":by, :c) RETURNING id"
            ),
            {
                "t": tid,
                "f": fmt,
                "rt": report_type,
                "a": range_from,
                "b": range_to,
                "by": actor,
                "c": corr,
            },
        ).scalar_one()
        enqueue(
            conn,
            events.new_event(
                events.REPORT_REQUESTED,
                tid,
                {"report_id": str(report_id), "format": fmt, "report_type": report_type},
                producer=PRODUCER,
                correlation_id=corr,
            ),
        )
    return as_uuid(report_id)


def _view(conn: Connection, report_id: uuid.UUID | str, *, lock: bool = False) -> ReportView | None:
    from sqlalchemy import text

    try:
        rid = as_uuid(report_id)
    except ValueError:
        return None
    sql = f"SELECT {_COLS} FROM reports WHERE id = :r" + (" FOR UPDATE" if lock else "")
    row = conn.execute(text(sql), {"r": rid}).first()
    return ReportView(*row) if row else None


def get_report(
    db: Engine, tenant_id: uuid.UUID | str, report_id: uuid.UUID | str
) -> ReportView | None:
    with tenant_transaction(db, tenant_id) as conn:
        return _view(conn, report_id)


def list_reports(db: Engine, tenant_id: uuid.UUID | str, limit: int = 100) -> list[ReportView]:
    from sqlalchemy import text

    with tenant_transaction(db, tenant_id) as conn:
        rows = conn.execute(
            text(f"SELECT {_COLS} FROM reports ORDER BY created_at DESC, id LIMIT :n"),
            {"n": limit},
        ).all()
    return [ReportView(*r) for r in rows]


# --- the worker's side ---------------------------------------------------------------------


# A report in one of these states is decided: no delivery, late or repeated, changes it.
FINAL_STATUSES = ("ready", "failed")


def claim(
    db: Engine,
    tenant_id: uuid.UUID | str,
    report_id: uuid.UUID | str,
    *,
    count_attempt: bool = True,
) -> ReportView | None:
    """Mark the report processing (and count the attempt, unless this resumes one an outage
    interrupted). Returns it as it was before, so a ready or failed report is seen as decided
    and skipped; None when this tenant cannot see it."""
    from sqlalchemy import text

    with tenant_transaction(db, tenant_id) as conn:
        view = _view(conn, report_id, lock=True)
        if view is None or view.status in FINAL_STATUSES:
            return view
        conn.execute(
            text(
                "UPDATE reports SET status = 'processing', started_at = now(), "
                "attempts = attempts + :n, updated_at = now() WHERE id = :r"
            ),
            {"r": view.id, "n": 1 if count_attempt else 0},
        )
    return view


def release(db: Engine, tenant_id: uuid.UUID | str, report_id: uuid.UUID | str) -> bool:
    """Shutdown abandoned the attempt: the report waits `queued` for the next delivery."""
    from sqlalchemy import text

    try:
        rid = as_uuid(report_id)
    except ValueError:
        return False
    with tenant_transaction(db, tenant_id) as conn:
        done = conn.execute(
            text(
                "UPDATE reports SET status = 'queued', updated_at = now() "
                "WHERE id = :r AND status = 'processing' RETURNING id"
            ),
            {"r": rid},
        ).first()
    return done is not None


def mark_ready(
    db: Engine,
    tenant_id: uuid.UUID | str,
    report: ReportView,
    s3_key: str,
    producer: str = PRODUCER,
) -> bool:
    """ready + s3_key + the ready event, once: False when another delivery got there first or
    the report was failed for good meanwhile (a failed report never turns ready)."""
    from sqlalchemy import text

    with tenant_transaction(db, tenant_id) as conn:
        done = conn.execute(
            text(
                "UPDATE reports SET status = 'ready', s3_key = :k, error = NULL, "
                "finished_at = now(), updated_at = now() "
                "WHERE id = :r AND status NOT IN ('ready', 'failed') RETURNING id"
            ),
            {"k": s3_key, "r": report.id},
        ).first()
        if done is None:
            return False
        enqueue(
            conn,
            events.new_event(
                events.REPORT_READY,
                str(report.tenant_id),
                {"report_id": str(report.id), "s3_key": s3_key, "format": report.format},
                producer=producer,
                correlation_id=report.correlation_id,
                event_id=events.derived_event_id("report.ready", report.id),
            ),
        )
    return True


def record_failure(
    db: Engine, tenant_id: uuid.UUID | str, report_id: uuid.UUID | str, error: str, *, final: bool
) -> None:
    """Keep the error; a final failure ends the report `failed`, otherwise it waits queued for
    its retry. A decided (ready or failed) report is never changed."""
    from sqlalchemy import text

    try:
        rid = as_uuid(report_id)
    except ValueError:
        return
    with tenant_transaction(db, tenant_id) as conn:
        conn.execute(
            text(
                "UPDATE reports SET status = :s, error = :e, updated_at = now(), "
                "finished_at = CASE WHEN :final THEN now() ELSE finished_at END "
                "WHERE id = :r AND status NOT IN ('ready', 'failed')"
            ),
            {"s": "failed" if final else "queued", "e": error[:4000], "final": final, "r": rid},
        )


# --- rendering -----------------------------------------------------------------------------

CSV_HEADER = ["section", "id", "time", "label", "value", "detail"]

# One query per section, all with the same six columns, scoped by RLS (the transaction's
# app.tenant_id) and by the report's range: [range_from, range_to).
SECTIONS: list[tuple[str, str]] = [
    (
        "detections",
        "SELECT 'detection', id::text, detected_at, label, confidence::text, snapshot_id::text "
        "FROM detections WHERE detected_at >= {a} AND detected_at < {b} ORDER BY detected_at, id",
    ),
    (
        "assessments",
        "SELECT 'assessment', id::text, created_at, severity, NULL::text, summary "
        "FROM assessments WHERE created_at >= {a} AND created_at < {b} ORDER BY created_at, id",
    ),
    (
        "tasks",
        "SELECT 'task', id::text, created_at, title, status, due_at::text "
        "FROM tasks WHERE created_at >= {a} AND created_at < {b} ORDER BY created_at, id",
    ),
    (
        "snapshot_counts",
        "SELECT 'snapshot_count', NULL::text, date_trunc('day', captured_at), "
        "camera_id::text, count(*)::text, NULL::text FROM snapshots "
        "WHERE captured_at >= {a} AND captured_at < {b} GROUP BY 3, 4 ORDER BY 3, 4",
    ),
    (
        "devices",
        "SELECT 'device', id::text, last_seen_at, name, "
        "CASE WHEN desired_enabled THEN 'enabled' WHEN desired_enabled = false THEN 'disabled' END, "
        "provider || ':' || external_id FROM devices ORDER BY provider, external_id",
    ),
]


def _section_sql(sql: str, report: ReportView) -> str:
    from psycopg import sql as psql

    a = psql.Literal(report.range_from).as_string(None)
    b = psql.Literal(report.range_to).as_string(None)
    return sql.format(a=a, b=b)


def unreadable_range(report: ReportView) -> str | None:
    """Why a report cannot be rendered from its stored range, or None."""
    if report.range_from is None or report.range_to is None:
        return (
            f"report {report.id}: its stored range is outside what can be read back; "
            "request a new report with a range inside 0001-01-03..9999-12-29"
        )
    return None


def render(db: Engine, report: ReportView, out: Path) -> Path:
    """Write the report file from the tenant's data, streaming rows (bounded memory)."""
    problem = unreadable_range(report)
    if problem is not None:
        raise ReportRequestError(problem)
    with tenant_transaction(db, report.tenant_id) as conn:
        if report.format == "csv":
            _render_csv(conn, report, out)
        elif report.format == "xlsx":
            _render_xlsx(conn, report, out)
        elif report.format == "pdf":
            _render_pdf(conn, report, out)
        else:
            raise ReportRequestError(f"report {report.id}: unknown format {report.format!r}")
    return out


def _render_csv(conn: Connection, report: ReportView, out: Path) -> None:
    # COPY (query) TO STDOUT streams the rows as CSV in chunks straight from the server: the
    # fastest bounded-memory path, and RLS applies to the query like any SELECT.
    raw = conn.connection.driver_connection
    assert raw is not None
    with out.open("wb") as fh:
        fh.write((",".join(CSV_HEADER) + "\n").encode())
        with raw.cursor() as cur:
            for _, sql in SECTIONS:
                copy_sql = f"COPY ({_section_sql(sql, report)}) TO STDOUT WITH (FORMAT csv)"
                with cur.copy(copy_sql) as copy:
                    for chunk in copy:
                        fh.write(chunk)


def _rows(conn: Connection, sql: str, report: ReportView) -> Iterator[tuple[Any, ...]]:
    """Rows through a server-side cursor, FETCH_ROWS at a time."""
    from sqlalchemy import text

    result = conn.execution_options(stream_results=True, yield_per=FETCH_ROWS).execute(
        text(_section_sql(sql, report).replace(":", r"\:"))
    )
    for row in result:
        yield tuple(row)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value  # xlsx has no zones
    return value


# Excel's sheet limit is 1,048,576 rows: a longer section continues on "<name> (2)", ...
XLSX_MAX_ROWS = 1_048_576


def _render_xlsx(conn: Connection, report: ReportView, out: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)  # rows go to disk as they are appended
    for name, sql in SECTIONS:
        part, used = 1, XLSX_MAX_ROWS  # forces a first sheet
        ws = None
        for row in _rows(conn, sql, report):
            if used >= XLSX_MAX_ROWS:
                ws = wb.create_sheet(title=name if part == 1 else f"{name} ({part})")
                ws.append(CSV_HEADER[1:])
                part, used = part + 1, 1
            assert ws is not None
            ws.append([_cell(v) for v in row[1:]])
            used += 1
        if ws is None:  # an empty section still gets its sheet and header
            wb.create_sheet(title=name).append(CSV_HEADER[1:])
    wb.save(out)


def _render_pdf(conn: Connection, report: ReportView, out: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    canvas = Canvas(str(out), pagesize=A4)
    _width, height = A4
    y = height - 50

    def line(text: str, size: int = 8) -> None:
        nonlocal y
        if y < 40:
            canvas.showPage()
            y = height - 50
        canvas.setFont("Helvetica", size)
        canvas.drawString(40, y, text[:140])
        y -= size + 4

    line(f"AFASA report {report.id}", 14)
    line(f"Tenant {report.tenant_id}   type {report.report_type or 'custom'}", 9)
    assert report.range_from is not None and report.range_to is not None  # render() checked
    line(f"Range {report.range_from.isoformat()} to {report.range_to.isoformat()}", 9)
    for name, sql in SECTIONS:
        y -= 6
        line(name.replace("_", " ").title(), 11)
        count = 0
        for row in _rows(conn, sql, report):
            count += 1
            if count <= PDF_MAX_ROWS:
                line("  ".join("" if v is None else str(v) for v in row[1:]))
        if count > PDF_MAX_ROWS:
            line(f"... {count - PDF_MAX_ROWS} more rows (use csv or xlsx for all rows)", 9)
        line(f"{count} rows", 9)
    canvas.save()


def render_to_storage(
    db: Engine,
    report: ReportView,
    storage: Any,
    workdir: Path,
    on_progress: Callable[[], None] | None = None,
) -> str:
    """Render into a private scratch file (platform/scratch.py), upload under the report's
    fixed key, return the key. The scratch file is gone afterwards, whatever happened."""
    from afasa_ops.platform.scratch import scratch_file

    key = object_key(report.tenant_id, report.id, report.format)
    with scratch_file(workdir, f"{report.id}.{report.format}") as tmp:
        render(db, report, tmp)
        if on_progress is not None:
            on_progress()
        storage.put_file(key, tmp, CONTENT_TYPES[report.format])
    return key
