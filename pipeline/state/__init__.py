"""Hot state in Redis: event status, the send ledger, the suppression index, key names, script batching."""
