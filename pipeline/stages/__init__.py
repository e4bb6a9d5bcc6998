"""The five stages as plain functions (their order: `pipeline.models.STAGES`); `batch.run_batch`
applies one to a batch of items."""
