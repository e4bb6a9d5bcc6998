"""The account registry the workers read: each tenant's accounts and routes as one cached snapshot.

Sources are the TOML's declared accounts (tenant `default`, when no database is configured) or the
PostgreSQL registry the control plane writes. Workers never read the database per message: they
hold a snapshot per tenant, dropped when the tenant's version changes.
"""
