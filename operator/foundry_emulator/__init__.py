"""Local emulators of the services foundry-operator talks to: Azure (Entra ID + ARM) and a Kubernetes API."""
