"""PostgreSQL, the system of record (ARCHITECTURE §9): engine, tables, migrations, a private cluster."""
