"""Ready OpenAI SDK clients for llm-config keys, authenticated with Entra ID (or a key, locally)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI

from .config import LlmConfig, LlmConfigError, Target

SCOPE = "https://cognitiveservices.azure.com/.default"
API_KEY_VARIABLE = "FOUNDRY_API_KEY"  # local development only: the account's key
AZURE_OPENAI_API_VERSION = "2025-04-01-preview"  # has the Responses API
MODEL_INFERENCE_API_VERSION = "2024-05-01-preview"


@dataclass(frozen=True)
class ModelClient:
    """An OpenAI SDK client for one key, and the ``model`` to pass to it (the deployment name)."""

    target: Target
    client: OpenAI

    @property
    def model(self) -> str:
        return self.target.deployment


@dataclass(frozen=True)
class AsyncModelClient:
    target: Target
    client: AsyncOpenAI

    @property
    def model(self) -> str:
        return self.target.deployment


class FoundryClients:
    """``FoundryClients().get("DECISION")`` -> a ModelClient; call ``.client.chat.completions.create(
    model=mc.model, ...)`` or ``.client.responses.create(...)``.

    Auth: Entra ID through ``credential`` (default: azure-identity's DefaultAzureCredential, which
    covers workload identity, managed identity and AZURE_CLIENT_ID/AZURE_CLIENT_SECRET), with a token
    for https://cognitiveservices.azure.com that the SDK refreshes. ``api_key`` (or FOUNDRY_API_KEY)
    switches to key auth, for local development against one account.

    Networking follows the environment like any httpx client (HTTPS_PROXY, NO_PROXY, SSL_CERT_FILE);
    pass ``http_client``/``async_http_client`` to control it yourself. Clients are cached per
    resolved target, so asking again after llm-config changed returns a client for the new endpoint.
    """

    def __init__(
        self,
        config: LlmConfig | None = None,
        *,
        credential: Any = None,
        async_credential: Any = None,
        api_key: str | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        azure_api_version: str = AZURE_OPENAI_API_VERSION,
        inference_api_version: str = MODEL_INFERENCE_API_VERSION,
        max_retries: int = 2,
    ) -> None:
        self.config = config or LlmConfig.from_environment()
        self._credential = credential
        self._async_credential = async_credential
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_VARIABLE) or None
        self._http = http_client
        self._async_http = async_http_client
        self._azure_api_version = azure_api_version
        self._inference_api_version = inference_api_version
        self._max_retries = max_retries
        self._cache: dict[Target, ModelClient] = {}
        self._async_cache: dict[Target, AsyncModelClient] = {}

    def get(self, key: str) -> ModelClient:
        target = self.config.resolve(key)
        found = self._cache.get(target)
        if found is None:
            found = self._cache[target] = ModelClient(target, self._build(target))
        return found

    def get_async(self, key: str) -> AsyncModelClient:
        target = self.config.resolve(key)
        found = self._async_cache.get(target)
        if found is None:
            found = self._async_cache[target] = AsyncModelClient(target, self._build_async(target))
        return found

    # -- building ---------------------------------------------------------------------------------

    def _build(self, target: Target) -> OpenAI:
        common: dict[str, Any] = {"http_client": self._http, "max_retries": self._max_retries}
        if target.api_flavor == "openai":
            auth: dict[str, Any] = (
                {"api_key": self._api_key}
                if self._api_key
                else {"azure_ad_token_provider": self._token_provider()}
            )
            return AzureOpenAI(
                azure_endpoint=target.endpoint, api_version=self._azure_api_version, **auth, **common
            )
        return OpenAI(
            base_url=_inference_base(target),
            api_key=self._api_key or self._token_provider(),
            default_query={"api-version": self._inference_api_version},
            **common,
        )

    def _build_async(self, target: Target) -> AsyncOpenAI:
        common: dict[str, Any] = {"http_client": self._async_http, "max_retries": self._max_retries}
        if target.api_flavor == "openai":
            auth: dict[str, Any] = (
                {"api_key": self._api_key}
                if self._api_key
                else {"azure_ad_token_provider": self._async_token_provider()}
            )
            return AsyncAzureOpenAI(
                azure_endpoint=target.endpoint, api_version=self._azure_api_version, **auth, **common
            )
        return AsyncOpenAI(
            base_url=_inference_base(target),
            api_key=self._api_key or self._async_token_provider(),
            default_query={"api-version": self._inference_api_version},
            **common,
        )

    def _token_provider(self) -> Callable[[], str]:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider

        if self._credential is None:
            self._credential = DefaultAzureCredential()
        provider: Callable[[], str] = get_bearer_token_provider(self._credential, SCOPE)
        return provider

    def _async_token_provider(self) -> Any:
        from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

        if self._async_credential is None:
            self._async_credential = DefaultAzureCredential()
        return get_bearer_token_provider(self._async_credential, SCOPE)


def _inference_base(target: Target) -> str:
    if target.api_flavor != "model-inference":
        raise LlmConfigError(
            f"key {target.key} has API flavour {target.api_flavor!r}: this client knows 'openai' and "
            "'model-inference' (upgrade foundry-llm-client)"
        )
    return target.endpoint + "models"  # model inference: clients append /models to the endpoint
