"""Who is acting: the system says, not a flag.

On PostgreSQL the actor is the database role of the store's session (`session_user`): each
operator connects as their own role, and the record trigger (migration 0004) refuses entries
written under another name. On SQLite it is the OS user running the process. The roster
(`[[operators]] login = …` in config.toml) maps that login to an operator code and a role.

`identify` is the one seam: the CLI and the console call it once; tests build `Identity`
(or `Actor`) directly. `--operator` may only repeat who you are, except on the demo's
scratch store, where anyone on the roster may be played.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from sqlalchemy import Engine, text
from tafang.store.cases import Actor, Refused
from tafang.store.config import Deployment

DAEMON_LOGIN_OPERATORS = ("daemon", "system", "feed")
"""Operator names the daemon writes under (escalations, feeds): only the daemon's role may."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The authenticated person. `operator` is the roster code (the login itself when the
    login is not on the roster); `role` None = not on the roster (reads only)."""

    login: str
    operator: str
    role: str | None
    via: str  # "postgresql" | "os" | "demo"

    def actor(self, terminal: str) -> Actor:
        return Actor(self.operator, terminal)


class NotYou(Refused):
    """`--operator` named someone other than the authenticated login."""


def os_login() -> str:
    """The OS user running this process ("" if the system cannot say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def system_login(engine: Engine) -> tuple[str, str]:
    """(login, via): PostgreSQL's `session_user` of the store's connection, else the OS user."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT session_user")).scalar_one()), "postgresql"
    return os_login(), "os"


def identify(
    engine: Engine, d: Deployment, claimed: str | None = None, *, scratch: bool = False
) -> Identity:
    """The acting operator, from the system; `claimed` (`--operator` / TAFANG_OPERATOR) must
    be that operator's own code, unless `scratch` (the demo's throwaway store)."""
    login, via = system_login(engine)
    return resolve(d, login, via, claimed, scratch=scratch)


def resolve(
    d: Deployment, login: str, via: str, claimed: str | None = None, *, scratch: bool = False
) -> Identity:
    """`identify` without the database: the roster entry of `login`, checked against a claim."""
    claimed = (claimed or "").strip() or None
    op = d.operator_for_login(login) if login else None
    if scratch and claimed:
        return Identity(login, claimed, d.role_of(claimed), "demo")
    if claimed is not None and (op is None or claimed != op.code):
        own = op.code if op else "not on the roster"
        raise NotYou(
            f"--operator {claimed!r} is not you: you are login {login!r} ({own}); "
            "who acts is who the system says (--operator may only name yourself)",
            "not_you",
            operator=claimed,
            login=login,
            own=own,
        )
    if op is None:
        return Identity(login, login or "?", None, via)
    return Identity(login, op.code, op.role, via)


GRANTABLE = ("viewer", "dispatcher", "supervisor", "checker", "admin", "daemon", "field")
SERVICES = ("daemon", "field")
"""Logins of a service, not a person: the daemon's, and `tafang serve`'s (tafang_field,
migration 0006: writes as the officers its callers' keys authenticated). No roster entry."""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def grant(engine: Engine, d: Deployment, login: str, role: str) -> str:
    """`tafang db grant LOGIN ROLE` (PostgreSQL): create the login role if missing, make it a
    member of exactly one group role tafang_ROLE, and map it to its roster operator for the
    triggers. The roster must already say the same role (config.toml is the source); the
    daemon's login needs no roster entry. Returns the operator code the login acts as."""
    if engine.dialect.name != "postgresql":
        raise Refused("db grant is for PostgreSQL; on SQLite the roster's login (OS user) rules")
    if role not in GRANTABLE:
        raise Refused(f"role must be one of {', '.join(GRANTABLE)}, not {role!r}")
    if not login.strip() or login.startswith(("pg_", "tafang_")):
        raise Refused(f"{login!r} cannot be an operator's login")
    op = d.operator_for_login(login)
    if role not in SERVICES and op is None:
        raise Refused(
            f'login {login!r} is not on the roster: add `[[operators]] login = "{login}"` '
            "(code, name, role) to config.toml first",
            "not_on_roster",
            operator=login,
        )
    if op is not None and role != op.role:
        raise Refused(f"the roster makes {login!r} a {op.role}, not a {role}: edit config.toml")
    operator = op.code if op else role
    q = _quoted(login)
    with engine.begin() as conn:
        create = f"CREATE ROLE {q} LOGIN"
        conn.execute(
            text(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                f"{_literal(login)}) THEN BEGIN {create}; EXCEPTION WHEN duplicate_object "
                "OR unique_violation THEN NULL; END; END IF; END $$"
            )
        )
        for g in GRANTABLE:
            if g != role:
                conn.execute(text(f"REVOKE tafang_{g} FROM {q}"))
        conn.execute(text(f"GRANT tafang_{role} TO {q}"))
        conn.execute(
            text(
                "INSERT INTO tafang_auth.logins (login, operator, role) VALUES (:l, :o, :r) "
                "ON CONFLICT (login) DO UPDATE SET operator = :o, role = :r"
            ),
            {"l": login, "o": operator, "r": role},
        )
    return operator


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"
