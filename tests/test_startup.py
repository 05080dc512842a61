"""Start-up: alembic is imported only when a migration is due (DESIGN §5: first frame ≤ 1.5 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tafang.store import db


def test_script_head_matches_alembic() -> None:
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine

    cfg = db.alembic_config(create_engine("sqlite://"))
    assert db.script_head() == ScriptDirectory.from_config(cfg).get_current_head()


def test_opening_a_migrated_store_does_not_import_alembic(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db.make_engine(f"sqlite:///{path}").dispose()  # created and migrated here
    probe = (
        "import sys\n"
        "from tafang.store.db import make_engine, stored_revision, script_head\n"
        f"e = make_engine({str(path)!r})\n"
        "assert stored_revision(e) == script_head(), stored_revision(e)\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_store_behind_head_is_still_migrated(tmp_path: Path) -> None:
    """A store made by an older release (schema at 0003, with a case in it) opens at head."""
    from alembic import command
    from sqlalchemy import text

    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}", upgrade=False)
    command.upgrade(db.alembic_config(engine), "0003")
    assert db.stored_revision(engine) == "0003"
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cases (source, external_id, title, description, location, priority,"
                " reporter, raw, triage, triage_reason, status, escalation_level, supervised,"
                " version, received_at, updated_at, updated_by, updated_terminal, updated_seq)"
                " VALUES ('hotline', 'old-1', 'old', '', '', 'normal', '', '{}', 0, '', 'new',"
                " 0, 0, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'd01', 't', 1)"
            )
        )
    assert db.upgrade_db(engine) == db.script_head()
    assert db.stored_revision(engine) == db.script_head()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT title FROM cases")).scalar_one() == "old"
    engine.dispose()
