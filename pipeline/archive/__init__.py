"""The delivery log: the events stream archived into PostgreSQL, its partitions, and reads from it."""
