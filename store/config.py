"""The deployment as data: `config.toml` parsed and validated (pydantic).

Nothing about Gudang lives in code; everything a deployment differs by is here.
A wrong file is refused with the file, the key path and the reason (`ConfigError`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from datetime import date, datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

LEVELS = ("grid", "enforcement", "emergency", "risk", "centre")
"""Escalation levels bottom to top; the index is `escalation_level` (0 = grid … 4 = centre)."""

PRIORITIES = ("normal", "urgent", "critical")
OFFICER_STATUSES = ("available", "en_route", "on_scene", "off_duty", "on_break")

# Bounds that keep every setting inside what the code can compute with (a timedelta of
# 10^17 seconds overflows): far beyond any real deployment, so they only catch typos.
MAX_CLOCK_SECONDS = 30 * 86400  # a respond / dispatch / arrive clock
MAX_ESCALATION_INTERVAL = 7 * 86400
MAX_DEPTH = 16  # tables and arrays inside each other; deeper is refused, not recursed into
CLIP = 80  # values longer than this are cut in error messages


def clip(v: object, limit: int = CLIP) -> str:
    """`v` for an error message: repr'd, cut after `limit` characters with its full length."""
    s = v if isinstance(v, str) else repr(v)
    if len(s) <= limit:
        return repr(s) if isinstance(v, str) else s
    return repr(s[:limit]) + f"…({len(s)} chars)"


class ConfigError(Exception):
    """A config file that cannot be used: names the file, the key path and the reason."""

    def __init__(self, path: str, key: str, reason: str) -> None:
        # A key or reason may echo a value from the file (an unknown key of 1 MiB): cut both.
        key = key if len(key) <= 4 * CLIP else key[: 4 * CLIP] + f"…({len(key)} chars)"
        if len(reason) > 8 * CLIP:
            reason = reason[: 8 * CLIP] + f"…({len(reason)} chars)"
        self.path, self.key, self.reason = path, key, reason
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(where + reason)


class _Model(BaseModel):
    # strict: TOML carries its types, so none is coerced into another (`respond = true` is
    # not 1 second, `respond = "60"` not 60, `sweep_sync_commit = "no"` not False); an
    # integer where a float is wanted is the one widening allowed (TOML writers write 5 for
    # 5.0). Values parsed from strings on purpose (times, URLs, codes) are strings anyway;
    # a date is a TOML date or an ISO string (`TomlDate`).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _date_or_iso(v: object) -> object:
    """A TOML date passes; a string goes on to be parsed only if it reads YYYY-MM-DD (not
    "1801958400" as a timestamp); anything else (a number, a bool, a date-time) is the
    wrong type, not a timestamp to convert."""
    if isinstance(v, str):
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            raise ValueError(f"{clip(v)} is not a date YYYY-MM-DD")
        return v
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    raise PydanticCustomError("date_type", "Input should be a valid date")


TomlDate = Annotated[date, Field(strict=False), BeforeValidator(_date_or_iso)]


class Centre(_Model):
    code: str
    name: str
    name_en: str = ""


class RiskCircle(_Model):
    code: str
    name: str
    name_en: str = ""
    half: Literal["north", "south"]


class EmergencyCircle(_Model):
    code: str
    name: str
    name_en: str = ""
    risk: str  # code of the risk circle it belongs to


class EnforcementCircle(_Model):
    code: str
    name: str
    name_en: str = ""
    emergency: str  # code of the emergency circle it belongs to


class Grid(_Model):
    code: str = Field(
        pattern=r"^\d{14}$"
    )  # GB/T 30428.1 unit grid: county6 street3 community3 seq2
    label: str  # short label shown on the map, e.g. "N3-07"
    community: str
    circle: str  # enforcement circle code
    half: Literal["north", "south"]
    row: int = Field(ge=0, le=999)  # map position
    col: int = Field(ge=0, le=999)


class Tower(_Model):
    centre: Centre
    risk_circles: list[RiskCircle] = Field(min_length=1)
    emergency_circles: list[EmergencyCircle] = Field(min_length=1)
    enforcement_circles: list[EnforcementCircle] = Field(min_length=1)
    grids: list[Grid] = Field(min_length=1)


