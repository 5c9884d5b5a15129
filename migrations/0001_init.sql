-- jg-hmac credential store, schema version 1.
-- Applied by `jg-hmac db migrate` or jg_hmac::postgres::migrate, inside one transaction,
-- and recorded in jg_hmac.schema_migrations.

CREATE TABLE jg_hmac.clients (
    client_id   text        PRIMARY KEY
                            CHECK (client_id ~ '^[A-Za-z0-9_.-]{1,128}$'),
    environment text        NOT NULL CHECK (environment IN ('live', 'test')),
    scopes      text[]      NOT NULL DEFAULT '{}',
    disabled    boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per secret. The secret itself is never stored: `ciphertext` is the secret
-- sealed with AES-256-GCM under the key-encryption key named by `kek_id`, with `nonce`,
-- and with the client id and key id as associated data.
CREATE TABLE jg_hmac.keys (
    client_id   text        NOT NULL REFERENCES jg_hmac.clients (client_id),
    key_id      text        NOT NULL CHECK (key_id ~ '^[A-Za-z0-9_.-]{1,128}$'),
    kek_id      text        NOT NULL,
    nonce       bytea       NOT NULL,
    ciphertext  bytea       NOT NULL,
    not_before  timestamptz,
    not_after   timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, key_id)
);

-- Who did what, when. Append-only: UPDATE, DELETE and TRUNCATE are refused.
CREATE TABLE jg_hmac.key_events (
    event_id   bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    event      text        NOT NULL,
    client_id  text        NOT NULL,
    key_id     text,
    actor      text        NOT NULL,
    detail     text
);
CREATE INDEX key_events_client ON jg_hmac.key_events (client_id, at);

CREATE FUNCTION jg_hmac.key_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'jg_hmac.key_events is append-only';
END;
$$;

CREATE TRIGGER key_events_no_update BEFORE UPDATE OR DELETE ON jg_hmac.key_events
    FOR EACH ROW EXECUTE FUNCTION jg_hmac.key_events_append_only();
CREATE TRIGGER key_events_no_truncate BEFORE TRUNCATE ON jg_hmac.key_events
    FOR EACH STATEMENT EXECUTE FUNCTION jg_hmac.key_events_append_only();
