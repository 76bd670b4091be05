"""Messaging: chat between clients and pros, and the rules that keep contact details in it."""
