"""The bounce and reply mailbox (docs/architecture.md: "Edges"): an IMAP poller that turns replies, auto-replies,
DSNs and ARF complaints into status updates on the events they answer.

Kept import-light on purpose: `pipeline.config` imports `pipeline.config.inbox`, so nothing
here may import the config, the stages or the bounce parser at module level.
"""