class Channel(_Model):
    code: str
    name: str
    name_en: str = ""


class CaseGroup(_Model):
    code: str
    name: str
    name_en: str = ""


class ClockSeconds(_Model):
    """Overrides for the 1-3-5 clocks, seconds from receipt; unset = the default."""

    respond: int | None = Field(default=None, gt=0, le=MAX_CLOCK_SECONDS)
    dispatch: int | None = Field(default=None, gt=0, le=MAX_CLOCK_SECONDS)
    arrive: int | None = Field(default=None, gt=0, le=MAX_CLOCK_SECONDS)


class ResolveLimit(_Model):
    """A resolve limit as 数字城管 sets it: plain or working hours / days."""

    amount: float = Field(gt=0)
    unit: Literal["minutes", "hours", "days", "working_hours", "working_days"]

    @model_validator(mode="after")
    def _within_a_year(self) -> ResolveLimit:
        most = _RESOLVE_MOST[self.unit]
        if not self.amount <= most:  # also NaN
            raise ValueError(f"resolve: {self.amount:g} {self.unit} is beyond {most:g} (a year)")
        return self


_RESOLVE_MOST = {
    "minutes": 366 * 1440,
    "hours": 366 * 24,
    "days": 366,
    "working_hours": 366 * 24,
    "working_days": 366,
}


class Category(_Model):
    code: str = Field(pattern=r"^\d{4}$")  # GB/T 30428.2 大类 (2 digits) + 小类 (2 digits)
    name: str
    name_en: str = ""
    group: str  # case group code
    sla: ClockSeconds = ClockSeconds()
    resolve: ResolveLimit | None = None

    @property
    def major(self) -> str:
        return self.code[:2]


class MajorClass(_Model):
    code: str = Field(pattern=r"^\d{2}$")
    name: str
    name_en: str = ""


class WorkingHours(_Model):
    """Working periods per working day, local time, e.g. ["08:00-12:00", "14:00-18:00"]."""

    periods: list[str] = Field(default=["08:30-12:00", "13:30-17:30"], min_length=1)

    @field_validator("periods")
    @classmethod
    def _hhmm(cls, v: list[str]) -> list[str]:
        for p in v:
            try:
                a, b = p.split("-")
                ah, am = (int(x) for x in a.split(":"))
                bh, bm = (int(x) for x in b.split(":"))
            except ValueError as e:
                raise ValueError(f"period {clip(p)} is not HH:MM-HH:MM") from e
            if not (0 <= ah * 60 + am < bh * 60 + bm <= 24 * 60):
                raise ValueError(f"period {clip(p)} does not run forward within one day")
        return v


class Sla(_Model):
    respond: int = Field(default=60, gt=0, le=MAX_CLOCK_SECONDS)
    dispatch: int = Field(default=180, gt=0, le=MAX_CLOCK_SECONDS)
    arrive: int = Field(default=300, gt=0, le=MAX_CLOCK_SECONDS)
    resolve: ResolveLimit = ResolveLimit(amount=1, unit="working_days")
    at_risk: float = Field(default=0.8, gt=0, lt=1)
    # seconds between further escalations
    escalation_interval: int = Field(default=120, gt=0, le=MAX_ESCALATION_INTERVAL)
    priorities: dict[str, ClockSeconds] = {}  # overrides per priority (urgent, critical)
    working_hours: WorkingHours = WorkingHours()
    # PostgreSQL: the sweep's commits wait for their WAL flush (true) or return at once and
    # are flushed within ~0.2 s (false); notices and record anchors leave only once flushed
    sweep_sync_commit: bool = False

    @field_validator("priorities")
    @classmethod
    def _known_priorities(cls, v: dict[str, ClockSeconds]) -> dict[str, ClockSeconds]:
        for k in v:
            if k not in PRIORITIES:
                raise ValueError(
                    f"unknown priority {clip(k)}; expected one of {', '.join(PRIORITIES)}"
                )
        return v


