"""PostgreSQL enforces what contributors.services.ownership_set guarantees: at the end of every transaction,
each work that still exists has owners summing to exactly 10,000 basis points. The trigger is deferred, so a
service may replace the owner set row by row inside one transaction. SQLite has no deferred triggers; there
the service alone enforces the rule.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION contributors_ownership_sum_check() RETURNS trigger AS $$
DECLARE
    work_ids bigint[];
    wid bigint;
    owners integer;
    total bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        work_ids := ARRAY[OLD.work_id];
    ELSIF TG_OP = 'UPDATE' AND OLD.work_id <> NEW.work_id THEN
        work_ids := ARRAY[OLD.work_id, NEW.work_id];
    ELSE
        work_ids := ARRAY[NEW.work_id];
    END IF;
    FOREACH wid IN ARRAY work_ids LOOP
        -- A work deleted in the same transaction (its rows cascade) has nothing left to check.
        CONTINUE WHEN NOT EXISTS (SELECT 1 FROM contributors_work WHERE id = wid);
        SELECT count(*), coalesce(sum(bps), 0) INTO owners, total FROM contributors_ownership WHERE work_id = wid;
        IF total <> 10000 THEN
            RAISE EXCEPTION 'ownership of work % sums to % basis points over % owner(s); it must be exactly 10000',
                wid, total, owners
                USING ERRCODE = 'check_violation', CONSTRAINT = 'ownership_sum_10000';
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS ownership_sum_10000 ON contributors_ownership;
CREATE CONSTRAINT TRIGGER ownership_sum_10000
    AFTER INSERT OR UPDATE OR DELETE ON contributors_ownership
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION contributors_ownership_sum_check();
"""

DROP = """
DROP TRIGGER IF EXISTS ownership_sum_10000 ON contributors_ownership;
DROP FUNCTION IF EXISTS contributors_ownership_sum_check();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # None: the "%" of RAISE is not a placeholder

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("contributors", "0002_optout_dispute"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP)),
    ]
