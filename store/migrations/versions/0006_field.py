"""Field API: request ids for idempotency, self-found cases, the field's login (issue 11).

- `field_requests`: one row per (caller, request id) of `tafang serve`, written in the
  transaction of what the request did; the same id gets the stored answer, nothing twice.
- `cases.self_found`: 自查自处, a case an officer found and handled on the spot (reports
  count it apart).
- PostgreSQL: a group role `tafang_field` for the login `tafang serve` connects as. It
  writes cases, the record and the outbox like a worker, and its record entries may name any
  officer of the roster's squads (their keys authenticated them; the store checked the
  move) or `feed` (pushed intake); the triggers of 0004 are widened for that one role.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

GROUPS = "tafang_viewer, tafang_dispatcher, tafang_supervisor, tafang_checker, tafang_admin"

# 0004's operator check, with the field role's officers and `feed` let through first.
FIELD_SELF = """
  me text := session_user;
  mine text;
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = me) THEN RETURN NEW; END IF;
  SELECT operator INTO mine FROM tafang_auth.logins WHERE login = me;
  IF pg_has_role(me, 'tafang_daemon', 'MEMBER') AND NEW.{col} IN ('daemon', 'system', 'feed')
  THEN
    RETURN NEW;
  END IF;
  IF pg_has_role(me, 'tafang_field', 'MEMBER')
     AND (NEW.{col} = 'feed' OR EXISTS (SELECT 1 FROM officers WHERE code = NEW.{col})) THEN
    RETURN NEW;
  END IF;
  IF mine IS NULL THEN
    RAISE EXCEPTION 'tafang: login % is not on the roster (ask an admin: tafang db grant)', me
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.{col} IS NULL OR NEW.{col} = '' THEN
    NEW.{col} := mine;
  ELSIF NEW.{col} <> mine THEN
    RAISE EXCEPTION 'tafang: login % is operator %, not %: nobody acts as someone else',
      me, mine, NEW.{col} USING ERRCODE = 'insufficient_privilege';
  END IF;
"""


def _functions(self_block: str) -> list[str]:
    """The two trigger functions of 0004 with `self_block` as their operator check."""
    record = (
        "CREATE OR REPLACE FUNCTION tafang_record_operator() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$\nDECLARE {self_block.format(col='operator')}\n"
        "  RETURN NEW;\nEND $$;"
    )
    guard = (
        "CREATE OR REPLACE FUNCTION tafang_case_guard() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$\nDECLARE {self_block.format(col='updated_by')}\n"
        """  IF TG_OP = 'UPDATE' AND NEW.status = 'closed' AND OLD.status <> 'closed' THEN
    IF NOT (pg_has_role(me, 'tafang_checker', 'MEMBER')
            OR pg_has_role(me, 'tafang_supervisor', 'MEMBER')) THEN
      RAISE EXCEPTION 'tafang: close needs a checker or supervisor; login % is neither', me
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM audit WHERE case_id = NEW.id AND operator = mine
               AND action IN ('dispatch', 'reassign', 'handle')) THEN
      RAISE EXCEPTION 'tafang: % dispatched or handled case % and may not close it (监管分离)',
        mine, NEW.id USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  RETURN NEW;
END $$;"""
    )
    return [record, guard]


def _create_field_role() -> None:
    op.execute(
        """
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tafang_field') THEN
    BEGIN
      CREATE ROLE tafang_field NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
END $$;
"""
    )


def upgrade() -> None:
    """Re-runnable: a store set back to an older revision keeps what it has."""
    have = sa.inspect(op.get_bind())
    if "self_found" not in {c["name"] for c in have.get_columns("cases")}:
        op.add_column(
            "cases",
            sa.Column("self_found", sa.Boolean(), nullable=False, server_default=sa.false()),
        )
    if not have.has_table("field_requests"):
        op.create_table(
            "field_requests",
            sa.Column("caller", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
            sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
            sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
            sa.Column("path", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
            sa.Column("status", sa.Integer(), nullable=False),
            sa.Column("answer", sa.Text(), nullable=True),
            sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
            sa.PrimaryKeyConstraint("caller", "request_id"),
        )
    if op.get_bind().dialect.name != "postgresql":
        return
    _create_field_role()
    for stmt in (
        f"GRANT SELECT ON field_requests TO {GROUPS}, tafang_daemon",
        "GRANT USAGE ON SCHEMA public, tafang_auth TO tafang_field",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO tafang_field",
        "GRANT SELECT ON tafang_auth.logins TO tafang_field",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO tafang_field",
        "GRANT INSERT, UPDATE ON cases, officers, field_requests TO tafang_field",
        "GRANT UPDATE ON audit_head TO tafang_field",
        "GRANT INSERT ON audit, dead_letters, outbox TO tafang_field",
        *_functions(FIELD_SELF),
    ):
        op.execute(stmt)


def downgrade() -> None:
    """Drops the table and the column; 0004's triggers come back; the role stays (cluster)."""
    if op.get_bind().dialect.name == "postgresql":
        import importlib

        roles = importlib.import_module("tafang.store.migrations.versions.0004_roles")
        op.execute(roles.RECORD_FN)
        op.execute(roles.CASE_FN)
        op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM tafang_field")
    op.drop_table("field_requests")
    with op.batch_alter_table("cases") as b:
        b.drop_column("self_found")
