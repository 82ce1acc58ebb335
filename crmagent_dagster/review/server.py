"""The review page: a small Starlette app on the warehouse file, served by uvicorn (`crmagent review`).

Each request opens its own DuckDB connection and closes it at once: a pipeline run holds DuckDB's single write lock
for its whole length, so the page waits a short while for it and then says so (503) instead of hanging.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from crmagent_dagster.resources import connect_waiting
from crmagent_dagster.review import items as read_model
from crmagent_dagster.review import store
from crmagent_dagster.review.items import ReviewItem
from crmagent_dagster.review.store import EditBlocked, RecordedDecision, ReviewDecision, ReviewError

HERE = Path(__file__).resolve().parent
BUSY_MESSAGE = "a pipeline run holds the warehouse; try again in a minute"
_FIELDS = ("month", "segment", "aggregate_id", "decision", "reviewer", "note", "edited_title", "edited_body")
_REQUIRED = ("month", "segment", "aggregate_id", "decision", "reviewer")
# The names this machine answers to. A page on another site that rebinds its own name to 127.0.0.1 sends that name
# as Host, and is refused; `crmagent review --allowed-host` adds the names a team serves the page under.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# Scripts and styles from this page only, no framing, no MIME sniffing.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class WarehouseBusy(RuntimeError):
    """Another process held DuckDB's write lock for longer than the page waits."""


@dataclass(frozen=True)
class Settings:
    database: str
    default_month: str | None
    lock_timeout_s: float


@contextmanager
def connection(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short-lived read-write connection (a read-only one would clash with a writer in this process)."""
    try:
        conn = connect_waiting(settings.database, timeout_s=settings.lock_timeout_s)
    except duckdb.IOException as e:
        if "lock" in str(e).lower():
            raise WarehouseBusy(BUSY_MESSAGE) from e
        raise
    try:
        yield conn
    finally:
        conn.close()


def _json(value: Any, status_code: int = 200) -> Response:
    return Response(read_model.dumps(value), status_code=status_code, media_type="application/json")


def _has_warehouse(settings: Settings) -> bool:
    """Reading must not create an empty warehouse file where none is."""
    return Path(settings.database).exists()


def _months(settings: Settings) -> dict[str, Any]:
    found: list[tuple[str, list[str]]] = []
    if _has_warehouse(settings):
        with connection(settings) as conn:
            found = read_model.months(conn)
    listed = [m for m, _ in found]
    default = settings.default_month if settings.default_month in listed else (listed[0] if listed else None)
    return {"months": [{"month": m, "segments": segs} for m, segs in found], "default": default}


def _items(settings: Settings, month: str, segment: str | None, status: str | None) -> dict[str, Any]:
    everything: list[ReviewItem] = []
    if _has_warehouse(settings):
        with connection(settings) as conn:
            everything = read_model.load_items(conn, month, segment)
    return {"month": month, "segment": segment, "status": status or "all",
            "counts": read_model.count_statuses(everything), "items": read_model.filter_status(everything, status)}


def _record(settings: Settings, d: ReviewDecision) -> tuple[RecordedDecision, ReviewItem | None]:
    if not _has_warehouse(settings):
        raise ReviewError(f"no warehouse at {settings.database}")
    with connection(settings) as conn:
        recorded = store.record(conn, d)
        item = next((i for i in read_model.load_items(conn, d.month, d.segment) if i.aggregate_id == d.aggregate_id),
                    None)
    return recorded, item


def _decision_from(body: Any) -> ReviewDecision:
    """The posted JSON as a decision; a missing or non-text field is the client's error (400)."""
    if not isinstance(body, dict):
        raise ReviewError("the body must be a JSON object")
    for name in _FIELDS:
        if body.get(name) is not None and not isinstance(body[name], str):
            raise ReviewError(f"{name} must be text")
    missing = [name for name in _REQUIRED if not (body.get(name) or "").strip()]
    if missing:
        raise ReviewError(f"missing {', '.join(missing)}")
    return ReviewDecision(**{name: body.get(name) for name in _FIELDS}, source="web")


class _SecurityHeaders:
    """Adds SECURITY_HEADERS to every response (a plain ASGI middleware: it works on streamed responses too)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                                        if k.encode() not in present)]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


def foreign_origin(origin: str | None, allowed_hosts: tuple[str, ...]) -> bool:
    """A post whose Origin names a site other than this page's (a missing Origin is a script or curl: allowed)."""
    if not origin:
        return False
    host = urlsplit(origin).hostname
    return origin == "null" or host is None or host not in allowed_hosts


def create_app(database: str, default_month: str | None = None, lock_timeout_s: float = 20.0,
               allowed_hosts: tuple[str, ...] = ()) -> Starlette:
    """The review app on one warehouse file. `default_month`: the month the page opens on (else the newest).
    `allowed_hosts`: names besides this machine's (LOCAL_HOSTS) the page may be reached under."""
    settings = Settings(database, default_month, lock_timeout_s)
    hosts = tuple(dict.fromkeys((*LOCAL_HOSTS, *allowed_hosts)))
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    async def page(request: Request) -> Response:
        return templates.TemplateResponse(request, "review.html", {"default_month": default_month or ""})

    async def months(request: Request) -> Response:
        return _json(await run_in_threadpool(_months, settings))

    async def list_items(request: Request) -> Response:
        q = request.query_params
        month = q.get("month") or (await run_in_threadpool(_months, settings))["default"]
        if not month:
            return _json({"month": None, "segment": None, "status": "all",
                          "counts": read_model.count_statuses([]), "items": []})
        status = q.get("status") or "all"
        if status != "all" and status not in read_model.REVIEW_STATUSES:
            return _json({"error": f"status must be one of {', '.join(read_model.REVIEW_STATUSES)} or all"}, 400)
        return _json(await run_in_threadpool(_items, settings, month, q.get("segment") or None, status))

    async def post_decision(request: Request) -> Response:
        if foreign_origin(request.headers.get("origin"), hosts):
            return _json({"error": "decisions are recorded from the review page only (foreign Origin)"}, 403)
        # JSON only: a form or text/plain post from another site's page cannot record a decision here.
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _json({"error": "send the decision as application/json"}, 415)
        try:
            body = await request.json()
        except ValueError:
            return _json({"error": "the body is not valid JSON"}, 400)
        try:
            recorded, item = await run_in_threadpool(_record, settings, _decision_from(body))
        except EditBlocked as e:
            return _json({"error": str(e), "checks": [asdict(c) for c in e.checks]}, 422)
        except ReviewError as e:
            return _json({"error": str(e)}, 400)
        return _json({"decision": recorded, "item": item})

    async def busy(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(BUSY_MESSAGE, status_code=503, headers={"Retry-After": "60"})

    return Starlette(
        routes=[Route("/", page), Route("/api/months", months), Route("/api/items", list_items),
                Route("/api/decisions", post_decision, methods=["POST"]),
                Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")],
        exception_handlers={WarehouseBusy: busy},
        middleware=[Middleware(_SecurityHeaders),
                    Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))],
    )
