# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)
"""A Kubernetes API client for modules that run many times per playbook.

Importing the ``kubernetes`` package costs a module about 0.6 s of CPU (it loads every API model), more than
the requests a wait or an apply makes. Where the connection is a kubeconfig or host with a client certificate
or a bearer token (MicroK8s, the lab, most clusters), requests go through urllib3 directly. Anything else
kubernetes.core supports (credential plugins, auth providers, in-cluster config, proxies, impersonation,
several kubeconfig files) goes through kubernetes.core's own client, so options and K8S_AUTH_* variables mean
the same in both.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import atexit
import base64
import json
import os
import shutil
import ssl
import tempfile
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlencode

from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC

# The options of kubernetes.core's k8s_auth_options this client handles itself; any other set means kubernetes.core.
_LEAN = ("kubeconfig", "context", "host", "api_key", "validate_certs", "ca_cert", "client_cert", "client_key")
_OTHER = (
    "username",
    "password",
    "proxy",
    "no_proxy",
    "proxy_headers",
    "persist_config",
    "impersonate_user",
    "impersonate_groups",
)
TIMEOUT = 60
# Objects without spec and status (a list of CRDs without their schemas).
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
METADATA_ONLY_ONE = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"


class KubeError(Exception):
    """A request the server refused (``status`` set) or could not be made (``status`` None)."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class NotServed(KubeError):
    """The cluster does not serve the kind (its CRD or API is not installed)."""


class Unsupported(Exception):
    """The connection needs kubernetes.core's client."""


def auth_argspec(token: bool = True) -> Dict[str, Any]:
    """kubernetes.core's connection options. ``token=False`` leaves out ``api_key``, which in the tenant module is
    the tenant's key; a bearer token for the Kubernetes API then comes from K8S_AUTH_API_KEY or the kubeconfig.
    """
    return {k: dict(v) for k, v in AUTH_ARG_SPEC.items() if token or k != "api_key"}


def _setting(params: Mapping[str, Any], name: str) -> Any:
    """A module option, else its K8S_AUTH_* variable, as kubernetes.core reads them."""
    if params.get(name) is not None:
        return params[name]
    value = os.environ.get("K8S_AUTH_{0}".format(name.upper()))
    if value is not None and name == "validate_certs":
        return value.lower() not in ("0", "false", "no")
    return value


class Resource:
    def __init__(self, prefix: str, plural: str, namespaced: bool) -> None:
        self.prefix = prefix
        self.plural = plural
        self.namespaced = namespaced

    def path(self, name: Optional[str] = None, namespace: Optional[str] = None) -> str:
        base = self.prefix
        if self.namespaced and namespace:
            base = "{0}/namespaces/{1}".format(base, namespace)
        base = "{0}/{1}".format(base, self.plural)
        return "{0}/{1}".format(base, name) if name else base


def _prefix(api_version: str) -> str:
    return "/api/{0}".format(api_version) if "/" not in api_version else "/apis/{0}".format(api_version)


class _Discovery:
    """Kind to resource, one discovery request per group version and module run."""

    def __init__(self) -> None:
        self._versions: Dict[str, Dict[str, Resource]] = {}

    def resource(self, client: "LeanClient", kind: str, api_version: str) -> Resource:
        if api_version not in self._versions:
            prefix = _prefix(api_version)
            try:
                listing = json.loads(client.request("GET", prefix))
            except KubeError as exc:
                message = "{0} {1} is not served by the cluster (API {0}: {2})".format(api_version, kind, exc)
                if exc.status != 404:
                    raise KubeError(message, exc.status) from exc
                raise NotServed(message, exc.status) from exc
            self._versions[api_version] = {
                r["kind"]: Resource(prefix, r["name"], bool(r.get("namespaced")))
                for r in listing.get("resources") or []
                if "/" not in r.get("name", "")
            }
        found = self._versions[api_version].get(kind)
        if found is None:
            raise NotServed("{0} {1} is not served by the cluster".format(api_version, kind), 404)
        return found


