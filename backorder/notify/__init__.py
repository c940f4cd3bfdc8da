"""Notifications: notices decided from events (``rules``), rendered from
templates a site can override (``render``), delivered through the journal's outbox by the
notifier actor (``notifier``) over pluggable channels (``smtp``, ``webhook``, ``filedrop``)."""
