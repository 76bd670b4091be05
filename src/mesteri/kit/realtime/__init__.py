"""Live events for browsers and apps over WebSockets, across every api process.

- ``publish(session, users, type, data)`` inside a transaction puts the event in each
  user's stream (``streams``): a per-user sequence, so a client that reconnects says the
  last event id it saw and gets exactly what it missed.
- At commit the events go to every api process through a broker (``brokers``):
  PostgreSQL LISTEN/NOTIFY by default, Redis pub/sub when ``MESTERI_REDIS_URL`` is set.
- Each api process runs one ``Hub`` (``hub``) that hands events to its own WebSocket
  connections, in order, through bounded queues; a slow client is closed, never waited for.
- ``broadcast`` sends events that are not kept (typing, presence) at once.
"""

from mesteri.kit.realtime.brokers import Broker, configure, current_broker
from mesteri.kit.realtime.hub import (
    CLOSE_AUTH,
    CLOSE_SESSION_ENDED,
    CLOSE_TOO_SLOW,
    Connection,
    Hub,
)
from mesteri.kit.realtime.streams import (
    Event,
    RealtimeEvent,
    RealtimeStream,
    backlog,
    broadcast,
    close_sessions,
    last_event_id,
    notify_stored_sql,
    publish,
    send_stored,
)

__all__ = [
    "CLOSE_AUTH",
    "CLOSE_SESSION_ENDED",
    "CLOSE_TOO_SLOW",
    "Broker",
    "Connection",
    "Event",
    "Hub",
    "RealtimeEvent",
    "RealtimeStream",
    "backlog",
    "broadcast",
    "close_sessions",
    "configure",
    "current_broker",
    "last_event_id",
    "notify_stored_sql",
    "publish",
    "send_stored",
]
