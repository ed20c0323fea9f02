"""`foundry-operator check` and `foundry-operator catalog`: the preflight of manifests, before they are applied.

manifests (read and validate YAML) -> sources (live Azure or a catalog snapshot) -> gather (the
facts the manifests need) -> check (pure: placement of every deployment) -> render (table, JSON,
YAML). `command` ties them together and decides the exit code.
"""