class Officer(_Model):
    code: str  # e.g. "2-03": squad number and seat
    name: str
    agency: str  # police, enforcement, traffic, market, emergency …
    group: str  # case group code
    circle: str  # home enforcement circle code
    role: Literal["officer", "leader"] = "officer"
    mobile: str = ""  # @-mentioned by the squad robot when told of a case (issue 11)


class Squad(_Model):
    code: str
    name: str
    name_en: str = ""
    officers: list[Officer] = Field(min_length=1)
    robot: Robot | None = None  # the squad's group robot: its officers are told here


class Partner(_Model):
    """A partner enterprise team (e.g. a shared-bike operator)."""

    code: str
    name: str
    name_en: str = ""
    categories: list[str] = []  # category codes it takes
    contact: str = ""
    # What one item it handles (a bike moved) saves the public side (reports: 政企共管).
    minutes_per_item: float = Field(default=0.0, ge=0)
    yuan_per_item: float = Field(default=0.0, ge=0)


SECRET_KEYS = frozenset({"token", "secret", "key", "access_token", "sign", "password"})
"""Keys (of a table, or of a URL's query) whose value would be a secret if written inline."""


def inline_secret(data: object, path: str = "") -> tuple[str, str] | None:
    """The first secret written into the config itself, as (key path, reason), or None.

    Secrets come from the environment or systemd credentials only (`token_env`,
    `secret_env`): a literal token/secret/key anywhere, or a URL whose query carries one,
    is refused whatever the table or format, so a new format can't bring them back."""
    from urllib.parse import parse_qsl, urlsplit

    items: Iterable[tuple[object, object]] = ()
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    for k, v in items:
        here = f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}" if path else str(k)
        if isinstance(k, str) and k.lower() in SECRET_KEYS and v not in (None, ""):
            return here, "an inline secret: name an environment variable with token_env/secret_env"
        if isinstance(v, str) and "?" in v and "://" in v:
            for q, value in parse_qsl(urlsplit(v).query, keep_blank_values=True):
                if q.lower() in SECRET_KEYS and value:
                    return here, (
                        f"the URL carries an inline secret ({q}=…): drop it and name an "
                        "environment variable with token_env"
                    )
        found = inline_secret(v, here)
        if found:
            return found
    return None


class Operator(_Model):
    """One person at a terminal. `login` is who the system says they are: their PostgreSQL
    role (session_user) or, on SQLite, their OS login; `code` is what the record shows."""

    code: str
    name: str
    name_en: str = ""
    login: str | None = None
    role: Literal["viewer", "dispatcher", "supervisor", "checker", "admin"] = "dispatcher"


class Robot(_Model):
    """A group chat robot (a squad's, or a tower level's as `Contact`); secrets are named
    env vars, never values (see `Contact`)."""

    name: str
    url: str
    format: Literal["json", "dingtalk", "wecom"] = "json"
    token_env: str | None = None
    secret_env: str | None = None
    at_mobiles: list[str] = []
    rate_per_minute: int = Field(default=20, gt=0, le=6000)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        return http_url(v)

    @model_validator(mode="before")
    @classmethod
    def _key_env(cls, data: object) -> object:
        if isinstance(data, dict) and "key_env" in data:
            data = dict(data)
            if data.get("format") != "wecom" or data.get("token_env"):
                raise ValueError('key_env is for format = "wecom" only, instead of token_env')
            data["token_env"] = data.pop("key_env")
        return data

    @model_validator(mode="after")
    def _wecom(self) -> Robot:
        if self.format == "wecom" and not self.token_env:
            raise ValueError("a wecom contact needs key_env (or token_env): the webhook key")
        if self.format == "wecom" and self.secret_env:
            raise ValueError("wecom robots are not signed: drop secret_env")
        return self


