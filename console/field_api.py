"""`tafang serve`: the HTTP API the officers' app (执法通) and pushing feeds call (Starlette).

Every request but `GET /health` is signed (console/field_auth.py) and idempotent by its
request id (store/field.py). The officer acts as themselves (`Actor(code, field=True)`)
through `Store.apply` (`Store.act` without reading the case back), so the moves, their
states and their permission checks are the console's; a refusal is a 4xx with a JSON reason
and writes nothing but the kept answer.

    POST /cases/{id}/confirm   {}                                    签收
    POST /cases/{id}/arrive    {"at"?, "lat"?, "lon"?}               到场 (clock stops at "at")
    POST /cases/{id}/handle    {"at"?, "note"?, "photos"?: [url]}    处置反馈
    POST /cases/{id}/support   {"reason", "lat"?, "lon"?}            请求支援
    POST /self-found           {"title", "found_at", "handled_at", …} 自查自处
    POST /intake               one DESIGN §4 record, an array of them, or JSON Lines
    GET  /health               200 {"ok": true} (unsigned)

`at` is ISO 8601 (a time without an offset is local) or Unix seconds; absent = now.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tafang.console.field_auth import Signed, Unsigned, check
from tafang.store import field
from tafang.store.cases import Actor, NotFound, Refused, Store, utcnow
from tafang.store.intake import Rejected
from tafang.store.intake.limits import MAX_DEPTH
from tafang.store.intake.lines import parse_json

MAX_BODY = 1 << 20  # an action's body; intake may send up to MAX_INTAKE
MAX_INTAKE = 16 << 20
FIELD_ACTIONS = ("confirm", "arrive", "handle", "support")
MAX_PHOTOS = 20
STATUS_OF = {
    "not_found": 404,
    "role": 403,
    "not_yours": 403,
    "not_on_roster": 403,
    "separation": 403,
    "illegal": 409,
    "conflict": 409,
}
"""HTTP status of a store refusal by its code; any other refusal is 422."""

Work = Callable[[Signed, bytes, str], tuple[int, dict[str, Any], bool]]
"""(signed request, body, "METHOD path") -> (status, answer, whether its row was claimed)."""


class Bad(Exception):
    """A request the API cannot read (400), with the reason."""


def make_app(
    store: Store,
    *,
    key_of: Callable[[str], str | None] | None = None,
    clock: Callable[[], float] = time.time,
    terminal: str | None = None,
) -> Starlette:
    """The field API over one store. `key_of`: caller -> key (default: the secret named by
    `field_auth.key_name`); `clock`: the replay window's clock."""
    api = _Api(store, key_of or _secret_keys(), clock, terminal or f"field@{socket.gethostname()}")
    routes = [
        Route("/health", api.health, methods=["GET"]),
        Route("/cases/{case_id:int}/{action}", api.move, methods=["POST"]),
        Route("/self-found", api.self_found, methods=["POST"]),
        Route("/intake", api.intake, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _secret_keys() -> Callable[[str], str | None]:
    from tafang.console.field_auth import key_name
    from tafang.sla.notify.settings import read_secret

    @lru_cache(maxsize=4096)
    def key_of(caller: str) -> str | None:
        return read_secret(key_name(caller))

    return key_of


def _json(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def refusal(e: Refused) -> tuple[int, dict[str, Any]]:
    """A store refusal as the API answers it."""
    status = 404 if isinstance(e, NotFound) else STATUS_OF.get(e.code, 422)
    return status, {"ok": False, "reason": str(e), "code": e.code or "refused"}


def case_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """The case as an answer shows it (from its row, as the move's transaction wrote it)."""

    def t(v: datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {
        "id": row["id"],
        "status": row["status"],
        "version": row["version"],
        "assignee": row["assignee"],
        "self_found": bool(row["self_found"]),
        "dispatched_at": t(row["dispatched_at"]),
        "arrived_at": t(row["arrived_at"]),
        "handled_at": t(row["handled_at"]),
    }


class _Api:
    def __init__(
        self,
        store: Store,
        key_of: Callable[[str], str | None],
        clock: Callable[[], float],
        terminal: str,
    ) -> None:
        self.store = store
        self.key_of = key_of
        self.clock = clock
        self.terminal = terminal
        self.tz = ZoneInfo(store.d.timezone)
        # The store's work runs in this one thread, one request after another: every write
        # takes the record's head lock anyway, and on SQLite writer threads of one process
        # competing for it sleep in the busy handler (tens of ms: the p99 at 200/s).
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="tafang-serve-store")

    async def health(self, request: Request) -> Response:
        return _json(200, {"ok": True})

    async def move(self, request: Request) -> Response:
        action = request.path_params["action"]
        case_id = request.path_params["case_id"]
        if action not in FIELD_ACTIONS:
            return _json(404, {"ok": False, "reason": f"no action {action[:40]!r}", "code": "path"})
        return await self._signed(request, MAX_BODY, self._move_work(case_id, action))

    async def self_found(self, request: Request) -> Response:
        return await self._signed(request, MAX_BODY, self._self_found_work)

    async def intake(self, request: Request) -> Response:
        return await self._signed(request, MAX_INTAKE, self._intake_work, look_first=True)

    # ---- the signed, idempotent envelope ------------------------------------------------------
    async def _signed(
        self, request: Request, limit: int, work: Work, look_first: bool = False
    ) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return _json(413, {"ok": False, "reason": f"body over {limit} bytes", "code": "size"})
        body = await request.body()
        if len(body) > limit:
            return _json(413, {"ok": False, "reason": f"body over {limit} bytes", "code": "size"})
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            signed = check(
                dict(request.headers), request.method, path, body, self.clock(), self.key_of
            )
        except Unsigned as e:
            return _json(401, {"ok": False, "reason": str(e), "code": "signature"})
        where = f"{request.method} {path}"
        once = partial(self._once, signed, body, where, work, look_first)
        status, answer = await asyncio.get_running_loop().run_in_executor(self.worker, once)
        return Response(answer, status_code=status, media_type="application/json")

    def _once(
        self, signed: Signed, body: bytes, where: str, work: Work, look_first: bool
    ) -> tuple[int, str]:
        """Do the work and keep its answer, or answer from the request id's row. A move's
        row is written in its transaction, so a retry is found there when its own write of
        the row fails (everything it did rolled back): no read before the first try.
        `look_first`: read the row before (intake, whose writes are not in one transaction
        with it). Runs in a worker thread (the store is synchronous)."""
        seen = self._seen(signed, where) if look_first else None
        if seen is not None:
            return seen
        try:
            with field.duplicate_guard():
                status, answer, claimed = work(signed, body, where)
        except field.DuplicateRequest:  # the same id, done by a concurrent retry just now
            seen = self._seen(signed, where)
            if seen is None:
                raise
            return seen
        if claimed:  # kept with the change, in its transaction
            return status, answer["text"]
        text = json.dumps(answer, ensure_ascii=False)
        method, path = where.split(" ", 1)
        field.keep_refusal(self.store, signed.caller, signed.request_id, method, path, status, text)
        # A concurrent retry may have done it first (then this refusal was not kept): the
        # id's row is the answer either way.
        return self._seen(signed, where) or (status, text)

    def _seen(self, signed: Signed, where: str) -> tuple[int, str] | None:
        found = field.answered(self.store, signed.caller, signed.request_id)
        if found is None:
            return None
        done, method, path = found
        if f"{method} {path}" != where:
            reason = f"request id {signed.request_id} was used for {method} {path}"
            return 422, json.dumps({"ok": False, "reason": reason, "code": "request_id"})
        if done.answer is None:  # done; its answer was not kept (a crash in between)
            return 200, json.dumps({"ok": True, "replayed": True})
        return done.status, done.answer

    def _actor(self, signed: Signed) -> Actor:
        return Actor(signed.caller, self.terminal, field=True)

    def _claim(self, signed: Signed, where: str, status: int) -> field.Claim:
        """The request's row and answer, for the transaction of what it does."""
        method, path = where.split(" ", 1)

        def answer_of(row: Mapping[str, Any]) -> str:
            return json.dumps({"ok": True, "case": case_json(row)}, ensure_ascii=False)

        return field.Claim(signed.caller, signed.request_id, method, path, status, answer_of)

    # ---- the works ----------------------------------------------------------------------------
    def _move_work(self, case_id: int, action: str) -> Work:
        def work(signed: Signed, body: bytes, where: str) -> tuple[int, dict[str, Any], bool]:
            if signed.caller.startswith("feed:"):
                reason = "a feed may only push intake"
                return 403, {"ok": False, "reason": reason, "code": "role"}, False
            try:
                data = _object(body)
                at, reason, detail = self._report(action, data)
                actor = self._actor(signed)
                now = utcnow()
                claim = self._claim(signed, where, 200)
                self.store.apply(
                    case_id,
                    action,
                    actor,
                    reason=reason,
                    now=now,
                    at=at,
                    also=lambda conn, head: claim(conn, head, case_id),
                    detail=detail,
                )
            except Bad as e:
                return 400, {"ok": False, "reason": str(e), "code": "bad_request"}, False
            except Refused as e:
                status, answer = refusal(e)
                return status, answer, False
            return 200, {"text": claim.answer}, True

        return work

    def _report(
        self, action: str, data: dict[str, Any]
    ) -> tuple[datetime | None, str, dict[str, Any]]:
        """(reported time, reason for the record, further detail) of an action's body."""
        at = _time(data.get("at"), self.tz, "at") if action in ("arrive", "handle") else None
        detail: dict[str, Any] = {}
        lat, lon = _position(data)
        if lat is not None:
            detail.update(lat=lat, lon=lon)
        reason = ""
        if action == "handle":
            reason = _text(data.get("note"), "note", 4000)
            photos = _photos(data.get("photos"))
            if photos:
                detail["photos"] = photos
        elif action == "support":
            reason = _text(data.get("reason"), "reason", 4000)
        return at, reason, detail

    def _self_found_work(
        self, signed: Signed, body: bytes, where: str
    ) -> tuple[int, dict[str, Any], bool]:
        try:
            data = _object(body)
            lat, lon = _position(data)
            now = utcnow()
            report = field.SelfFound(
                officer=signed.caller,
                title=_text(data.get("title"), "title", 500),
                found_at=_time(data.get("found_at"), self.tz, "found_at") or now,
                handled_at=_time(data.get("handled_at"), self.tz, "handled_at") or now,
                category=_code(data.get("category"), "category"),
                grid=self._grid(data.get("grid")),
                location=_text(data.get("location"), "location", 2000),
                description=_text(data.get("description"), "description", 20000),
                lat=lat,
                lon=lon,
                note=_text(data.get("note"), "note", 4000),
                photos=tuple(_photos(data.get("photos"))),
            )
            claim = self._claim(signed, where, 201)
            field.self_found(self.store, report, self._actor(signed), now=now, also=claim)
        except Bad as e:
            return 400, {"ok": False, "reason": str(e), "code": "bad_request"}, False
        except Refused as e:
            status, answer = refusal(e)
            return status, answer, False
        return 201, {"text": claim.answer}, True

    def _grid(self, value: Any) -> str | None:
        code = _code(value, "grid")
        found = self.store.d.grids_by_label.get(code or "")
        return found.code if found else code

    def _intake_work(
        self, signed: Signed, body: bytes, where: str
    ) -> tuple[int, dict[str, Any], bool]:
        """Records through the intake of `tafang ingest` (dedupe, dead letters, triage);
        the answer counts them. Intake's own dedupe makes a retry harmless."""
        from tafang.store.intake import ingest

        if not signed.caller.startswith("feed:"):
            return (
                403,
                {
                    "ok": False,
                    "reason": "intake is pushed by a feed (caller feed:<channel>)",
                    "code": "role",
                },
                False,
            )
        try:
            lines = _lines(body)
        except Bad as e:
            return 400, {"ok": False, "reason": str(e), "code": "bad_request"}, False
        actor = Actor("feed", self.terminal)
        res = ingest(self.store, lines, origin=f"http:{signed.caller}", actor=actor, workers=0)
        answer = {
            "ok": res.rejected == 0,
            "accepted": res.accepted,
            "duplicate": res.duplicate,
            "rejected": res.rejected,
            "blank": res.blank,
            "errors": [{"line": n, "reason": r} for n, r in res.errors],
        }
        status = 200 if res.rejected == 0 else 422 if res.accepted + res.duplicate == 0 else 207
        return status, answer, False


# ---- reading a body ---------------------------------------------------------------------------
def _parse_body(body: bytes, depth: int = MAX_DEPTH) -> Any:
    """A body read as intake reads a line: nesting bounded, huge numbers kept; never raises
    but Bad (a 980-level body was a RecursionError, a 5,000-digit number a refusal)."""
    try:
        data = parse_json(body.decode("utf-8"), depth=depth)
    except UnicodeDecodeError as e:
        raise Bad(f"the body is not JSON: {e}") from None
    if isinstance(data, Rejected):
        raise Bad(f"the body is not JSON: {data.reason.removeprefix('not valid JSON: ')}")
    return data


def _object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    data = _parse_body(body)
    if not isinstance(data, dict):
        raise Bad("the body must be a JSON object")
    return data


def _lines(body: bytes) -> list[bytes]:
    """An array of records, or JSON Lines (a single object is one line). Lines are split on
    b"\\n" only and blank ones kept, so intake counts every line (its `blank`)."""
    if body.lstrip()[:1] == b"[":
        items = _parse_body(body, depth=MAX_DEPTH + 1)
        return [json.dumps(x, ensure_ascii=False).encode() for x in items]
    lines = body.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if not any(ln.strip() for ln in lines):
        raise Bad("no record in the body")
    return lines


def _text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Bad(f"{name} must be a string")
    if len(value) > limit:
        raise Bad(f"{name} is longer than {limit} characters")
    return value


def _code(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value:04d}" if name == "category" else str(value)
    if not isinstance(value, str) or len(value) > 64:
        raise Bad(f"{name} must be a code (a short string)")
    return value


def _time(value: Any, tz: ZoneInfo, name: str) -> datetime | None:
    """ISO 8601 (no offset: local time) or Unix seconds; None when absent."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise Bad(f"{name} is not a time") from None
    if not isinstance(value, str):
        raise Bad(f"{name} must be ISO 8601 or Unix seconds")
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise Bad(f"{name} is not ISO 8601: {value[:40]!r}") from None
    return (t if t.tzinfo else t.replace(tzinfo=tz)).astimezone(UTC)


def _position(data: dict[str, Any]) -> tuple[float | None, float | None]:
    lat, lon = data.get("lat"), data.get("lon")
    if lat is None and lon is None:
        return None, None
    ok = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon))
    if not ok or not (-90 <= lat <= 90 and -180 <= lon <= 180):  # type: ignore[operator]
        raise Bad("lat and lon must be numbers together (degrees, WGS-84)")
    return float(lat), float(lon)  # type: ignore[arg-type]


def _photos(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_PHOTOS:
        raise Bad(f"photos must be a list of at most {MAX_PHOTOS} URLs")
    for u in value:
        if not isinstance(u, str) or not u.startswith(("https://", "http://")) or len(u) > 2000:
            raise Bad("each photo must be an http(s) URL of at most 2000 characters")
    return list(value)
