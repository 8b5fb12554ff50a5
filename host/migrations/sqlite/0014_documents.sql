-- Documents a distribution publishes whole beside its package indexes (an
-- rpm-md comps.xml), set through the API: the current one per
-- (distribution, name). Not part of repository versions: a pinned tree
-- shows the current document.
CREATE TABLE distribution_documents (
    distribution TEXT NOT NULL,
    name TEXT NOT NULL,
    content TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (distribution, name)
);