class Contact(Robot):
    """The duty contact of one tower level; secrets are named env vars, never values.

    A named secret is read from the environment variable, else from the systemd credential
    of the same name (`$CREDENTIALS_DIRECTORY/NAME`). WeCom robots (`format = "wecom"`) take
    their webhook key from `token_env` (`key_env` is accepted as its other name) and are not
    signed."""

    level: Literal["grid", "enforcement", "emergency", "risk", "centre"]
    # A circle of that level (enforcement / emergency / risk circle code; grid: the grid's
    # enforcement circle): this contact takes the level's notices for that circle only.
    circle: str | None = None


class Notices(_Model):
    """`[notices]`: when undelivered escalation notices are themselves escalated.

    A notice is retried until delivered or given up by a person; once one has waited
    `alarm_after_minutes`, the daemon tells the centre through `alarm`, another contact than
    the robots that fail (e.g. the duty phone's gateway), once per stuck episode."""

    alarm_after_minutes: int = Field(default=10, gt=0, le=1440)
    alarm: Contact | None = None


class Feed(_Model):
    """An HTTP JSON feed polled into intake."""

    channel: str
    url: str
    interval: float = Field(default=10, gt=0, le=86400)  # seconds between polls
    cursor_param: str = "since"
    cursor_field: str = "id"  # field of each item whose last value becomes the next cursor
    items_path: str = ""  # dotted path to the list in the response ("" = the body is the list)
    mapping: dict[str, str] = {}  # intake field -> feed field
    timeout: float = Field(default=5, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        return http_url(v)


def http_url(v: str) -> str:
    """Feeds and robots are reached over HTTP(S) only: file://, gopher:// … are refused."""
    from urllib.parse import urlsplit

    try:
        u = urlsplit(v)
        ok = u.scheme.lower() in ("http", "https") and bool(u.hostname)
    except ValueError:  # e.g. a broken IPv6 literal
        ok = False
    if not ok:
        raise ValueError(f"must be an http:// or https:// URL with a host, not {clip(v)}")
    return v


class Intake(_Model):
    """`[intake]`: limits of `tafang ingest`. A line longer than `max_line_bytes` (end of
    line included) is rejected with its size, and is read in bounded steps, never whole."""

    max_line_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)


class Dupes(_Model):
    """`[dupes]`: when a new report is probably an open case's event (store/dupes.py).

    A candidate must be open, in a compatible category (the same, or the same case group
    with `same_group`), within `window_minutes` of the report, and in the same or a
    neighbouring grid cell (`rings` cells away on the map; 文三西路 does not separate) or
    within `radius_m` when both carry a position. Its score mixes text likeness (character
    level, rapidfuzz), place and time by the weights; at or above `threshold` it is shown,
    unless both name a place and the places share less than `place_words_min`."""

    enabled: bool = True
    window_minutes: int = Field(default=90, ge=1, le=7 * 24 * 60)
    rings: int = Field(default=1, ge=0, le=5)
    radius_m: float = Field(default=300.0, ge=0, le=10_000)
    same_group: bool = True
    threshold: float = Field(default=0.65, ge=0, le=1)
    weight_text: float = Field(default=0.6, ge=0, le=1)
    weight_place: float = Field(default=0.25, ge=0, le=1)
    weight_time: float = Field(default=0.15, ge=0, le=1)
    max_suggestions: int = Field(default=5, ge=1, le=50)
    # When both reports name a place, their places must share this much (0 = don't check).
    place_words_min: float = Field(default=0.5, ge=0, le=1)


class Calendar(_Model):
    """The State Council's holiday notice for years the calendar package does not know yet:
    days off, and the weekend days worked instead (调休)."""

    holidays: list[TomlDate] = []
    workdays: list[TomlDate] = []

    @model_validator(mode="after")
    def _disjoint(self) -> Calendar:
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise ValueError(f"calendar: {both[0].isoformat()} is both a holiday and a workday")
        return self


def _minutes(hhmm: str) -> int:
    """Minutes after local midnight of "HH:MM" (00:00 … 23:59); ValueError otherwise."""
    h, sep, m = hhmm.partition(":")
    if not (sep and h.isdigit() and m.isdigit() and len(m) == 2 and 0 <= int(h) < 24):
        raise ValueError(f"{hhmm!r} is not a time HH:MM")
    if int(m) >= 60:
        raise ValueError(f"{hhmm!r} is not a time HH:MM")
    return int(h) * 60 + int(m)


