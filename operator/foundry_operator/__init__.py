"""foundry-operator: Azure AI Foundry model deployments as Kubernetes resources."""

__version__ = "0.1.0"
