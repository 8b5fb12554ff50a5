-- API tokens. Only the SHA-256 of a token is stored; the token itself is
-- shown once, when it is created.
CREATE TABLE tokens (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    role TEXT COLLATE "C" NOT NULL CHECK (role IN ('reader', 'uploader', 'maintainer', 'admin')),
    token_sha256 TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