class Shift(_Model):
    """One shift of the duty roster (白班 / 夜班, store/roster.py): its local hours (a night
    shift runs past midnight: start 20:00, end 08:00), the squads on duty and the 带班领导
    (an operator code of a supervisor) who takes the handover at its start."""

    code: str
    name: str
    name_en: str = ""
    start: str
    end: str
    squads: list[str] = Field(min_length=1)
    leader: str
    dispatchers: list[str] = []  # operator codes at the terminals this shift

    @model_validator(mode="after")
    def _hours(self) -> Shift:
        if _minutes(self.start) == _minutes(self.end):
            raise ValueError(f"shift {self.code}: start and end are both {self.start}")
        return self


class Voice(_Model):
    """The spoken alarm (灵活语音, console/voice.py): new critical cases and breaches said
    aloud by `command` (the sentence is its last argument), at most one every
    `min_interval` seconds; off unless `enabled`."""

    enabled: bool = False
    command: list[str] = Field(default=["espeak-ng", "-v", "cmn", "-s", "150"], min_length=1)
    min_interval: float = Field(default=15, ge=0)
    breaches: bool = True
    critical: bool = True


class Ui(_Model):
    lang: Literal["zh", "en"] = "zh"
    bell_on_breach: bool = True
    refresh_seconds: float = Field(default=0.5, gt=0, le=60)
    # Key remapping by binding id, e.g. {"tafang.ack" = "k", "tafang.dispatch" = "ctrl+d"}.
    keymap: dict[str, str] = {}


class Record(_Model):
    """The record's key and its witnesses (issue 13; store/record_key.py, store/witness.py).

    `key_file`: the record key when neither TAFANG_RECORD_KEY_FILE nor the systemd
    credential `record-key` gives one. `witness_file`: an append-only file the daemon writes
    the record's anchor to every `witness_interval` seconds when it moved (and `audit verify`
    reads); the anchor also goes to the centre's contact through the outbox at most every
    `witness_robot_interval` seconds (0: never)."""

    key_file: str | None = None
    witness_file: str | None = None
    witness_interval: float = Field(default=60, ge=1, le=86400)
    witness_robot_interval: float = Field(default=0, ge=0, le=7 * 86400)


_CLOCK = r"([01]\d|2[0-3]):[0-5]\d"


class Reports(_Model):
    """Meeting reports the daemon writes (sla/report_schedule.py) into `folder` (a relative
    one beside the SQLite store, or in the service's StateDirectory, or the user data dir)
    and announces to the `announce` contact level ("":
    nobody). `daily` "HH:MM" (the day before), `weekly` "mon HH:MM" (the week before),
    `monthly` "D HH:MM" (the month before), local time; "" turns one off."""

    folder: str = "reports"
    daily: str = Field(default="08:30", pattern=rf"^({_CLOCK})?$")
    weekly: str = Field(
        default="mon 08:30", pattern=rf"^((mon|tue|wed|thu|fri|sat|sun) {_CLOCK})?$"
    )
    monthly: str = Field(default="1 08:30", pattern=rf"^(([1-9]|1\d|2[0-8]) {_CLOCK})?$")
    formats: list[Literal["html", "md", "csv", "json"]] = ["html", "md", "csv", "json"]
    announce: Literal["", "grid", "enforcement", "emergency", "risk", "centre"] = "centre"


