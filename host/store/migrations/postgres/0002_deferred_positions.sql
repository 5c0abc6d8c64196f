-- Schema version 2: several hosts file at the same time and meet only to append to the
-- journal (host/store/src/engine.rs, `Scope`). While a batch files, the rows it writes name
-- their journal entries by provisional positions (negative, in a range of the batch's own:
-- -((token << 20) | k) - 1 for its k-th entry); under the journal lock the batch appends the
-- entries and rewrites those positions in one statement. No committed row ever holds a
-- negative position.

-- The rewrite finds the batch's rows by a range scan of these (also used to look rows up by
-- journal position).
CREATE INDEX messages_journal_idx ON messages (journal_idx);
CREATE INDEX citizens_created_idx ON citizens (created_idx);
CREATE INDEX versions_journal_idx ON document_versions (journal_idx);
CREATE INDEX reviews_opened_idx ON reviews (opened_idx);
CREATE INDEX deliveries_created_idx ON deliveries (created_idx);
CREATE INDEX deliveries_outcome_idx ON deliveries (outcome_idx);

-- A document version stays immutable; the one change allowed is its provisional journal
-- position becoming the real one, in the transaction that wrote it.
DROP TRIGGER versions_immutable ON document_versions;
CREATE TRIGGER versions_no_delete BEFORE DELETE ON document_versions
    FOR EACH ROW EXECUTE FUNCTION efile_refuse('document versions are immutable');
CREATE TRIGGER versions_immutable BEFORE UPDATE ON document_versions FOR EACH ROW
    WHEN (OLD.journal_idx >= 0 OR NEW.journal_idx < 0
          OR NEW.id IS DISTINCT FROM OLD.id OR NEW.document_id IS DISTINCT FROM OLD.document_id
          OR NEW.version IS DISTINCT FROM OLD.version OR NEW.content_digest IS DISTINCT FROM OLD.content_digest)
    EXECUTE FUNCTION efile_refuse('document versions are immutable');

-- Likewise a review item's opening entry.
DROP TRIGGER reviews_decided_once ON reviews;
CREATE TRIGGER reviews_decided_once BEFORE UPDATE ON reviews FOR EACH ROW
    WHEN (OLD.decided_idx IS NOT NULL OR NEW.content_digest IS DISTINCT FROM OLD.content_digest
          OR (NEW.opened_idx IS DISTINCT FROM OLD.opened_idx AND (OLD.opened_idx >= 0 OR NEW.opened_idx < 0)))
    EXECUTE FUNCTION efile_refuse('a review item is decided once');
