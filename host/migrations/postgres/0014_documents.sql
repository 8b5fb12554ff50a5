-- Documents a distribution publishes whole beside its package indexes (an
-- rpm-md comps.xml), set through the API: the current one per
-- (distribution, name). Not part of repository versions: a pinned tree
-- shows the current document.
CREATE TABLE distribution_documents (
    distribution TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    content TEXT COLLATE "C" NOT NULL,
    sha256 TEXT COLLATE "C" NOT NULL,
    updated_ms BIGINT NOT NULL,
    updated_by TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (distribution, name)
);
