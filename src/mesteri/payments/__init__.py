"""Escrow payments: the double-entry ledger, holds, wallets, payouts and providers."""
