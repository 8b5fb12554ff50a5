-- A copy of an uploaded RPM that repod signed with the repository key (a
-- distribution with sign-packages): its own blob, naming the original it
-- was made from, which is kept while the copy is (catalog, retention).
ALTER TABLE blobs ADD COLUMN signed_from TEXT COLLATE "C";
CREATE INDEX blobs_signed_from ON blobs (signed_from);
