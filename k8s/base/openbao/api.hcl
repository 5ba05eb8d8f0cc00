# quoteflow-api: add, list (masked), delete; cannot decrypt (docs/secrets.md).
path "secret/data/quoteflow/*"                       { capabilities = ["create", "read"] }
path "secret/metadata/quoteflow/*"                   { capabilities = ["list", "delete"] }
path "transit/datakey/plaintext/quoteflow-exchange-keys" { capabilities = ["update"] }
