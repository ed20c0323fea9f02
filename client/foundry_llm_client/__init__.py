"""foundry-llm-client: from the llm-config ConfigMap to a working OpenAI SDK client.

```python
from foundry_llm_client import FoundryClients

clients = FoundryClients()            # llm-config from the environment or FOUNDRY_LLM_CONFIG_DIR
decision = clients.get("DECISION")    # FOUNDRY_ENDPOINT_DECISION, else FOUNDRY_ENDPOINT
decision.client.responses.create(model=decision.model, input="...")
```
"""

from .clients import AsyncModelClient, FoundryClients, ModelClient
from .config import LlmConfig, LlmConfigError, Target, normalize_key

__all__ = [
    "AsyncModelClient",
    "FoundryClients",
    "LlmConfig",
    "LlmConfigError",
    "ModelClient",
    "Target",
    "normalize_key",
]
