-- Each RPM blob's header signature as the reader saw it (what `rpm -K -v`
-- prints, e.g. "RSA/SHA256, key ID 199e2f91fd431d51") and the issuer's key
-- ID, so that the API shows who signed a package and a distribution can
-- require packages signed by given keys. Claims, not verified signatures.
-- (`parsed` is always JSON repod wrote, or NULL.)
ALTER TABLE blobs ADD COLUMN signature TEXT COLLATE "C";
ALTER TABLE blobs ADD COLUMN signature_key_id TEXT COLLATE "C";
UPDATE blobs SET signature = parsed::json ->> 'signature'
    WHERE format = 'rpm' AND parsed IS NOT NULL;
UPDATE blobs SET signature_key_id = lower(substr(signature, strpos(signature, 'key ID ') + 7, 16))
    WHERE strpos(signature, 'key ID ') > 0;
