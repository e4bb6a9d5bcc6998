"""PostgreSQL, the system of record (docs/architecture.md: "Stores"): engine, tables, migrations, a private cluster."""