class Deployment(_Model):
    name: str
    timezone: str = "Asia/Shanghai"
    tower: Tower
    channels: list[Channel] = Field(min_length=1)
    case_groups: list[CaseGroup] = Field(min_length=1)
    major_classes: list[MajorClass] = []
    categories: list[Category] = Field(min_length=1)
    sla: Sla = Sla()
    squads: list[Squad] = Field(min_length=1)
    partners: list[Partner] = []
    operators: list[Operator] = []
    contacts: list[Contact] = []
    notices: Notices = Notices()
    feeds: list[Feed] = []
    calendar: Calendar = Calendar()
    intake: Intake = Intake()
    dupes: Dupes = Dupes()
    ui: Ui = Ui()
    record: Record = Record()
    reports: Reports = Reports()
    shifts: list[Shift] = []
    voice: Voice = Voice()

    model_config = ConfigDict(ignored_types=(cached_property,))  # and _Model's

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {clip(v)}") from e
        return v

    @model_validator(mode="after")
    def _references(self) -> Deployment:
        t = self.tower
        _unique("tower.risk_circles", (c.code for c in t.risk_circles))
        _unique("tower.emergency_circles", (c.code for c in t.emergency_circles))
        _unique("tower.enforcement_circles", (c.code for c in t.enforcement_circles))
        _unique("tower.grids", (g.code for g in t.grids))
        _unique("tower.grids (label)", (g.label for g in t.grids))
        _unique("channels", (c.code for c in self.channels))
        _unique("categories", (c.code for c in self.categories))
        _unique("squads", (s.code for s in self.squads))
        _unique("officers", (o.code for s in self.squads for o in s.officers))
        _unique("contacts (level, circle)", (f"{c.level}@{c.circle}" for c in self.contacts))
        _unique("operators", (o.code for o in self.operators))
        _unique("operators (login)", (o.login for o in self.operators if o.login))
        _unique(
            "officers, squads and partners",
            [
                *(o.code for s in self.squads for o in s.officers),
                *(s.code for s in self.squads),
                *(p.code for p in self.partners),
            ],
        )
        risk = {c.code for c in t.risk_circles}
        emer = {c.code for c in t.emergency_circles}
        enf = {c.code for c in t.enforcement_circles}
        groups = {g.code for g in self.case_groups}
        cats = {c.code for c in self.categories}
        for i, c in enumerate(t.emergency_circles):
            _ref(f"tower.emergency_circles[{i}].risk", c.risk, risk)
        for i, c in enumerate(t.enforcement_circles):
            _ref(f"tower.enforcement_circles[{i}].emergency", c.emergency, emer)
        for i, g in enumerate(t.grids):
            _ref(f"tower.grids[{i}].circle", g.circle, enf)
        for i, c in enumerate(self.categories):
            _ref(f"categories[{i}].group", c.group, groups)
        for si, s in enumerate(self.squads):
            for oi, o in enumerate(s.officers):
                _ref(f"squads[{si}].officers[{oi}].group", o.group, groups)
                _ref(f"squads[{si}].officers[{oi}].circle", o.circle, enf)
        for pi, p in enumerate(self.partners):
            for ci, c in enumerate(p.categories):
                _ref(f"partners[{pi}].categories[{ci}]", c, cats)
        circles = {"grid": enf, "enforcement": enf, "emergency": emer, "risk": risk}
        for i, k in enumerate(self.contacts):
            if k.circle is not None:
                _ref(f"contacts[{i}].circle", k.circle, circles.get(k.level, set()))
        chans = {c.code for c in self.channels}
        for fi, f in enumerate(self.feeds):
            _ref(f"feeds[{fi}].channel", f.channel, chans)
        return self

    @model_validator(mode="after")
    def _roster(self) -> Deployment:
        """Shifts name known squads and a supervisor as 带班领导, and tile the day: each one
        ends where the next begins, so any moment is in exactly one shift."""
        if not self.shifts:
            return self
        _unique("shifts", (s.code for s in self.shifts))
        squads = {s.code for s in self.squads}
        ops = {o.code: o for o in self.operators}
        for i, sh in enumerate(self.shifts):
            for j, q in enumerate(sh.squads):
                _ref(f"shifts[{i}].squads[{j}]", q, squads)
            _ref(f"shifts[{i}].leader", sh.leader, set(ops))
            if ops[sh.leader].role != "supervisor":
                raise ValueError(
                    f"shifts[{i}].leader: {sh.leader} is a {ops[sh.leader].role}; "
                    "the 带班领导 must be a supervisor"
                )
            for j, dc in enumerate(sh.dispatchers):
                _ref(f"shifts[{i}].dispatchers[{j}]", dc, set(ops))
        ordered = sorted(self.shifts, key=lambda sh: _minutes(sh.start))
        for sh, nxt in zip(ordered, [*ordered[1:], ordered[0]], strict=True):
            if _minutes(sh.end) != _minutes(nxt.start):
                raise ValueError(
                    f"shifts: {sh.code} ends at {sh.end} but the next shift ({nxt.code}) "
                    f"starts at {nxt.start}: shifts must tile the day without gap or overlap"
                )
        return self

    # Look-ups the rest of the code needs; computed once per deployment.
    @cached_property
    def grids_by_code(self) -> dict[str, Grid]:
        return {g.code: g for g in self.tower.grids}

    @cached_property
    def grids_by_label(self) -> dict[str, Grid]:
        return {g.label: g for g in self.tower.grids}

    @cached_property
    def categories_by_code(self) -> dict[str, Category]:
        return {c.code: c for c in self.categories}

    @cached_property
    def officers_by_code(self) -> dict[str, tuple[Squad, Officer]]:
        return {o.code: (s, o) for s in self.squads for o in s.officers}

    @cached_property
    def squads_by_code(self) -> dict[str, Squad]:
        return {s.code: s for s in self.squads}

    @cached_property
    def channel_codes(self) -> frozenset[str]:
        return frozenset(c.code for c in self.channels)

    def circles_of(self, grid_code: str) -> tuple[str, str, str] | None:
        """(enforcement, emergency, risk) circle codes of a grid cell, or None if unknown."""
        g = self.grids_by_code.get(grid_code)
        if g is None:
            return None
        enf = next(c for c in self.tower.enforcement_circles if c.code == g.circle)
        emer = next(c for c in self.tower.emergency_circles if c.code == enf.emergency)
        return enf.code, emer.code, emer.risk

    def contact_for(self, level: int) -> Contact | None:
        name = LEVELS[level]
        return next((c for c in self.contacts if c.level == name and c.circle is None), None)

    def circle_at(self, level: int, grid_code: str | None) -> str | None:
        """The circle a grid's case is in at a tower level (grid level: its enforcement
        circle); None at the centre or for an unknown grid."""
        circles = self.circles_of(grid_code or "")
        if circles is None or not 0 <= level <= 3:
            return None
        return circles[max(0, level - 1)]

    def contact_name(self, level: int, grid_code: str | None) -> str:
        """The outbox `contact` of a level's notice for a case in this grid: `level@circle`
        when that circle has its own contact at this level, else the level's name."""
        circle = self.circle_at(level, grid_code)
        if circle and any(c.level == LEVELS[level] and c.circle == circle for c in self.contacts):
            return f"{LEVELS[level]}@{circle}"
        return LEVELS[level]

    def role_of(self, operator: str) -> str | None:
        """The operator's role; None = not on the roster (reads only, no moves)."""
        return next((o.role for o in self.operators if o.code == operator), None)

    def operator_for_login(self, login: str) -> Operator | None:
        """The roster entry whose `login` this is (an OS user or a PostgreSQL role)."""
        return next((o for o in self.operators if o.login and o.login == login), None)


