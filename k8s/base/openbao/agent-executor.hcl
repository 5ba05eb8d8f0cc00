# The OpenBao agent beside the executor (a native sidecar): it logs in with the
# pod's projected service-account token (audience openbao) as the role quoteflow-executor and
# proxies the app's requests on 127.0.0.1:8200, putting its own token on every one
# ("force"), so the app holds no credential at all (its VAULT_TOKEN is a placeholder).
pid_file = "/tmp/agent.pid"
vault {
  address = "http://openbao:8200"
}
auto_auth {
  method "kubernetes" {
    mount_path = "auth/kubernetes"
    config = {
      role       = "quoteflow-executor"
      token_path = "/var/run/secrets/openbao/token"
    }
  }
}
cache {}
api_proxy {
  use_auto_auth_token = "force"
}
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
