-- Each RPM blob's header signature as the reader saw it (what `rpm -K -v`
-- prints, e.g. "RSA/SHA256, key ID 199e2f91fd431d51") and the issuer's key
-- ID, so that the API shows who signed a package and a distribution can
-- require packages signed by given keys. Claims, not verified signatures.
ALTER TABLE blobs ADD COLUMN signature TEXT;
ALTER TABLE blobs ADD COLUMN signature_key_id TEXT;
UPDATE blobs SET signature = json_extract(parsed, '$.signature')
    WHERE format = 'rpm' AND json_valid(parsed);
UPDATE blobs SET signature_key_id = lower(substr(signature, instr(signature, 'key ID ') + 7, 16))
    WHERE instr(signature, 'key ID ') > 0;