def _unique(key: str, codes: Iterable[str]) -> None:
    seen: set[str] = set()
    for c in codes:
        if c in seen:
            raise ValueError(f"{key}: duplicate code {clip(c)}")
        seen.add(c)


def _ref(key: str, value: str, known: set[str]) -> None:
    if value not in known:
        raise ValueError(f"{key}: unknown code {clip(value)}")


def too_deep(data: object, limit: int = MAX_DEPTH) -> str | None:
    """The key path of the first value nested deeper than `limit`, or None (no recursion:
    the check must hold for any depth the TOML parser let through)."""
    stack: list[tuple[object, str, int]] = [(data, "", 0)]
    while stack:
        v, path, depth = stack.pop()
        items: Iterable[tuple[object, object]]
        if isinstance(v, dict):
            items = v.items()
        elif isinstance(v, list):
            items = enumerate(v)
        else:
            continue
        if depth >= limit:
            return path or "(top)"
        for k, x in items:
            here = f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}" if path else str(k)
            stack.append((x, here, depth + 1))
    return None


def default_config_path() -> Path:
    """The Gudang deployment shipped inside the package (the demo default).

    In the repository store/config.toml is a link to the top-level config.toml, so there is
    one file; the wheel carries its content.
    """
    return Path(str(resources.files("tafang.store").joinpath("config.toml")))


