-- The upstream an agent key is used with (Settings → Agent: a gateway in front of the
-- model API); NULL: the deployment's default. Not a secret.
ALTER TABLE credentials ADD COLUMN base_url TEXT;
