-- jg-hmac credential store, schema version 2: the database records which key-encryption
-- key (KEK) is current, so that `keys create`/`keys rotate` with another KEK are refused
-- instead of sealing a key that the verifiers cannot open.
--
-- One row at most (`singleton` is always true). Set by the first key sealed (create or
-- rotate) when the row is missing, and by every `rekey`. A database that already holds
-- keys takes the KEK of its newest key as current here; an empty one gets the row from
-- its first sealed key. Safe to run again: nothing is created or inserted twice.

CREATE TABLE IF NOT EXISTS jg_hmac.current_kek (
    singleton boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    kek_id    text        NOT NULL,
    set_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO jg_hmac.current_kek (kek_id)
SELECT kek_id FROM jg_hmac.keys ORDER BY created_at DESC, key_id DESC LIMIT 1
ON CONFLICT (singleton) DO NOTHING;
