"""Worker processes: the broker, the stage actors, enqueueing between stages, the wire format, the sweeper."""
