"""Ledger postings and hold releases in one database call each.

``ledger_post`` writes an entry and its lines (creating accounts on first use) in one
round trip; ``hold_release`` writes everything a release decided in Python — the hold's
new state, its history row, wallet credits, transfers, outbox jobs — and posts the release
entry last, so the shared platform accounts are locked only from the end of the call to
the commit. The rules of migration 0002 stay where they are and still apply to every
line: the balance trigger under the account's row lock, the non-negative CHECK, the
deferred balance check and immutability.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-02 06:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in FUNCTIONS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS hold_release(jsonb, jsonb, jsonb, jsonb, jsonb, jsonb)")
    op.execute("DROP FUNCTION IF EXISTS ledger_post(jsonb, jsonb)")
    op.execute(
        "DROP FUNCTION IF EXISTS ledger_account(text, uuid, text, boolean, uuid, timestamptz)"
    )


FUNCTIONS = [
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
    # returns the first entry's id and moves nothing. Lines are inserted one by one in the
    # global lock order — owned accounts first, then the shared platform accounts, each by
    # id — so concurrent postings lock account rows in the same order (no deadlocks) and
    # the busiest rows are locked last.
    """
    CREATE FUNCTION ledger_post(p_entry jsonb, p_legs jsonb) RETURNS uuid
    LANGUAGE plpgsql AS $$
    DECLARE
        v_entry ledger_entries := jsonb_populate_record(NULL::ledger_entries, p_entry);
        v_id uuid;
        v_line record;
    BEGIN
        INSERT INTO ledger_entries SELECT v_entry.*
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING id INTO v_id;
        IF v_id IS NULL THEN
            SELECT id INTO v_id FROM ledger_entries
            WHERE idempotency_key = v_entry.idempotency_key;
            RETURN v_id;
        END IF;
        FOR v_line IN
            SELECT l.line_id, l.currency, l.amount, l.owner_id,
                   ledger_account(l.kind, l.owner_id, l.currency, l.may_go_negative,
                                  l.new_account_id, v_entry.posted_at) AS account_id
            FROM jsonb_to_recordset(p_legs) AS l(
                line_id uuid, kind text, owner_id uuid, currency text, amount bigint,
                may_go_negative boolean, new_account_id uuid
            )
            ORDER BY l.owner_id IS NULL, account_id
        LOOP
            INSERT INTO ledger_lines (id, entry_id, account_id, currency, amount)
            VALUES (v_line.line_id, v_id, v_line.account_id, v_line.currency, v_line.amount);
        END LOOP;
        RETURN v_id;
    END $$
    """,
    # A release as decided by payments.service.release: the rows are given in their
    # tables' own shapes (JSON), the entry goes last. Nothing here decides anything.
    """
    CREATE FUNCTION hold_release(
        p_hold jsonb, p_history jsonb, p_credits jsonb, p_transfers jsonb, p_jobs jsonb,
        p_posting jsonb
    ) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE holds SET
            state = p_hold ->> 'state',
            released = (p_hold ->> 'released')::bigint,
            settlement = p_hold -> 'settlement',
            updated_at = (p_hold ->> 'updated_at')::timestamptz
        WHERE id = (p_hold ->> 'id')::uuid;
        INSERT INTO state_transitions
        SELECT * FROM jsonb_populate_recordset(NULL::state_transitions, p_history);
        INSERT INTO wallet_credits
        SELECT * FROM jsonb_populate_recordset(NULL::wallet_credits, p_credits);
        INSERT INTO transfers
        SELECT * FROM jsonb_populate_recordset(NULL::transfers, p_transfers);
        IF jsonb_array_length(p_jobs) > 0 THEN  -- the outbox's NOTIFY trigger only if needed
            INSERT INTO outbox SELECT * FROM jsonb_populate_recordset(NULL::outbox, p_jobs);
        END IF;
        IF p_posting IS NOT NULL THEN
            PERFORM ledger_post(p_posting -> 'entry', p_posting -> 'legs');
        END IF;
    END $$
    """,
]
