# quoteflow-executor-OWNER: one executor trades one owner's account, so its service account
# reads and decrypts that owner's exchange keys and nothing else (docs/secrets.md lists the
# unscoped policy; configure.sh replaces OWNER with the [execute] owner).
path "secret/data/quoteflow/OWNER/*"                 { capabilities = ["read"] }
path "secret/metadata/quoteflow/OWNER/*"             { capabilities = ["list"] }
path "secret/metadata/quoteflow/OWNER/"              { capabilities = ["list"] }
path "transit/decrypt/quoteflow-exchange-keys"       { capabilities = ["update"] }
