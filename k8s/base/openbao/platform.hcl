# quoteflow-platform: the Vault Secrets Operator copies these into Kubernetes Secrets
# (grafana-oauth, grafana-admin, grafana-db, api-command-key, backup-s3); no exchange key is readable here.
path "secret/data/platform/*"                        { capabilities = ["read"] }
