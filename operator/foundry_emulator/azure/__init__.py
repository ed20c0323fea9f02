"""The Azure emulator: Entra ID and ARM Microsoft.CognitiveServices over HTTPS, from a scenario file.

```python
scenario = load_scenario(default_scenario_path())
async with AzureEmulator(scenario, state_dir=path) as emu:
    emu.url, emu.ca_file, emu.tenant_id, emu.subscription_id, emu.client_id, emu.client_secret
```
"""

from .scenario import Scenario, ScenarioError, default_scenario_path, load_scenario, parse_scenario
from .server import AzureEmulator

__all__ = [
    "AzureEmulator",
    "Scenario",
    "ScenarioError",
    "default_scenario_path",
    "load_scenario",
    "parse_scenario",
]
