-- A schema that uses every object kind a snapshot covers.
CREATE EXTENSION IF NOT EXISTS citext;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
COMMENT ON EXTENSION citext IS 'emails';
CREATE SCHEMA app;
COMMENT ON SCHEMA app IS 'the application';
CREATE COLLATION app."C" FROM "C";
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN app.email AS citext DEFAULT 'nobody@example.com' CHECK (VALUE ~ '@')
    NOT NULL;
CREATE DOMAIN app.code AS text COLLATE app."C";
CREATE TYPE app.point2 AS (x double precision, y double precision);
CREATE TYPE app.label AS (sorted text COLLATE "C", coded text COLLATE app."C", plain text);
CREATE TYPE app.floatrange AS RANGE (subtype = float8);
CREATE SEQUENCE app.ticket_seq AS integer START 100 INCREMENT 5 CACHE 10;
CREATE TABLE app.accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email app.email NOT NULL UNIQUE,
    name text COLLATE "C" DEFAULT 'anon',
    nickname text COLLATE app."C",
    mood app.mood NOT NULL DEFAULT 'ok',
    ticket integer DEFAULT nextval('app.ticket_seq'),
    balance numeric(12, 2) NOT NULL DEFAULT 0 CHECK (balance >= 0),
    name_length integer GENERATED ALWAYS AS (length(name)) STORED,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE app.ticket_seq OWNED BY app.accounts.ticket;
COMMENT ON TABLE app.accounts IS 'people who pay';
COMMENT ON COLUMN app.accounts.balance IS 'in euros';
CREATE UNLOGGED TABLE app.sessions (
    token uuid PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES app.accounts (id)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    during tstzrange,
    ttl interval NOT NULL DEFAULT '1 day 02:00:00',
    weight double precision DEFAULT 0.3333333333333333,
    salt bytea DEFAULT '\x00ff',
    EXCLUDE USING gist (token WITH =, during WITH &&)
) WITH (fillfactor = 70);
CREATE TABLE app.events (
    id bigint NOT NULL,
    at timestamptz NOT NULL,
    payload jsonb
) PARTITION BY RANGE (at);
CREATE TABLE app.events_2026 PARTITION OF app.events
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
ALTER TABLE app.accounts ADD CONSTRAINT accounts_name_not_empty
    CHECK (name <> '') NOT VALID;
CREATE INDEX accounts_created ON app.accounts (created_at DESC) WHERE mood <> 'sad';
CREATE INDEX events_payload ON app.events USING gin (payload);
CREATE VIEW app.happy_accounts AS SELECT id, email FROM app.accounts WHERE mood = 'happy';
CREATE MATERIALIZED VIEW app.account_counts AS SELECT mood, count(*) AS n FROM app.accounts GROUP BY mood;
CREATE MATERIALIZED VIEW app.pending AS SELECT id FROM app.accounts WITH NO DATA;
CREATE UNIQUE INDEX account_counts_mood ON app.account_counts (mood);
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := now();
    RETURN NEW;
END;
$$;
CREATE FUNCTION app.add(a integer, b integer DEFAULT 1) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE RETURN a + b;
CREATE PROCEDURE app.reset_mood(who bigint) LANGUAGE sql
    BEGIN ATOMIC UPDATE app.accounts SET mood = 'ok' WHERE id = who; END;
CREATE AGGREGATE app.total(integer) (SFUNC = int4pl, STYPE = integer, INITCOND = '0');
CREATE TRIGGER accounts_touch BEFORE INSERT ON app.accounts
    FOR EACH ROW EXECUTE FUNCTION app.touch();
ALTER TABLE app.accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_account ON app.accounts FOR SELECT TO PUBLIC
    USING (email = current_user::citext);
COMMENT ON POLICY own_account ON app.accounts IS 'each sees their own';
ALTER TABLE app.accounts REPLICA IDENTITY USING INDEX accounts_email_key;
ALTER TABLE app.sessions REPLICA IDENTITY FULL;
CREATE SERVER elsewhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname 'other');
CREATE FOREIGN TABLE app.remote_accounts (id bigint, email text)
    SERVER elsewhere OPTIONS (table_name 'accounts', schema_name 'app');
CREATE ROLE dbamgr_test_reader;
GRANT SELECT ON app.accounts TO dbamgr_test_reader;
GRANT UPDATE (name, nickname) ON app.accounts TO dbamgr_test_reader;
GRANT EXECUTE ON FUNCTION app.add(integer, integer) TO dbamgr_test_reader;
GRANT USAGE ON SEQUENCE app.ticket_seq TO dbamgr_test_reader;
GRANT USAGE ON TYPE app.mood TO dbamgr_test_reader;
GRANT USAGE, CREATE ON SCHEMA app TO dbamgr_test_reader;
ALTER VIEW app.happy_accounts OWNER TO dbamgr_test_reader;
-- last: they apply to the objects made after them
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO dbamgr_test_reader;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE dbamgr_test_reader IN SCHEMA app
    GRANT USAGE ON SEQUENCES TO PUBLIC;
