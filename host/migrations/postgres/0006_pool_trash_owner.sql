-- Pool files a re-preparation stopped naming are still listed by their
-- distribution's live tree until it is published again: such entries name
-- that distribution, and only its next publish empties them. NULL (what
-- retention writes): no live tree lists the file; empty it at once.
ALTER TABLE pool_trash ADD COLUMN after_publish_of TEXT COLLATE "C";
