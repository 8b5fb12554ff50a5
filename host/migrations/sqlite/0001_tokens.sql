-- API tokens. Only the SHA-256 of a token is stored; the token itself is
-- shown once, when it is created.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('reader', 'uploader', 'maintainer', 'admin')),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
