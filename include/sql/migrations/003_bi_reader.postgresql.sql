-- The read-only role BI tools use: SELECT on the mart schema and nothing else.
-- Roles belong to the server, not the database: create it once, grant per database.
-- Give a tool a login with: CREATE ROLE superset LOGIN PASSWORD '...' IN ROLE mou_bi_reader;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mou_bi_reader') THEN
        CREATE ROLE mou_bi_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object THEN
    NULL;  -- created concurrently by another database's migration
END
$$;
GRANT USAGE ON SCHEMA mart TO mou_bi_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA mart TO mou_bi_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA mart GRANT SELECT ON TABLES TO mou_bi_reader;
REVOKE ALL ON SCHEMA ops, core, quarantine FROM PUBLIC;
