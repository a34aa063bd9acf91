"""The report service as found: `/api/report/...`.

- `POST /api/report/generate` renders the report inside the request (REPORT_RENDER_S
  seconds of work, default 2) and answers 200 with the document; nothing is queued, stored
  or announced on NATS.
- Its NATS subscriber to `afasa.report.requested` only logs what it receives.

Settings (environment): NATS_URL (nats://nats:4222), REPORT_RENDER_S.
"""

from __future__ import annotations

import base64
import os
import time
import uuid

from afasa_stub.common import Answer, Request, Routes, log

SERVICE = "report"
FORMATS = ("pdf", "xlsx", "csv")


def render(report_type: str, fmt: str) -> bytes:
    time.sleep(float(os.environ.get("REPORT_RENDER_S", "2")))  # the blocking render
    if fmt == "csv":
        return f"report,type\nafasa,{report_type}\n".encode()
    text = f"AFASA {report_type} report"
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents 4 0 R>>endobj\n"
        + f"4 0 obj<</Length {len(stream)}>>stream\n".encode()
        + stream
        + b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def generate(request: Request) -> Answer:
    body = request.body if isinstance(request.body, dict) else {}
    fmt = str(body.get("format") or "pdf")
    report_type = str(body.get("type") or "custom")
    if fmt not in FORMATS:
        return 422, {"detail": f"format must be one of {', '.join(FORMATS)}"}
    started = time.monotonic()
    document = render(report_type, fmt)
    report_id = str(uuid.uuid4())
    log(SERVICE, f"report {report_id} rendered in {time.monotonic() - started:.1f}s")
    return 200, {
        "report_id": report_id,
        "status": "ready",
        "format": fmt,
        "size_bytes": len(document),
        "content_base64": base64.b64encode(document).decode(),
    }


def list_reports(request: Request) -> Answer:
    return 200, {"reports": []}


def get_report(request: Request) -> Answer:
    return 404, {"detail": "report not found"}


def routes() -> Routes:
    table = Routes(SERVICE)
    table.add("POST", "/api/report/generate", generate)
    table.add("GET", "/api/report/reports", list_reports)
    table.add("GET", "/api/report/reports/{report_id}", get_report)
    return table
