"""Ledger postings and hold releases in one database call each.

``ledger_post`` writes an entry and its lines (creating accounts on first use) in one
round trip; ``hold_release`` writes everything a release decided in Python — the hold's
new state, its history row, wallet credits, transfers, outbox jobs — and posts the release
entry last, so the shared platform accounts are locked only from the end of the call to
the commit. The rules of migration 0002 stay where they are and still apply to every
line: the balance trigger under the account's row lock, the non-negative CHECK, the
deferred balance check and immutability.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 06:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


# The deferred balance check of migration 0002 (restored by the downgrade).
BALANCED = """
    CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (
            SELECT 1 FROM {lines} WHERE entry_id = NEW.entry_id
            GROUP BY currency HAVING sum(amount) <> 0
        ) THEN
            RAISE EXCEPTION 'ledger entry % does not balance', NEW.entry_id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
"""
PENDING_AND_POSTED = """(
                SELECT entry_id, currency, amount FROM ledger_lines
                UNION ALL
                SELECT entry_id, currency, amount FROM ledger_lines_pending
            ) AS lines"""


def upgrade() -> None:
    for statement in FUNCTIONS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS hold_release(jsonb)")
    op.execute("DROP FUNCTION IF EXISTS ledger_post(jsonb, jsonb)")
    op.execute(BALANCED.format(lines="ledger_lines"))
    op.execute("DROP TRIGGER IF EXISTS ledger_lines_pending_apply ON ledger_lines_pending")
    op.execute("DROP FUNCTION IF EXISTS ledger_apply_pending()")
    op.execute("DROP TABLE IF EXISTS ledger_lines_pending")
    op.execute(
        "DROP FUNCTION IF EXISTS ledger_account(text, uuid, text, boolean, uuid, timestamptz)"
    )


FUNCTIONS = [
    # Lines of shared platform accounts waiting for the commit. Every row lives only inside
    # its own transaction (a deferred trigger moves it into ledger_lines at commit), so
    # the table needs no WAL: it is always empty after a crash anyway.
    """
    CREATE UNLOGGED TABLE ledger_lines_pending (
        id uuid NOT NULL,
        entry_id uuid NOT NULL,
        account_id uuid NOT NULL,
        currency varchar(3) NOT NULL,
        amount bigint NOT NULL,
        CONSTRAINT pk_ledger_lines_pending PRIMARY KEY (id),
        CONSTRAINT ck_ledger_lines_pending_non_zero CHECK (amount <> 0)
    )
    """,
    "CREATE INDEX ix_ledger_lines_pending_entry_id ON ledger_lines_pending (entry_id)",
    # At commit, after the transaction's other deferred checks were queued: the line joins
    # ledger_lines, where the usual trigger moves the balance under the account's lock.
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
    # The balance check of migration 0002, counting lines still waiting for the commit.
    BALANCED.format(lines=PENDING_AND_POSTED),
    # The account of (kind, owner, currency), created on first use; a concurrent creator's
    # row wins. Two queries rather than IS NOT DISTINCT FROM, so both use the unique index.
    """
    CREATE FUNCTION ledger_account(
        p_kind text, p_owner uuid, p_currency text, p_may_go_negative boolean,
        p_new_id uuid, p_at timestamptz
    ) RETURNS uuid LANGUAGE plpgsql AS $$
    DECLARE
        v_id uuid;
    BEGIN
        FOR attempt IN 1..2 LOOP
            IF p_owner IS NULL THEN
                SELECT id INTO v_id FROM ledger_accounts
                WHERE kind = p_kind AND owner_id IS NULL AND currency = p_currency;
            ELSE
                SELECT id INTO v_id FROM ledger_accounts
                WHERE kind = p_kind AND owner_id = p_owner AND currency = p_currency;
            END IF;
            EXIT WHEN v_id IS NOT NULL OR attempt = 2;
            INSERT INTO ledger_accounts (id, kind, owner_id, currency, may_go_negative, created_at)
            VALUES (p_new_id, p_kind, p_owner, p_currency, p_may_go_negative, p_at)
            ON CONFLICT DO NOTHING
            RETURNING id INTO v_id;
            EXIT WHEN v_id IS NOT NULL;
        END LOOP;
        RETURN v_id;
    END $$
    """,
    # One entry (a ledger_entries row as JSON) and its legs; a repeated idempotency key
    # returns the first entry's id and moves nothing. Lines are inserted in the global
    # lock order — owned accounts first, then the shared platform accounts, each by id (an
    # INSERT … SELECT … ORDER BY inserts, and so locks, in the sorted order) — so
    # concurrent postings lock account rows in the same order (no deadlocks) and the
    # busiest rows are locked last; the deferred ones at commit, in the same order.
    """
    CREATE FUNCTION ledger_post(p_entry jsonb, p_legs jsonb) RETURNS uuid
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
        WITH legs AS (
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
            -- A shared account, and a line that cannot break its CHECK: applied at commit
            -- (ledger_lines_pending), so the busy row is locked only then.
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
    """,
    # A release as decided by payments.service.release, as one JSON document: the rows
    # in their tables' own shapes (one statement; no row depends on another), then the
    # entry. Nothing here decides anything.
    """
    CREATE FUNCTION hold_release(p jsonb) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        WITH hold AS (
            UPDATE holds SET
                state = p #>> '{hold,state}',
                released = (p #>> '{hold,released}')::bigint,
                settlement = p #> '{hold,settlement}',
                updated_at = (p #>> '{hold,updated_at}')::timestamptz
            WHERE id = (p #>> '{hold,id}')::uuid
        ), history AS (
            INSERT INTO state_transitions
            SELECT * FROM jsonb_populate_recordset(NULL::state_transitions, p -> 'history')
        ), credits AS (
            INSERT INTO wallet_credits
            SELECT * FROM jsonb_populate_recordset(NULL::wallet_credits, p -> 'credits')
        ), transfers AS (
            INSERT INTO transfers
            SELECT * FROM jsonb_populate_recordset(NULL::transfers, p -> 'transfers')
        )
        INSERT INTO outbox SELECT * FROM jsonb_populate_recordset(NULL::outbox, p -> 'jobs');
        IF jsonb_typeof(p -> 'posting') = 'object' THEN
            PERFORM ledger_post(p #> '{posting,entry}', p #> '{posting,legs}');
        END IF;
    END $$
    """,
]
