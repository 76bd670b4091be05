"""Credits to the shared platform accounts are rolled up in batches, not at each commit.

Since migration 0008 such lines waited in ``ledger_lines_pending`` for their own commit,
where a deferred trigger moved each into ``ledger_lines`` and so into its account's
balance. Every posting transaction then still locked the same few platform rows while it
committed, and paid for two trigger calls per line. Now the lines stay in the (logged)
table after the commit, and ``ledger_roll_up`` moves them in batches: the busiest rows
are no longer locked by postings at all. A shared account's balance is its stored
balance plus its waiting lines (``ledger_account_balances``); the balance check of every
entry still counts them (migration 0008), the non-negative CHECK cannot be broken by
them (only credits, or lines of accounts that may go negative, wait), and they become
ordinary immutable lines, with their running balance, when rolled up.

The outbox's NOTIFY trigger goes too: PostgreSQL commits notifying transactions one at a
time, through their disk flush, and every release defers a job. The application wakes
the relay after such commits instead (``kit.notify``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


# Migration 0008's trigger, restored by the downgrade.
APPLY_AT_COMMIT = [
    """
    CREATE FUNCTION ledger_apply_pending() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        WITH moved AS (DELETE FROM ledger_lines_pending WHERE id = NEW.id RETURNING *)
        INSERT INTO ledger_lines (id, entry_id, account_id, currency, amount)
        SELECT id, entry_id, account_id, currency, amount FROM moved;
        RETURN NULL;
    END $$
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_lines_pending_apply AFTER INSERT ON ledger_lines_pending
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_apply_pending()
    """,
]


# ``ledger_post`` of migration 0008 (``roll_up`` empty), now rolling up the waiting lines
# of a platform account that must not go negative before debiting it.
LEDGER_POST = """
    CREATE OR REPLACE FUNCTION ledger_post(p_entry jsonb, p_legs jsonb) RETURNS uuid
    LANGUAGE plpgsql AS $$
    DECLARE
        v_entry ledger_entries := jsonb_populate_record(NULL::ledger_entries, p_entry);
        v_id uuid;
    BEGIN
        INSERT INTO ledger_entries SELECT v_entry.*
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id INTO v_id;
        IF v_id IS NULL THEN
            SELECT id INTO v_id FROM ledger_entries
            WHERE idempotency_key = v_entry.idempotency_key;
            RETURN v_id;
        END IF;
{roll_up}        WITH legs AS (
            SELECT * FROM jsonb_to_recordset(p_legs) AS l(
                line_id uuid, kind text, owner_id uuid, currency text, amount bigint,
                may_go_negative boolean, new_account_id uuid
            )
        ), resolved AS (
            -- COALESCE stops at the first found: the account is created only if missing.
            SELECT legs.*, coalesce(
                (SELECT id FROM ledger_accounts a WHERE a.kind = legs.kind
                    AND a.owner_id = legs.owner_id AND a.currency = legs.currency),
                (SELECT id FROM ledger_accounts a WHERE legs.owner_id IS NULL
                    AND a.kind = legs.kind AND a.owner_id IS NULL AND a.currency = legs.currency),
                ledger_account(legs.kind, legs.owner_id, legs.currency, legs.may_go_negative,
                               legs.new_account_id, v_entry.posted_at)
            ) AS account_id,
            -- A shared account, and a line that cannot break its CHECK: it waits for the
            -- roll-up (ledger_lines_pending), so no posting locks the busy row.
            legs.owner_id IS NULL AND (legs.amount > 0 OR legs.may_go_negative) AS at_commit
            FROM legs
        ), now_applied AS (
            INSERT INTO ledger_lines (id, entry_id, account_id, currency, amount)
            SELECT line_id, v_id, account_id, currency, amount FROM resolved
            WHERE NOT at_commit
            ORDER BY owner_id IS NULL, account_id
        )
        INSERT INTO ledger_lines_pending (id, entry_id, account_id, currency, amount)
        SELECT line_id, v_id, account_id, currency, amount FROM resolved
        WHERE at_commit
        ORDER BY account_id;
        RETURN v_id;
    END $$