class LeanClient:
    """Requests through urllib3 with the server, CA and credentials of a kubeconfig or the module options."""

    def __init__(self, server: str, headers: Dict[str, str], context: ssl.SSLContext) -> None:
        import urllib3  # noqa: PLC0415 - only once the connection is known to be simple enough

        self.server = server.rstrip("/")
        self.headers = headers
        # maxsize: the tenant modules write from several threads at once.
        self.pool = urllib3.PoolManager(ssl_context=context, retries=False, timeout=TIMEOUT, maxsize=8)
        self._discovery = _Discovery()

    def resource(self, kind: str, api_version: str) -> Resource:
        return self._discovery.resource(self, kind, api_version)

    def request(
        self,
        method: str,
        path: str,
        query: Optional[List[Tuple[str, str]]] = None,
        *,
        body: Any = None,
        content_type: str = "application/json",
        accept: Optional[str] = None,
    ) -> bytes:
        import urllib3  # noqa: PLC0415

        url = self.server + path + ("?" + urlencode(query) if query else "")
        headers = dict(self.headers, **_headers(accept, body, content_type))
        data = None if body is None else json.dumps(body).encode()
        try:
            response = self.pool.request(method, url, body=data, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError("cannot reach the Kubernetes API server at {0}: {1}".format(self.server, exc)) from exc
        if response.status >= 400:
            raise KubeError(_message(response.data, response.reason), response.status)
        return response.data


def _message(data: bytes, reason: Any) -> str:
    try:
        return json.loads(data).get("message") or str(reason)
    except (TypeError, ValueError, AttributeError):
        return str(reason)


class CoreClient:
    """kubernetes.core's client behind the same two calls."""

    def __init__(self, params: Mapping[str, Any], token: bool = True) -> None:
        self.client = core_client(params, auth_argspec(token))

    def resource(self, kind: str, api_version: str) -> Any:
        try:
            return self.client.resource(kind, api_version)
        except Exception as exc:  # ResourceNotFoundError and discovery failures alike
            raise NotServed("{0} {1} is not served by the cluster ({2})".format(api_version, kind, exc), 404) from exc

    def request(
        self,
        method: str,
        path: str,
        query: Optional[List[Tuple[str, str]]] = None,
        *,
        body: Any = None,
        content_type: str = "application/json",
        accept: Optional[str] = None,
    ) -> bytes:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - loaded with the client

        headers = _headers(accept, body, content_type)
        try:
            response = call_raw(self.client.client.client, method, path, query=query, headers=headers, body=body)
        except ApiException as exc:
            raise KubeError(_message(exc.body, exc.reason), exc.status) from exc
        except Exception as exc:  # connection, TLS and protocol errors from urllib3
            raise KubeError("cannot reach the Kubernetes API server: {0}".format(exc)) from exc
        return response.data


def core_client(params: Mapping[str, Any], options: Mapping[str, Any]) -> Any:
    """kubernetes.core's client from those of ``options`` the module was given (a KubeError if none can be built)."""
    from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client  # noqa: PLC0415

    kwargs = {name: params.get(name) for name in options if params.get(name) is not None}
    try:
        return get_api_client(**kwargs)
    except Exception as exc:  # kubeconfig, credential plugin and TLS file errors all surface here
        text = str(exc).strip().splitlines()
        raise KubeError(
            "Cannot reach the Kubernetes API server: {0}".format(text[0] if text else type(exc).__name__)
        ) from exc


def _headers(accept: Optional[str], body: Any, content_type: str) -> Dict[str, str]:
    headers = {"Accept": accept or "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    return headers


def call_raw(api_client: Any, method: str, path: str, *, query: Any, headers: Dict[str, str], body: Any) -> Any:
    """A request through a kubernetes ``ApiClient`` that returns the raw response: bytes, not models (deserialising
    a thousand Secrets would cost more than fetching them)."""
    return api_client.call_api(
        path,
        method,
        query_params=query or [],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
        _return_http_data_only=True,
        _preload_content=False,
        _request_timeout=TIMEOUT,
    )


def connect(params: Mapping[str, Any], token: bool = True) -> Any:
    """The lean client where the connection allows it, else kubernetes.core's. With ``token=False`` the module's
    ``api_key`` option is not the API's bearer token (see auth_argspec)."""
    if not token:
        params = {k: v for k, v in params.items() if k != "api_key"}
    try:
        return lean(params)
    except Unsupported:
        return CoreClient(params, token)


def _files() -> str:
    directory = tempfile.mkdtemp(prefix="tokenlabs-kube-")
    atexit.register(shutil.rmtree, directory, True)
    return directory


def _pem(entry: Mapping[str, Any], key: str, base_dir: str, directory: List[str]) -> Optional[str]:
    """A file path for ``<key>`` or ``<key>-data`` of a kubeconfig entry (data written to a private file)."""
    if entry.get(key + "-data"):
        if not directory:
            directory.append(_files())
        path = os.path.join(directory[0], key)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(base64.b64decode(entry[key + "-data"]))
        return path
    if entry.get(key):
        return os.path.join(base_dir, os.path.expanduser(entry[key]))
    return None


def _named(items: Any, name: str, what: str) -> Dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return item.get(what) or {}
    raise KubeError("kubeconfig has no {0} named {1!r}".format(what, name))


def lean(params: Mapping[str, Any]) -> LeanClient:
    settings = {name: _setting(params, name) for name in _LEAN}
    if any(_setting(params, name) for name in _OTHER):
        raise Unsupported()
    server, ca, cert, key, token, verify = None, None, None, None, None, True
    from_params = settings["host"] and (settings["api_key"] or (settings["client_cert"] and settings["client_key"]))
    if not from_params:
        path = settings["kubeconfig"]
        if path is None and not settings["context"] and os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise Unsupported()  # in-cluster configuration
        if path is None:
            path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        if not isinstance(path, str) or os.pathsep in path:
            raise Unsupported()  # a kubeconfig given as a mapping, or several files to merge
        server, ca, cert, key, token, verify = _from_kubeconfig(path, settings["context"])
    server = settings["host"] or server
    token = settings["api_key"] or token
    ca = settings["ca_cert"] or ca
    cert = settings["client_cert"] or cert
    key = settings["client_key"] or key
    if settings["validate_certs"] is not None:
        verify = bool(settings["validate_certs"])
    if not server:
        raise KubeError("no Kubernetes API server: give host or a kubeconfig")
    context = ssl.create_default_context(cafile=ca) if verify else ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        if cert:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise KubeError("cannot load the client certificate {0}: {1}".format(cert, exc)) from exc
    headers = {"Authorization": "Bearer {0}".format(token)} if token else {}
    return LeanClient(server, headers, context)


def _from_kubeconfig(path: str, context_name: Optional[str]) -> Tuple[Any, Any, Any, Any, Any, bool]:
    import yaml  # noqa: PLC0415

    try:
        with open(path) as handle:
            config = yaml.safe_load(handle) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KubeError("cannot read the kubeconfig {0}: {1}".format(path, exc)) from exc
    name = context_name or config.get("current-context")
    if not name:
        raise KubeError("kubeconfig {0} names no current context".format(path))
    context = _named(config.get("contexts"), name, "context")
    cluster = _named(config.get("clusters"), context.get("cluster"), "cluster")
    user = _named(config.get("users"), context.get("user"), "user") if context.get("user") else {}
    if set(user) - {
        "client-certificate",
        "client-certificate-data",
        "client-key",
        "client-key-data",
        "token",
        "tokenFile",
    }:
        raise Unsupported()  # credential plugins, auth providers, basic auth, impersonation
    if set(cluster) - {"server", "certificate-authority", "certificate-authority-data", "insecure-skip-tls-verify"}:
        raise Unsupported()  # proxies, TLS server names, extensions
    base_dir = os.path.dirname(os.path.abspath(path))
    directory: List[str] = []
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            with open(os.path.join(base_dir, user["tokenFile"])) as handle:
                token = handle.read().strip()
        except OSError as exc:
            raise KubeError("cannot read the token file of kubeconfig {0}: {1}".format(path, exc)) from exc
    return (
        cluster.get("server"),
        _pem(cluster, "certificate-authority", base_dir, directory),
        _pem(user, "client-certificate", base_dir, directory),
        _pem(user, "client-key", base_dir, directory),
        token,
        not cluster.get("insecure-skip-tls-verify"),
    )


def run_module(argspec: Dict[str, Any], execute: Any) -> None:
    """A module's main: validate, run ``execute(params, check_mode, diff)``, exit with its result."""
    from ansible.module_utils.basic import AnsibleModule  # noqa: PLC0415 - modules only, never the action plugins

    module = AnsibleModule(argument_spec=argspec, supports_check_mode=True)
    result = execute(module.params, module.check_mode, module._diff)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)
