"""Azure access: credentials, management clients, caches and the per-account write gate."""
