"""Entra ID (the v2.0 endpoints MSAL and azure-identity use) and the checks ARM makes on its tokens.

Tokens are RS256 JWTs signed with a key kept in the state directory and published as JWKS, so a
client may verify them like real Entra tokens. The client-credentials grant accepts a client
secret, or a client assertion (what workload identity sends: the Kubernetes service-account token
from ``AZURE_FEDERATED_TOKEN_FILE``). The emulator cannot verify an assertion's signature (it does
not know the cluster's OIDC issuer keys); it checks subject, audience and lifetime against the
principal's federated credentials, which is what real Entra ID matches on after the signature.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import ArmError
from .requestlog import PRINCIPAL
from .scenario import Principal
from .state import Caller, EmulatorState

SIGNING_KEY_FILE = "signing-key.pem"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# The audiences ARM accepts, as its InvalidAuthenticationTokenAudience message lists them.
ARM_AUDIENCES = (
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
)
_RESERVED_SCOPES = {"openid", "profile", "offline_access"}


class SigningKey:
    """The emulator's token-signing key (RSA 2048), reused across restarts of one state directory so
    that tokens a client cached stay valid."""

    def __init__(self, state_dir: Path) -> None:
        path = state_dir / SIGNING_KEY_FILE
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{path} is not an RSA key written by the emulator")
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            path.chmod(0o600)
        self._key = key
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:20]).decode().rstrip("=")

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid})

    def decode(self, token: str) -> dict[str, Any]:
        """Claims of a token this key signed; raises jwt.InvalidTokenError otherwise. Lifetime and
        audience are left to the caller, which answers each with its own ARM error."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._key.public_key(),
            algorithms=["RS256"],
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
        return claims

    def jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {**jwk, "kid": self.kid, "x5t": self.kid, "use": "sig", "alg": "RS256"}


