"""The executor's edge to the venues: one async venue interface and its kinds, rate limiting,
retries, fault injection for tests, reconciliation and the executor itself."""
