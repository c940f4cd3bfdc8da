"""Governed multi-channel order intake: channel adapters turn a source's raw delivery into
the canonical order of ``order.submit``; ``governance`` runs the checks in a fixed order
(size, signature, parse, topic, validation); ``service`` queues deliveries with
back-pressure and records every outcome; ``http`` is the webhook listener."""
