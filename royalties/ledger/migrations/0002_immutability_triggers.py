"""The database itself refuses to change the ledger's history, whatever client connects.

PostgreSQL: UPDATE and DELETE of journal entries, postings, accrual detail, accounts and program terms are
refused by row triggers; a closed period can no longer change or be deleted; rows cannot be inserted into
a closed period. Whole-table TRUNCATE is an owner's privilege and is not trapped (the test runner's
database flush uses it); production gives the application role no TRUNCATE privilege.

SQLite: the same UPDATE and closed-period triggers. Row DELETE is not trapped there, because SQLite has no
TRUNCATE: Django's database flush (tests, ``manage.py flush``) empties tables with ``DELETE FROM``. The ORM
still refuses deletes on both databases, and ``check_ledger`` detects rows missing behind an entry by its
content hash.

A later migration that makes SQLite rebuild one of these tables (adding a constraint, altering a column)
drops its triggers with the old table: it must re-create them, as 0003 does. check_ledger reports any
missing trigger.
"""

from django.db import migrations

APPEND_ONLY = [
    "ledger_journalentry",
    "ledger_posting",
    "ledger_accrual",
    "ledger_account",
    "ledger_royaltyprogramterms",
]

PG_CREATE = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % on % refused: ledger history is append-only (post a reversal entry instead)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ledger_period_guard() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'closed' THEN
        RAISE EXCEPTION 'ledger: period % is closed: it can no longer change or be deleted', OLD.day
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ledger_entry_open_period() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_period WHERE id = NEW.period_id AND status = 'closed') THEN
        RAISE EXCEPTION 'ledger: period % is closed: nothing more can be posted to it', NEW.period_id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- Statement-level with a transition table: one check per bulk insert of postings, not one per row.
CREATE OR REPLACE FUNCTION ledger_posting_open_period() RETURNS trigger AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM new_rows n
        JOIN ledger_journalentry e ON e.id = n.entry_id
        JOIN ledger_period p ON p.id = e.period_id
        WHERE p.status = 'closed'
    ) THEN
        RAISE EXCEPTION 'ledger: postings into an entry of a closed period are refused'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ledger_accrual_open_period() RETURNS trigger AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM new_rows n
        JOIN ledger_journalentry e ON e.id = n.journal_entry_id
        JOIN ledger_period p ON p.id = e.period_id
        WHERE p.status = 'closed'
    ) THEN
        RAISE EXCEPTION 'ledger: accrual detail into an entry of a closed period is refused'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
""" + "".join(
    f"""
CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""
    for table in APPEND_ONLY
) + """
CREATE TRIGGER ledger_period_closed_final BEFORE UPDATE OR DELETE ON ledger_period
    FOR EACH ROW EXECUTE FUNCTION ledger_period_guard();
CREATE TRIGGER ledger_journalentry_open_period BEFORE INSERT ON ledger_journalentry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_open_period();
CREATE TRIGGER ledger_posting_open_period AFTER INSERT ON ledger_posting
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_posting_open_period();
CREATE TRIGGER ledger_accrual_open_period AFTER INSERT ON ledger_accrual
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_accrual_open_period();
"""

PG_DROP = "".join(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table};\n" for table in APPEND_ONLY) + """
DROP TRIGGER IF EXISTS ledger_period_closed_final ON ledger_period;
DROP TRIGGER IF EXISTS ledger_journalentry_open_period ON ledger_journalentry;
DROP TRIGGER IF EXISTS ledger_posting_open_period ON ledger_posting;
DROP TRIGGER IF EXISTS ledger_accrual_open_period ON ledger_accrual;
DROP FUNCTION IF EXISTS ledger_refuse_change();
DROP FUNCTION IF EXISTS ledger_period_guard();
DROP FUNCTION IF EXISTS ledger_entry_open_period();
DROP FUNCTION IF EXISTS ledger_posting_open_period();
DROP FUNCTION IF EXISTS ledger_accrual_open_period();
"""

# SQLite runs one statement per execute() call, so these are lists.
SQLITE_CREATE = [
    f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'ledger: UPDATE on {table} refused: ledger history is append-only'); END"""
    for table in APPEND_ONLY
] + [
    """CREATE TRIGGER ledger_period_closed_final BEFORE UPDATE ON ledger_period WHEN OLD.status = 'closed'
BEGIN SELECT RAISE(ABORT, 'ledger: a closed period can no longer change'); END""",
    """CREATE TRIGGER ledger_journalentry_open_period BEFORE INSERT ON ledger_journalentry
WHEN (SELECT status FROM ledger_period WHERE id = NEW.period_id) = 'closed'
BEGIN SELECT RAISE(ABORT, 'ledger: period is closed: nothing more can be posted to it'); END""",
    """CREATE TRIGGER ledger_posting_open_period BEFORE INSERT ON ledger_posting
WHEN (SELECT p.status FROM ledger_journalentry e JOIN ledger_period p ON p.id = e.period_id
      WHERE e.id = NEW.entry_id) = 'closed'
BEGIN SELECT RAISE(ABORT, 'ledger: postings into an entry of a closed period are refused'); END""",
    """CREATE TRIGGER ledger_accrual_open_period BEFORE INSERT ON ledger_accrual
WHEN (SELECT p.status FROM ledger_journalentry e JOIN ledger_period p ON p.id = e.period_id
      WHERE e.id = NEW.journal_entry_id) = 'closed'
BEGIN SELECT RAISE(ABORT, 'ledger: accrual detail into an entry of a closed period is refused'); END""",
]

SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {table}_no_update" for table in APPEND_ONLY] + [
    "DROP TRIGGER IF EXISTS ledger_period_closed_final",
    "DROP TRIGGER IF EXISTS ledger_journalentry_open_period",
    "DROP TRIGGER IF EXISTS ledger_posting_open_period",
    "DROP TRIGGER IF EXISTS ledger_accrual_open_period",
]


def _run(pg_sql, sqlite_sql):
    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(pg_sql, params=None)  # None: the "%" of RAISE is not a placeholder
        elif vendor == "sqlite":
            for statement in sqlite_sql:
                schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("ledger", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(_run(PG_CREATE, SQLITE_CREATE), _run(PG_DROP, SQLITE_DROP)),
    ]
