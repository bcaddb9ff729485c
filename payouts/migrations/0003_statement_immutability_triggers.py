"""Issued statements and the entries they cover cannot be changed by any client of the database.

PostgreSQL: UPDATE and DELETE of ``payouts_statement`` and ``payouts_statemententry`` rows are refused by row
triggers (TRUNCATE, the test runner's flush, is an owner's privilege the application role does not get).
SQLite: UPDATE is refused; row DELETE is left to the ORM's refusal, because Django's flush empties tables
with ``DELETE FROM`` there. The ORM refuses both everywhere (payouts/models/statements.py).
"""

from django.db import migrations

TABLES = ["payouts_statement", "payouts_statemententry"]

PG_CREATE = """
CREATE OR REPLACE FUNCTION payouts_statement_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'payouts: % on % refused: an issued statement never changes', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
""" + "".join(
    f"""
CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION payouts_statement_refuse_change();
"""
    for table in TABLES
)

PG_DROP = "".join(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table};\n" for table in TABLES) + (
    "DROP FUNCTION IF EXISTS payouts_statement_refuse_change();\n"
)

SQLITE_CREATE = [
    f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
BEGIN SELECT RAISE(ABORT, 'payouts: UPDATE on {table} refused: an issued statement never changes'); END"""
    for table in TABLES
]
SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {table}_no_update" for table in TABLES]


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
        ("payouts", "0002_payout_runs_statements"),
    ]

    operations = [
        migrations.RunPython(_run(PG_CREATE, SQLITE_CREATE), _run(PG_DROP, SQLITE_DROP)),
    ]
