"""The accounts' data plane: what inference clients call at the endpoints the operator publishes.

Served on the emulator's own port and selected by the Host header, as Azure's front door selects an
account by its custom subdomain: ``https://aucert-ai.openai.azure.com/openai/...`` reaches account
``aucert-ai``. Clients keep the real-looking URLs and route those host names to the emulator through
a standard HTTP CONNECT proxy (``HTTPS_PROXY``), which ``EndpointProxy`` provides; TLS stays end to end
(the server certificate also names ``*.openai.azure.com`` and the other account domains).

APIs: the OpenAI-compatible one (``/openai/deployments/{name}/chat/completions``, ``/openai/responses``,
``/openai/v1/chat/completions``, ``/openai/v1/responses``) and model inference
(``/models/chat/completions`` with ``model``). Auth: an Entra ID token for
``https://cognitiveservices.azure.com`` whose principal holds a data-plane role on the account
(roles.py), or one of the account's keys. Answers are deterministic: they name the model and echo
the prompt, or call the first tool offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from aiohttp import web

from .entra import SigningKey
from .requestlog import PRINCIPAL
from .state import AccountRecord, DeploymentRecord, EmulatorState

# What a data-plane token must be for, as Azure OpenAI checks it.
AUDIENCE = "https://cognitiveservices.azure.com"
# The server certificate names these so that TLS to the accounts' public host names verifies.
DOMAINS = {
    "openai.azure.com": "openai",
    "services.ai.azure.com": "services",
    "cognitiveservices.azure.com": "cognitive",
}
# Entra ID's public authority: clients that keep the default authority host (LiteLLM's own
# credentials, DefaultAzureCredential without AZURE_AUTHORITY_HOST) reach the emulator's Entra ID
# through the proxy, and MSAL, knowing the host, skips instance discovery.
ENTRA_HOST = "login.microsoftonline.com"
CERT_NAMES = (*(f"*.{domain}" for domain in DOMAINS), ENTRA_HOST)
# Per 1 unit of deployment capacity (1,000 tokens per minute): requests per 10 seconds, as the
# deployment's ``rateLimits`` advertise (wire.py).
RATE_WINDOW_SECONDS = 10.0

Operation = Literal["chat", "responses"]

_DATA_ACTIONS = {
    ("openai", "chat"): "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action",
    ("openai", "responses"): "Microsoft.CognitiveServices/accounts/OpenAI/responses/write",
    ("models", "chat"): "Microsoft.CognitiveServices/accounts/MaaS/chat/completions/action",
}
_OPERATION_IDS = {"chat": "ChatCompletions_Create", "responses": "Responses_Create"}
# OpenAI's series numbering: gpt-5.4 and later refuse function tools with reasoning on chat completions.
_GPT_SERIES = re.compile(r"^gpt-(\d+)(?:\.(\d+))?", re.IGNORECASE)


class DataPlaneError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(json.dumps(body))
        self.status, self.body, self.headers = status, body, headers or {}

    def response(self) -> web.Response:
        return web.json_response(self.body, status=self.status, headers=self.headers)


def _azure_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> DataPlaneError:
    return DataPlaneError(status, {"error": {"code": code, "message": message}}, headers)


def _invalid(message: str, param: str | None, code: str | None) -> DataPlaneError:
    """OpenAI's validation error shape, which Azure OpenAI passes through."""
    return DataPlaneError(
        400, {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    )


def _not_found() -> DataPlaneError:
    return _azure_error(404, "404", "Resource not found")


@dataclass(frozen=True)
class Route:
    api: Literal["openai", "models"]
    operation: Operation
    deployment: str | None  # None: named by the body's ``model``
    needs_api_version: bool
    template: str  # for error messages, as Azure names the operation


def route_of(method: str, path: str) -> Route | None:
    parts = [p for p in path.split("/") if p]
    if method != "POST":
        return None
    match parts:
        case ["openai", "deployments", name, "chat", "completions"]:
            return Route(
                "openai", "chat", name, True, "POST /openai/deployments/{deployment-id}/chat/completions"
            )
        case ["openai", "responses"]:
            return Route("openai", "responses", None, True, "POST /openai/responses")
        case ["openai", "v1", "chat", "completions"]:
            return Route("openai", "chat", None, False, "POST /openai/v1/chat/completions")
        case ["openai", "v1", "responses"]:
            return Route("openai", "responses", None, False, "POST /openai/v1/responses")
        case ["models", "chat", "completions"]:
            return Route("models", "chat", None, True, "POST /models/chat/completions")
    return None


def account_for_host(state: EmulatorState, host: str) -> tuple[AccountRecord, str] | None:
    """(account, API family) served at ``host`` (a Host header or CONNECT target; port ignored)."""
    name = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else host
    subdomain, _, domain = name.partition(".")
    family = DOMAINS.get(domain)
    if family is None:
        return None
    account = next(
        (a for a in state.accounts.values() if (a.subdomain or "").lower() == subdomain),
        None,
    )
    return (account, family) if account is not None else None


class DataPlane:
    def __init__(
        self, state: EmulatorState, key: SigningKey, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._state = state
        self._key = key
        self._clock = clock
        self._recent: dict[tuple[str, str], deque[float]] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._handle(request)
        except DataPlaneError as err:
            return err.response()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._state.settle()
        found = account_for_host(self._state, request.host)
        if found is None:
            raise _azure_error(
                404,
                "404",
                f"No emulated account answers at host '{request.host}'. Call the endpoint the account "
                "publishes (https://<subdomain>.openai.azure.com/ or https://<subdomain>.services.ai.azure.com/) "
                "and route it to the emulator with HTTPS_PROXY=<the emulator's proxy_url>.",
            )
        account, family = found
        route = route_of(request.method, request.path)
        if route is None or (route.api == "models" and family == "openai"):
            raise _not_found()
        api_version = request.query.get("api-version")
        if route.needs_api_version and not api_version:
            raise _not_found()  # Azure's answer when api-version is missing
        principal = self._authenticate(request, account)
        if principal is not None:
            self._authorize(principal, account, route)
        body = await _json_body(request)
        name = route.deployment or body.get("model")
        if not isinstance(name, str) or not name:
            if route.api == "models":
                raise _azure_error(
                    400,
                    "no_model_name",
                    "No model specified in request. Please provide a model name in the request body or as a "
                    "x-ms-model-mesh-model-name header.",
                )
            raise _invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
        deployment = self._deployment(account, name)
        self._check_operation(deployment, route.operation)
        self._rate_limit(account, deployment, route, api_version)
        if route.operation == "chat":
            return self._chat(request, account, deployment, route, body)
        return self._responses(account, deployment, body)

    # -- auth ----------------------------------------------------------------------------------------

    def _authenticate(self, request: web.Request, account: AccountRecord) -> str | None:
        """The token's principal (object id), or None when one of the account's keys was sent."""
        api_key = request.headers.get("api-key") or request.headers.get("Ocp-Apim-Subscription-Key")
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        bearer = credential.strip() if scheme.lower() == "bearer" else ""
        if api_key is None and bearer and not _looks_like_jwt(bearer):
            api_key = bearer  # the v1 and model-inference APIs accept a key as a bearer token too
        if api_key is not None:
            if not any(hmac.compare_digest(api_key, key) for key in account.keys):
                raise _key_denied()
            request[PRINCIPAL] = "account-key"
            return None
        if not bearer:
            raise _key_denied()
        try:
            claims = self._key.decode(bearer)
        except jwt.InvalidTokenError as err:
            raise _token_denied() from err
        if (
            float(claims.get("exp", 0)) <= time.time()
            or str(claims.get("aud", "")).rstrip("/") != AUDIENCE
            or str(claims.get("tid", "")).lower() != self._state.tenant_id.lower()
        ):
            raise _token_denied()
        request[PRINCIPAL] = str(claims.get("appid", ""))
        return str(claims.get("oid", ""))

    def _authorize(self, principal: str, account: AccountRecord, route: Route) -> None:
        if self._state.role_assignments.data_plane_allowed(principal, account.arm_id):
            return
        action = _DATA_ACTIONS[(route.api, route.operation)]
        raise _azure_error(
            403,
            "PermissionDenied",
            f"The principal `{principal}` lacks the required data action `{action}` to perform "
            f"`{route.template}` operation.",
        )

    # -- deployment checks ---------------------------------------------------------------------------

    def _deployment(self, account: AccountRecord, name: str) -> DeploymentRecord:
        found = account.deployments.get(name.lower())
        if found is None or self._state.provisioning_state(found) != "Succeeded":
            raise _azure_error(
                404,
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the deployment within "
                "the last 5 minutes, please wait a moment and try again.",
            )
        return found

    def _check_operation(self, deployment: DeploymentRecord, operation: Operation) -> None:
        capability = "chatCompletion" if operation == "chat" else "responses"
        if deployment.capabilities.get(capability, "").lower() != "true":
            label = "chatCompletion" if operation == "chat" else "responses"
            raise _azure_error(
                400,
                "OperationNotSupported",
                f"The {label} operation does not work with the specified model, {deployment.model_name}. Please "
                "choose different model and try again. You can learn more about which models can be used "
                "with each operation here: https://go.microsoft.com/fwlink/?linkid=2197993.",
            )

    def _rate_limit(
        self, account: AccountRecord, deployment: DeploymentRecord, route: Route, api_version: str | None
    ) -> None:
        now = self._clock()
        window = self._recent.setdefault((account.arm_id.lower(), deployment.name.lower()), deque())
        while window and window[0] <= now - RATE_WINDOW_SECONDS:
            window.popleft()
        if len(window) >= deployment.capacity:
            wait = max(1, math.ceil(window[0] + RATE_WINDOW_SECONDS - now))
            raise _azure_error(
                429,
                "429",
                f"Requests to the {_OPERATION_IDS[route.operation]} Operation under Azure OpenAI API version "
                f"{api_version or 'v1'} have exceeded call rate limit of your current {account.kind} "
                f"{account.sku} pricing tier. Please retry after {wait} seconds. Please contact Azure support "
                "service if you would like to further increase the default rate limit.",
                headers={
                    "Retry-After": str(wait),
                    "retry-after-ms": str(wait * 1000),
                    "x-ratelimit-remaining-requests": "0",
                },
            )
        window.append(now)

    # -- answers -------------------------------------------------------------------------------------

    def _chat(
        self,
        request: web.Request,
        account: AccountRecord,
        deployment: DeploymentRecord,
        route: Route,
        body: dict[str, Any],
    ) -> web.StreamResponse:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _invalid(
                "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
            )
        reasoning = _reasoning(deployment)
        effort = body.get("reasoning_effort")
        if effort is not None and not reasoning:
            raise _unsupported("reasoning_effort")
        if reasoning and body.get("max_tokens") is not None:
            raise _invalid(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.",
                "max_tokens",
                "unsupported_parameter",
            )
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
        if tools and reasoning and effort != "none" and _refuses_tools_with_reasoning(deployment.model_name):
            raise _invalid(
                f"Function tools with reasoning_effort are not supported for {deployment.model_name} in "
                "/v1/chat/completions. Please use /v1/responses or set reasoning_effort to 'none'.",
                "reasoning_effort",
                "unsupported_value",
            )
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        digest = _digest(deployment.name, body)
        message: dict[str, Any] = {"role": "assistant", "content": None}
        tool = _tool_to_call(tools, body.get("tool_choice"), last.get("role") == "user", chat=True)
        if tool is not None:
            name, arguments = tool
            message["tool_calls"] = [
                {
                    "id": f"call_{digest[:24]}",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ]
            finish = "tool_calls"
        else:
            message["content"] = _answer(account, deployment, _text_of(last.get("content")), last.get("role"))
            finish = "stop"
        prompt_tokens = sum(_words(_text_of(m.get("content"))) for m in messages if isinstance(m, dict))
        completion_tokens = _words(message["content"] or "") + 8
        reasoning_tokens = 16 if reasoning and effort != "none" else 0
        model = _model_label(deployment)
        created = int(time.time())
        if body.get("stream"):
            return self._stream_chat(request, f"chatcmpl-{digest[:29]}", created, model, message, finish)
        answer: dict[str, Any] = {
            "id": f"chatcmpl-{digest[:29]}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "system_fingerprint": f"fp_{digest[-10:]}",
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens + reasoning_tokens,
                "total_tokens": prompt_tokens + completion_tokens + reasoning_tokens,
                "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        }
        if route.api == "openai":  # Azure OpenAI adds its content-filter annotations
            answer["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": {}}]
            answer["choices"][0]["content_filter_results"] = {}
        return web.json_response(answer)

    def _stream_chat(
        self, request: web.Request, ident: str, created: int, model: str, message: dict[str, Any], finish: str
    ) -> web.StreamResponse:
        """Server-sent events: the whole message in one delta, then the finish, then [DONE]."""
        base = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
        chunks = [
            {**base, "choices": [{"index": 0, "delta": message, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]},
        ]
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return web.Response(text=text, content_type="text/event-stream")

    def _responses(
        self, account: AccountRecord, deployment: DeploymentRecord, body: dict[str, Any]
    ) -> web.Response:
        if body.get("stream"):
            raise _invalid(
                "The emulator does not stream the Responses API; send stream=false.",
                "stream",
                "unsupported_value",
            )
        items = body.get("input")
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        if not isinstance(items, list) or not items:
            raise _invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
        reasoning = _reasoning(deployment)
        requested = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None
        if requested and requested.get("effort") is not None and not reasoning:
            raise _unsupported("reasoning.effort")
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
        last = items[-1] if isinstance(items[-1], dict) else {}
        last_role = last.get("role") or ("tool" if last.get("type") == "function_call_output" else None)
        digest = _digest(deployment.name, body)
        output: list[dict[str, Any]] = []
        effort = (requested or {}).get("effort", "medium")
        if reasoning and effort != "none":
            output.append({"id": f"rs_{digest[:24]}", "type": "reasoning", "summary": []})
        tool = _tool_to_call(tools, body.get("tool_choice"), last_role == "user", chat=False)
        text = ""
        if tool is not None:
            name, arguments = tool
            output.append(
                {
                    "id": f"fc_{digest[:24]}",
                    "type": "function_call",
                    "status": "completed",
                    "call_id": f"call_{digest[24:48]}",
                    "name": name,
                    "arguments": arguments,
                }
            )
        else:
            prompt = _text_of(last.get("content") if last_role != "tool" else last.get("output"))
            text = _answer(account, deployment, prompt, last_role)
            output.append(
                {
                    "id": f"msg_{digest[:24]}",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            )
        input_tokens = sum(
            _words(_text_of(i.get("content") or i.get("output"))) for i in items if isinstance(i, dict)
        )
        reasoning_tokens = 16 if reasoning and effort != "none" else 0
        output_tokens = _words(text) + 8 + reasoning_tokens
        return web.json_response(
            {
                "id": f"resp_{digest[:40]}",
                "object": "response",
                "created_at": int(time.time()),
                "status": "completed",
                "error": None,
                "incomplete_details": None,
                "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"),
                "model": _model_label(deployment),
                "output": output,
                "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
                "previous_response_id": body.get("previous_response_id"),
                "reasoning": {"effort": effort if reasoning else None, "summary": None},
                "store": bool(body.get("store", True)),
                "temperature": body.get("temperature", 1.0),
                "text": {"format": {"type": "text"}},
                "tool_choice": body.get("tool_choice", "auto"),
                "tools": body.get("tools") or [],
                "top_p": body.get("top_p", 1.0),
                "truncation": "disabled",
                "usage": {
                    "input_tokens": input_tokens,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": output_tokens,
                    "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                    "total_tokens": input_tokens + output_tokens,
                },
                "metadata": body.get("metadata") or {},
            }
        )


# -- the proxy -----------------------------------------------------------------------------------------


class EndpointProxy:
    """A plain HTTP CONNECT proxy for ``HTTPS_PROXY``: tunnels the accounts' public host names, Entra
    ID's (login.microsoftonline.com) and the emulator's own address to the emulator's TLS port;
    anything else is refused with a reason."""

    def __init__(self, state: EmulatorState, host: str = "127.0.0.1") -> None:
        self._state = state
        self.host = host
        self.port = 0
        self._target: tuple[str, int] = ("127.0.0.1", 0)
        self._server: asyncio.Server | None = None
        self._tunnels: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, target_host: str, target_port: int, port: int = 0) -> None:
        self._target = (target_host, target_port)
        self._server = await asyncio.start_server(self._serve, self.host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tunnels):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._tunnels, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tunnels.add(task)
        try:
            await self._tunnel(reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # Our own shutdown (stop): a cancelled connection task makes asyncio log a traceback.
            pass
        finally:
            self._tunnels.discard(task)
            writer.close()

    async def _tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        target = rest.split(" ", 1)[0]
        if method.upper() != "CONNECT":
            await _refuse(writer, 405, "this proxy only tunnels HTTPS (CONNECT host:443)")
            return
        host = target.rsplit(":", 1)[0].strip("[]").lower()
        own = {self._target[0], "127.0.0.1", "localhost", ENTRA_HOST}
        if host not in own and account_for_host(self._state, host) is None:
            await _refuse(
                writer,
                502,
                f"no emulated account answers at {host}: the proxy serves the scenario accounts' endpoints "
                f"(<subdomain>.{', <subdomain>.'.join(DOMAINS)}); put other hosts in NO_PROXY",
            )
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        if sink.can_write_eof():
            with contextlib.suppress(OSError):
                sink.write_eof()


async def _refuse(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    text = f"foundry emulator proxy: {reason}\n".encode()
    phrase = {405: "Method Not Allowed", 502: "Bad Gateway"}[status]
    writer.write(
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\nContent-Length: {len(text)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + text
    )
    await writer.drain()


# -- helpers ---------------------------------------------------------------------------------------------


def _key_denied() -> DataPlaneError:
    return _azure_error(
        401,
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
        "for an active subscription and use a correct regional API endpoint for your resource.",
    )


def _token_denied() -> DataPlaneError:
    return _azure_error(
        401,
        "401",
        f"Unauthorized. Access token is missing, invalid, audience is incorrect ({AUDIENCE}), or have expired.",
    )


def _unsupported(param: str) -> DataPlaneError:
    return _invalid(
        f"Unsupported parameter: '{param}' is not supported with this model.", param, "unsupported_parameter"
    )


def _looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("ey")


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError as err:
        raise _invalid(f"We could not parse the JSON body of your request. ({err})", None, None) from err
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.", None, None)
    return body


def _reasoning(deployment: DeploymentRecord) -> bool:
    return deployment.capabilities.get("reasoning", "").lower() == "true"


def _refuses_tools_with_reasoning(model: str) -> bool:
    found = _GPT_SERIES.match(model)
    return found is not None and (int(found.group(1)), int(found.group(2) or 0)) >= (5, 4)


def _model_label(deployment: DeploymentRecord) -> str:
    """What the ``model`` field says: OpenAI models with their version, partner models by name."""
    if deployment.model_format.lower() == "openai":
        return f"{deployment.model_name}-{deployment.model_version}"
    return deployment.model_name


def _tool_to_call(
    tools: list[dict[str, Any]], choice: object, user_turn: bool, chat: bool
) -> tuple[str, str] | None:
    """The first offered function tool, with arguments built from its schema, on a user's turn."""
    if not tools or not user_turn or choice == "none":
        return None
    function = tools[0].get("function", {}) if chat else tools[0]
    schema = function.get("parameters") or {}
    properties = schema.get("properties") or {}
    samples = {"string": "example", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}
    arguments = {
        name: samples.get(str((properties.get(name) or {}).get("type")), None)
        for name in schema.get("required") or []
    }
    return str(function.get("name", "tool")), json.dumps(arguments, sort_keys=True)


def _answer(account: AccountRecord, deployment: DeploymentRecord, prompt: str, role: object) -> str:
    said = "tool result" if role == "tool" else "prompt"
    return (
        f"[{deployment.model_name} {deployment.model_version} | deployment {deployment.name} | "
        f"account {account.name}] {said}: {prompt}"
    )


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part
        )
    return ""


def _words(text: str) -> int:
    return len(text.split())


def _digest(deployment: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((deployment + json.dumps(body, sort_keys=True, default=str)).encode()).hexdigest()
