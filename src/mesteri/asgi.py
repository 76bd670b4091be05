"""ASGI entry point for process managers (``uvicorn mesteri.asgi:app --workers N``).

Needs ``MESTERI_DATABASE_URL``; the embedded database is for the all-in-one ``run``.
"""

from mesteri.app import create_app

app = create_app()
