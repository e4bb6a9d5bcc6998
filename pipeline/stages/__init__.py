"""The five stages as plain functions; `batch.run_batch` applies one to a batch of items."""

STAGES = ("render", "route", "rate_limit", "send", "classify")
