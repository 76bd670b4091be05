"""Cross-cutting building blocks. Nothing here knows about a business domain."""