class EntraError(Exception):
    """An error in Entra ID's token-endpoint shape (``error`` + ``AADSTS...`` description)."""

    def __init__(self, status: int, error: str, code: int, text: str) -> None:
        super().__init__(f"AADSTS{code}: {text}")
        self.status, self.error, self.code, self.text = status, error, code, text

    def response(self, base_url: str) -> web.Response:
        now = dt.datetime.now(dt.UTC)
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        return web.json_response(
            {
                "error": self.error,
                "error_description": f"AADSTS{self.code}: {self.text} Trace ID: {trace} "
                f"Correlation ID: {correlation} Timestamp: {stamp}",
                "error_codes": [self.code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"{base_url}/error?code={self.code}",
            },
            status=self.status,
        )


def base_url(request: web.Request) -> str:
    """The emulator's URL as this client reached it; every URL the emulator hands out is built from
    it, so clients that use another host name (a Kubernetes service name) get links that work."""
    return f"{request.scheme}://{request.host}"


class Entra:
    def __init__(
        self, state: EmulatorState, key: SigningKey, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self._state = state
        self._key = key
        self._time = wall_clock

    # -- routes -------------------------------------------------------------------------------

    async def openid_configuration(self, request: web.Request) -> web.Response:
        base = base_url(request)
        tenant = request.match_info["tenant"]
        if tenant.lower() != self._state.tenant_id.lower():
            return _tenant_not_found(tenant).response(base)
        authority = f"{base}/{tenant}"
        return web.json_response(
            {
                "token_endpoint": f"{authority}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{authority}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{authority}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{authority}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{authority}/oauth2/v2.0/logout",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "appid", "azp"],
                "tenant_region_scope": "NA",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
            }
        )

    async def keys(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [self._key.jwk()]})

    async def token(self, request: web.Request) -> web.Response:
        base = base_url(request)
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if fields.get("client_id"):
            request[PRINCIPAL] = fields["client_id"]
        try:
            body = self._grant(request.match_info["tenant"], fields, base)
        except EntraError as err:
            return err.response(base)
        return web.json_response(body)

    # -- the client-credentials grant -------------------------------------------------------------

    def _grant(self, tenant: str, form: dict[str, str], base: str) -> dict[str, Any]:
        if tenant.lower() != self._state.tenant_id.lower():
            raise _tenant_not_found(tenant)
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = form.get("client_id")
        if not client_id:
            raise _missing("client_id")
        principal = next(
            (p for p in self._state.scenario.principals if p.clientId.lower() == client_id.lower()), None
        )
        if principal is None:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can "
                "happen if the application has not been installed by the administrator of the tenant or consented "
                "to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
            )
        resource = _resource_of(form.get("scope"))
        appidacr = self._authenticate(principal, form)
        now = int(self._time())
        lifetime = self._state.scenario.timing.tokenLifetimeSeconds
        claims = {
            "aud": resource,
            "iss": f"{base}/{self._state.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "appid": principal.clientId,
            "azp": principal.clientId,
            "appidacr": appidacr,
            "idtyp": "app",
            "oid": principal.object_id,
            "sub": principal.object_id,
            "tid": self._state.tenant_id,
            "uti": uuid.uuid4().hex,
            "ver": "1.0",
        }
        return {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self._key.sign(claims),
        }

    def _authenticate(self, principal: Principal, form: dict[str, str]) -> str:
        """Check the client's credential; returns the token's ``appidacr`` (1 secret, 2 assertion)."""
        secret = form.get("client_secret")
        assertion = form.get("client_assertion")
        if secret is not None:
            if principal.clientSecret is None or secret != principal.clientSecret:
                raise EntraError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                    f"secret value, not the client secret ID, for a secret added to app '{principal.clientId}'.",
                )
            return "1"
        if assertion is not None and form.get("client_assertion_type") == ASSERTION_TYPE:
            self._check_assertion(principal, assertion)
            return "2"
        raise EntraError(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )

    def _check_assertion(self, principal: Principal, assertion: str) -> None:
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError as err:
            raise EntraError(401, "invalid_client", 50027, "JWT token is invalid or malformed.") from err
        now = self._time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if (isinstance(exp, int | float) and exp < now) or (isinstance(nbf, int | float) and nbf > now + 300):
            raise EntraError(
                401,
                "invalid_client",
                700024,
                f"Client assertion is not within its valid time range. Current time: {_iso(now)}, "
                f"assertion valid from {_iso(nbf)}, expiry time of assertion {_iso(exp)}.",
            )
        subject, issuer = str(claims.get("sub", "")), str(claims.get("iss", ""))
        audiences = claims.get("aud", [])
        audiences = [audiences] if isinstance(audiences, str) else [str(a) for a in audiences]
        if subject not in principal.federatedSubjects or not set(audiences) & set(
            principal.federatedAudiences
        ):
            raise EntraError(
                401,
                "invalid_client",
                70021,
                f"No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. "
                f"Assertion Subject: '{subject}'. Assertion Audience: '{','.join(audiences)}'. "
                "https://docs.microsoft.com/azure/active-directory/develop/workload-identity-federation",
            )

    # -- ARM's side: is this bearer token one of ours, for ARM? ------------------------------------

    def verify_arm(self, authorization: str | None) -> Caller:
        if not authorization:
            raise ArmError(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            )
        try:
            claims = self._key.decode(token.strip())
        except jwt.InvalidTokenError as err:
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.") from err
        now = self._time()
        if float(claims.get("exp", 0)) <= now:
            raise ArmError(
                401,
                "ExpiredAuthenticationToken",
                f"The access token expiry UTC time '{_iso(claims.get('exp'))}' is earlier than current UTC time "
                f"'{_iso(now)}'.",
            )
        audience = str(claims.get("aud", ""))
        if audience not in ARM_AUDIENCES:
            raise ArmError(
                401,
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{audience}'. It should exactly "
                f"match with one of the allowed audiences {','.join(repr(a) for a in ARM_AUDIENCES)}.",
            )
        tenant = self._state.tenant_id
        if str(claims.get("tid", "")).lower() != tenant.lower():
            raise ArmError(
                401,
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer '{claims.get('iss')}'. It must match the tenant "
                f"'https://sts.windows.net/{tenant}/' associated with this subscription. Please use the authority "
                f"(URL) 'https://login.windows.net/{tenant}' to get the token.",
            )
        return Caller(client_id=str(claims.get("appid", "")), object_id=str(claims.get("oid", "")))


def _resource_of(scope: str | None) -> str:
    """The resource of a client-credentials scope (``https://management.azure.com/.default``)."""
    if not scope:
        raise _missing("scope")
    requested = [s for s in scope.split() if s not in _RESERVED_SCOPES]
    if len(requested) != 1 or not requested[0].endswith("/.default"):
        raise EntraError(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
            "with /.default suffixed to the resource identifier (application ID URI).",
        )
    return requested[0].removesuffix("/.default")


def _missing(parameter: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{parameter}'.",
    )


def _tenant_not_found(tenant: str) -> EntraError:
    return EntraError(
        400,
        "invalid_tenant",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the "
        "correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    )


def _iso(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "unknown"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