"""

ROLL_UP_DEBITED = """
        -- A debit of a shared account that must not go negative (a correction of the
        -- platform's revenue or VAT) meets the account's full balance: its waiting
        -- lines are rolled up first. Postings that only credit them skip this.
        IF jsonb_path_exists(
            p_legs, '$[*] ? (@.owner_id == null && @.amount < 0 && @.may_go_negative == false)'
        ) THEN
            WITH debited AS (
                SELECT a.id FROM jsonb_to_recordset(p_legs) AS l(
                    kind text, owner_id uuid, currency text, amount bigint,
                    may_go_negative boolean
                )
                JOIN ledger_accounts a ON a.kind = l.kind AND a.owner_id IS NULL
                    AND a.currency = l.currency
                WHERE l.owner_id IS NULL AND l.amount < 0 AND NOT l.may_go_negative
            ), moved AS (
                DELETE FROM ledger_lines_pending p USING debited d
                WHERE p.account_id = d.id RETURNING p.*
            )
            INSERT INTO ledger_lines (id, entry_id, account_id, currency, amount)
            SELECT id, entry_id, account_id, currency, amount FROM moved
            ORDER BY account_id, id;
        END IF;
"""

# Migration 0001's wake-up, restored by the downgrade.
OUTBOX_NOTIFY = """
    CREATE FUNCTION mesteri_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('mesteri_outbox', '');
        RETURN NULL;
    END;
    $$;
    CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
        FOR EACH STATEMENT EXECUTE FUNCTION mesteri_outbox_notify();
"""


def upgrade() -> None:
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION mesteri_outbox_notify()")
    op.execute(LEDGER_POST.format(roll_up=ROLL_UP_DEBITED))
    op.execute("DROP TRIGGER ledger_lines_pending_apply ON ledger_lines_pending")
    op.execute("DROP FUNCTION ledger_apply_pending()")
    # The lines now outlive their transaction: they must survive a crash.
    op.execute("ALTER TABLE ledger_lines_pending SET LOGGED")
    # Up to p_limit waiting lines, oldest first (ids are time-ordered), into ledger_lines,
    # where the usual trigger moves each account's balance under its row lock; inserted
    # in account order, like every posting. Rows a concurrent roll-up holds are skipped.
    op.execute(
        """
        CREATE FUNCTION ledger_roll_up(p_limit integer) RETURNS integer
        LANGUAGE sql AS $$
            WITH batch AS (
                SELECT id FROM ledger_lines_pending ORDER BY id LIMIT p_limit
                FOR UPDATE SKIP LOCKED
            ), moved AS (
                DELETE FROM ledger_lines_pending p USING batch WHERE p.id = batch.id
                RETURNING p.*
            ), applied AS (
                INSERT INTO ledger_lines (id, entry_id, account_id, currency, amount)
                SELECT id, entry_id, account_id, currency, amount FROM moved
                ORDER BY account_id, id
                RETURNING 1
            )
            SELECT count(*)::integer FROM applied
        $$
        """
    )
    op.execute(
        """
        CREATE VIEW ledger_account_balances AS
        SELECT a.id, a.kind, a.owner_id, a.currency, a.may_go_negative,
               a.balance + coalesce(w.amount, 0) AS balance,
               coalesce(w.amount, 0) AS waiting
        FROM ledger_accounts a
        LEFT JOIN (
            SELECT account_id, sum(amount)::bigint AS amount
            FROM ledger_lines_pending GROUP BY account_id
        ) w ON w.account_id = a.id
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS ledger_account_balances")
    op.execute(LEDGER_POST.format(roll_up=""))
    op.execute("SELECT ledger_roll_up(2147483647)")
    op.execute("DROP FUNCTION IF EXISTS ledger_roll_up(integer)")
    op.execute("ALTER TABLE ledger_lines_pending SET UNLOGGED")
    for statement in APPLY_AT_COMMIT:
        op.execute(statement)
    op.execute(OUTBOX_NOTIFY)
