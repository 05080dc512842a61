"""PostgreSQL holds the line: group roles, GRANTs, and triggers on the record and cases.

Group roles (NOLOGIN): tafang_viewer (SELECT only), tafang_dispatcher, tafang_supervisor,
tafang_checker (write cases, officers and the record, never UPDATE/DELETE a record entry),
tafang_admin (reads; config, roster and audit live outside the database), tafang_daemon (the
only role that writes escalations and delivers the outbox). Operators' login roles get one
of them with `tafang db grant LOGIN ROLE`, which also writes tafang_auth.logins (login ->
operator code and role), the map the triggers read.

The triggers compare what a session writes with who the session is (`session_user`): a record
entry or case change under another operator's name is refused; a blank operator is stamped;
closing needs a checker or supervisor who neither dispatched nor handled the case (监管分离).
Superusers are exempt by PostgreSQL's nature (they may also drop triggers); the record's hash
chain still shows any edit. Roles are cluster-wide, so creating them tolerates a concurrent
creator (duplicate_object / unique_violation). On SQLite this migration does nothing.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

GROUPS = ("viewer", "dispatcher", "supervisor", "checker", "admin", "daemon")
WORKERS = "tafang_dispatcher, tafang_supervisor, tafang_checker"
EVERYONE = ", ".join(f"tafang_{g}" for g in GROUPS)
DAEMON_NAMES = "('daemon', 'system', 'feed')"

SELF = f"""
  me text := session_user;
  mine text;
BEGIN
  IF (SELECT rolsuper FROM pg_roles WHERE rolname = me) THEN RETURN NEW; END IF;
  SELECT operator INTO mine FROM tafang_auth.logins WHERE login = me;
  IF pg_has_role(me, 'tafang_daemon', 'MEMBER') AND NEW.{{col}} IN {DAEMON_NAMES} THEN
    RETURN NEW;
  END IF;
  IF mine IS NULL THEN
    RAISE EXCEPTION 'tafang: login % is not on the roster (ask an admin: tafang db grant)', me
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.{{col}} IS NULL OR NEW.{{col}} = '' THEN
    NEW.{{col}} := mine;
  ELSIF NEW.{{col}} <> mine THEN
    RAISE EXCEPTION 'tafang: login % is operator %, not %: nobody acts as someone else',
      me, mine, NEW.{{col}} USING ERRCODE = 'insufficient_privilege';
  END IF;
"""

RECORD_FN = f"""
CREATE OR REPLACE FUNCTION tafang_record_operator() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE {SELF.format(col="operator")}
  RETURN NEW;
END $$;
"""

CASE_FN = f"""
CREATE OR REPLACE FUNCTION tafang_case_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE {SELF.format(col="updated_by")}
  IF TG_OP = 'UPDATE' AND NEW.status = 'closed' AND OLD.status <> 'closed' THEN
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
END $$;
"""


def _create_group(name: str) -> None:
    """CREATE ROLE … NOLOGIN unless it exists; another database's migration may race us."""
    op.execute(
        f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
    BEGIN
      CREATE ROLE {name} NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
END $$;
"""
    )


def _grants() -> None:
    """What each group may do; nobody but superusers may UPDATE or DELETE the record."""
    for stmt in (
        "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public, tafang_auth TO {EVERYONE}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {EVERYONE}",
        f"GRANT SELECT ON tafang_auth.logins TO {EVERYONE}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {WORKERS}, tafang_daemon",
        f"GRANT INSERT, UPDATE ON cases, officers TO {WORKERS}, tafang_daemon",
        f"GRANT UPDATE ON audit_head TO {WORKERS}, tafang_daemon",
        f"GRANT INSERT ON audit, dead_letters TO {WORKERS}, tafang_daemon",
        # A hand escalation enqueues its notice; delivering it (UPDATE) is the daemon's.
        f"GRANT INSERT ON outbox TO {WORKERS}",
        "GRANT INSERT, UPDATE, DELETE ON escalations, outbox, notify_sends, heartbeats, "
        "feed_cursors TO tafang_daemon",
    ):
        op.execute(stmt)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for g in GROUPS:
        _create_group(f"tafang_{g}")
    op.execute("CREATE SCHEMA IF NOT EXISTS tafang_auth")
    op.execute(
        "CREATE TABLE IF NOT EXISTS tafang_auth.logins ("
        "login text PRIMARY KEY, operator text NOT NULL, role text NOT NULL)"
    )
    _grants()
    op.execute(RECORD_FN)
    op.execute(CASE_FN)
    op.execute(
        "CREATE TRIGGER tafang_record_operator BEFORE INSERT ON audit "
        "FOR EACH ROW EXECUTE FUNCTION tafang_record_operator()"
    )
    op.execute(
        "CREATE TRIGGER tafang_case_guard BEFORE INSERT OR UPDATE ON cases "
        "FOR EACH ROW EXECUTE FUNCTION tafang_case_guard()"
    )


def downgrade() -> None:
    """Drops the triggers and the login map; the cluster-wide roles stay (other databases)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS tafang_case_guard ON cases")
    op.execute("DROP TRIGGER IF EXISTS tafang_record_operator ON audit")
    op.execute("DROP FUNCTION IF EXISTS tafang_case_guard()")
    op.execute("DROP FUNCTION IF EXISTS tafang_record_operator()")
    op.execute("DROP SCHEMA IF EXISTS tafang_auth CASCADE")
