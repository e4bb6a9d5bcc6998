"""What comes back after sending: provider webhooks, replies, click tracking, unsubscribe tokens."""
