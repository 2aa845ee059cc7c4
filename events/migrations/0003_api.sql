-- What the HTTP API keeps beside the log: API keys (only their hashes) and the responses of
-- requests sent with an Idempotency-Key. Neither is part of the event log; both change (a key
-- is revoked, a request completes), so the application role may update them.

CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    -- sha256 of the secret part; the secret itself is shown once, at creation, and never kept.
    secret_hash bytea NOT NULL,
    scopes      text[] NOT NULL CHECK (scopes <@ ARRAY['read', 'write', 'admin']::text[]),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

GRANT SELECT, INSERT, UPDATE ON api_keys TO diplofeed_app;

CREATE TABLE idempotency_keys (
    principal    text NOT NULL,
    key          text NOT NULL,
    -- sha256 of method, path and body: the same key with another request is refused.
    fingerprint  bytea NOT NULL,
    -- Who holds the request until it completes; a lease that ran out may be taken over, which
    -- is safe because the command itself is idempotent (its event ids derive from the key).
    lease_until  timestamptz NOT NULL,
    status       integer,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (principal, key)
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO diplofeed_app;