def locate_config(explicit: str | Path | None = None) -> tuple[Path, str]:
    """The deployment file to use and how it was found, first match wins: `--config`,
    TAFANG_CONFIG, ./config.toml, the user config dir, the site config dir, the packaged one.

    An explicit path is returned even if it does not exist, so the error names it.
    """
    if explicit:
        return Path(explicit), "--config"
    if env := os.environ.get("TAFANG_CONFIG"):
        return Path(env), "TAFANG_CONFIG"
    candidates = (
        (Path("config.toml"), "./config.toml"),
        (platformdirs.user_config_path("tafang") / "config.toml", "user config dir"),
        (platformdirs.site_config_path("tafang") / "config.toml", "site config dir"),
    )
    for path, how in candidates:
        if path.is_file():
            return path, how
    return default_config_path(), "packaged default"


# What a strict type error (see `_Model`) wanted, in the file's terms.
_WANTED = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "date_type": "a date (YYYY-MM-DD)",
    "list_type": "an array",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


def wrong_type(value: object, wanted: str) -> str:
    """The reason for a value of another TOML type than the key takes, e.g. `wrong type:
    true (a boolean) where an integer is wanted`."""
    if isinstance(value, bool):
        kind, shown = "a boolean", "true" if value else "false"
    elif isinstance(value, int):
        kind, shown = "an integer", clip(value)
    elif isinstance(value, float):
        kind, shown = "a float", clip(value)
    elif isinstance(value, str):
        kind, shown = "a string", clip(value)
    elif isinstance(value, datetime):
        kind, shown = "a date-time", clip(value.isoformat())
    elif isinstance(value, date):
        kind, shown = "a date", clip(value.isoformat())
    elif isinstance(value, list):
        kind, shown = "an array", ""
    elif isinstance(value, dict):
        kind, shown = "a table", ""
    else:  # a TOML time of day
        kind, shown = "a time", clip(str(value))
    got = f"{shown} ({kind})" if shown else kind
    return f"wrong type: {got} where {wanted} is wanted"


def load_config(path: str | Path | None = None) -> Deployment:
    """Read and validate a deployment; raise ConfigError naming file, key path and reason."""
    p = Path(path) if path else default_config_path()
    shown = str(p)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(shown, "", f"cannot read: {e.strerror or e}") from e
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(shown, "", f"not UTF-8 text (byte {e.start})") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(shown, "", f"not valid TOML: {e}") from e
    except RecursionError as e:
        raise ConfigError(shown, "", f"nested too deeply (the limit is {MAX_DEPTH})") from e
    deep = too_deep(data)
    if deep is not None:
        raise ConfigError(shown, deep, f"nested too deeply (the limit is {MAX_DEPTH})")
    secret = inline_secret(data)
    if secret:
        raise ConfigError(shown, *secret)
    try:
        return Deployment.model_validate(data)
    except ValidationError as e:
        raise _refusal(shown, e) from e


def _refusal(shown: str, e: ValidationError) -> ConfigError:
    """The ConfigError for a failed validation: the first problem, and how many more."""
    err = e.errors()[0]
    key = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]).replace(
        ".[", "["
    )
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    elif err["type"] in _WANTED:
        msg = wrong_type(err["input"], _WANTED[err["type"]])
    more = len(e.errors()) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    if not key and ": " in msg:  # model-level check: key path is in the message
        key, msg = msg.split(": ", 1)
    return ConfigError(shown, key, msg)
