# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# (these plugins build on kubernetes.core's GPLv3 module_utils)
"""A small HTTPS client for the Kubernetes API, built from kubernetes.core's connection options.

Importing the ``kubernetes`` package costs most of a tenant module's run time (it loads every API
model), while the tenant modules only send a few kinds of JSON requests. This module resolves the
options exactly as kubernetes.core does (module parameters, then ``K8S_AUTH_*`` environment
variables; explicit host and credentials, else the kubeconfig, else the in-cluster service account)
and talks HTTP through the standard library. Anything it does not implement (exec and auth-provider
credential plugins, proxies, merged kubeconfig lists, ``persist_config``) returns None from
``resolve``, and the caller uses the kubernetes client instead.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import http.client
import os
import ssl
import tempfile
import threading
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

try:
    import yaml
except ImportError:  # PyYAML is listed in the modules' requirements; without it the kubernetes client path is used
    yaml = None

# kubernetes.core's AUTH_ARG_MAP: client configuration name -> module option name.
AUTH_OPTIONS = {
    "kubeconfig": "kubeconfig",
    "context": "context",
    "host": "host",
    "api_key": "api_key",
    "username": "username",
    "password": "password",
    "verify_ssl": "validate_certs",
    "ssl_ca_cert": "ca_cert",
    "cert_file": "client_cert",
    "key_file": "client_key",
    "proxy": "proxy",
    "no_proxy": "no_proxy",
    "proxy_headers": "proxy_headers",
    "persist_config": "persist_config",
}
_BOOL_OPTIONS = ("validate_certs", "persist_config")
_PROXY_HEADER_OPTIONS = ("proxy_basic_auth", "basic_auth", "user_agent")
_IMPERSONATION = (("impersonate_user", "Impersonate-User"), ("impersonate_groups", "Impersonate-Group"))
IN_CLUSTER_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_KUBECONFIG = "~/.kube/config"
TIMEOUT = 60


class Unsupported(Exception):
    """The configuration needs a feature only the kubernetes client has."""


class HttpError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        super().__init__("{0} {1}".format(status, reason))
        self.status = status
        self.reason = reason
        self.body = body


def auth_settings(params: Dict[str, Any], options: List[str]) -> Dict[str, Any]:
    """kubernetes.core's ``_create_auth_spec``: the module option if the module offers it and it is set, else
    ``K8S_AUTH_<OPTION>`` (or the client configuration name)."""
    auth: Dict[str, Any] = {}
    for true_name, arg_name in AUTH_OPTIONS.items():
        if arg_name in options and params.get(arg_name) is not None:
            auth[true_name] = params[arg_name]
        elif arg_name == "proxy_headers":
            headers = {}
            for key in _PROXY_HEADER_OPTIONS:
                value = os.getenv("K8S_AUTH_PROXY_HEADERS_{0}".format(key.upper()))
                if value is not None:
                    headers[key] = value
            if headers:
                auth[true_name] = headers
        else:
            value = os.getenv("K8S_AUTH_{0}".format(arg_name.upper())) or os.getenv(
                "K8S_AUTH_{0}".format(true_name.upper())
            )
            if value is not None:
                auth[true_name] = value.lower() not in ("0", "false", "no") if arg_name in _BOOL_OPTIONS else value
    return auth


def impersonation_headers(params: Dict[str, Any]) -> List[Tuple[str, str]]:
    headers: List[Tuple[str, str]] = []
    for arg_name, header in _IMPERSONATION:
        value = params.get(arg_name)
        if value is None:
            value = os.getenv("K8S_AUTH_{0}".format(arg_name.upper()))
            if value is not None and arg_name == "impersonate_groups":
                value = [v for v in value.split(",") if v]
        for item in value if isinstance(value, list) else [value] if value else []:
            headers.append((header, item))
    return headers


class Endpoint:
    """Where the API server is and how to authenticate to it."""

    def __init__(self) -> None:
        self.host = "http://localhost"
        self.authorization: Optional[str] = None
        self.verify = True
        self.ca_file: Optional[str] = None
        self.ca_data: Optional[str] = None
        self.cert: Optional[Tuple[str, str]] = None  # (certificate, key): each a path, or PEM text
        self.server_name: Optional[str] = None


def resolve(auth: Dict[str, Any]) -> Endpoint:
    """kubernetes.core's ``_create_configuration`` for the cases this client implements; Unsupported otherwise."""
    if auth.get("proxy") or auth.get("proxy_headers") or auth.get("persist_config"):
        raise Unsupported("proxy or persist_config")
    if yaml is None:
        raise Unsupported("PyYAML is missing")
    endpoint = Endpoint()
    if auth.get("host"):
        auth["host"] = auth["host"].rstrip("/")

    def given(*names: str) -> bool:
        return all(auth.get(name) for name in names)

    if given("username", "password", "host") or given("api_key", "host") or given("cert_file", "key_file", "host"):
        pass  # everything needed is in the options: no kubeconfig is read
    elif given("kubeconfig") or given("context"):
        _load_kubeconfig(endpoint, auth.get("kubeconfig"), auth.get("context"))
    elif not _load_in_cluster(endpoint):
        _load_kubeconfig(endpoint, None, auth.get("context"))

    if auth.get("host"):
        endpoint.host = auth["host"]
    if auth.get("api_key"):
        endpoint.authorization = "Bearer {0}".format(auth["api_key"])
    elif auth.get("username") and auth.get("password"):
        endpoint.authorization = _basic(auth["username"], auth["password"])
    if auth.get("verify_ssl") is not None:
        endpoint.verify = bool(auth["verify_ssl"])
    if auth.get("ssl_ca_cert"):
        endpoint.ca_file, endpoint.ca_data = auth["ssl_ca_cert"], None
    if auth.get("cert_file") or auth.get("key_file"):
        endpoint.cert = (auth.get("cert_file") or "", auth.get("key_file") or "")
    return endpoint


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode("{0}:{1}".format(username, password).encode("utf-8")).decode("ascii")


def _load_in_cluster(endpoint: Endpoint) -> bool:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token_file = os.path.join(IN_CLUSTER_DIR, "token")
    if not host or not port or not os.path.isfile(token_file):
        return False
    if ":" in host:
        host = "[{0}]".format(host)
    endpoint.host = "https://{0}:{1}".format(host, port)
    with open(token_file) as handle:
        endpoint.authorization = "Bearer {0}".format(handle.read().strip())
    endpoint.ca_file = os.path.join(IN_CLUSTER_DIR, "ca.crt")
    return True


def _named(items: Any, name: Optional[str], what: str) -> Dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get(what) or {}
    raise ValueError("kubeconfig has no {0} named {1!r}".format(what, name))


def _load_kubeconfig(endpoint: Endpoint, kubeconfig: Any, context: Optional[str]) -> None:
    if isinstance(kubeconfig, dict):
        config, base = kubeconfig, ""
    else:
        path = kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
        if os.pathsep in path:
            raise Unsupported("a list of kubeconfig files")
        path = os.path.expanduser(path)
        with open(path) as handle:
            config = yaml.safe_load(handle) or {}
        base = os.path.dirname(os.path.abspath(path))
    ctx = _named(config.get("contexts"), context or config.get("current-context"), "context")
    cluster = _named(config.get("clusters"), ctx.get("cluster"), "cluster")
    user = _named(config.get("users"), ctx.get("user"), "user") if ctx.get("user") else {}
    if "exec" in user or "auth-provider" in user:
        raise Unsupported("credential plugins")
    endpoint.host = (cluster.get("server") or endpoint.host).rstrip("/")
    if user.get("tokenFile"):
        with open(os.path.join(base, user["tokenFile"])) as handle:
            endpoint.authorization = "Bearer {0}".format(handle.read().strip())
    elif user.get("token"):
        endpoint.authorization = "Bearer {0}".format(user["token"])
    elif user.get("username") and user.get("password"):
        endpoint.authorization = _basic(user["username"], user["password"])
    if endpoint.host.startswith("https"):
        endpoint.ca_file, endpoint.ca_data = _file_or_data(cluster, "certificate-authority", base)
        cert, key = _file_or_data(user, "client-certificate", base), _file_or_data(user, "client-key", base)
        if (cert[0] or cert[1]) and (key[0] or key[1]):
            endpoint.cert = (cert[0] or cert[1] or "", key[0] or key[1] or "")
    if "insecure-skip-tls-verify" in cluster:
        endpoint.verify = not cluster["insecure-skip-tls-verify"]
    endpoint.server_name = cluster.get("tls-server-name")


def _file_or_data(section: Dict[str, Any], field: str, base: str) -> Tuple[Optional[str], Optional[str]]:
    """(path, None) or (None, PEM text): kubeconfig's ``<field>`` (relative to the kubeconfig) or ``<field>-data``."""
    data = section.get(field + "-data")
    if data:
        return None, base64.b64decode(data).decode("utf-8")
    if section.get(field):
        return os.path.join(base, section[field]), None
    return None, None


def _load_cert_chain(context: ssl.SSLContext, cert: Tuple[str, str]) -> None:
    """Load a client certificate and key, each a path or PEM text; no key means the certificate file holds both."""
    if not cert[1] and os.path.isfile(cert[0]):
        context.load_cert_chain(cert[0])
        return
    if os.path.isfile(cert[0]) and os.path.isfile(cert[1]):
        context.load_cert_chain(cert[0], cert[1])
        return
    # ssl reads a certificate only from files: PEM from the kubeconfig lives in a private directory just long enough
    with tempfile.TemporaryDirectory(prefix="tenant-tls-") as tmp:
        paths = []
        for index, value in enumerate(cert):
            if not value or os.path.isfile(value):
                paths.append(value or None)
                continue
            path = os.path.join(tmp, str(index))
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
                handle.write(value)
            paths.append(path)
        context.load_cert_chain(paths[0], paths[1])


class HttpTransport:
    """Keep-alive connections, one per calling thread, so parallel writers never wait for each other's sockets."""

    def __init__(self, endpoint: Endpoint, headers: List[Tuple[str, str]]) -> None:
        url = urllib.parse.urlsplit(endpoint.host)
        self.https = url.scheme == "https"
        self.netloc = url.hostname or "localhost"
        self.port = url.port
        self.prefix = url.path.rstrip("/")
        self.headers = list(headers)
        if endpoint.authorization:
            self.headers.append(("Authorization", endpoint.authorization))
        self.context: Optional[ssl.SSLContext] = None
        self.server_name = endpoint.server_name
        if self.https:
            context = ssl.create_default_context(cafile=endpoint.ca_file, cadata=endpoint.ca_data)
            if not endpoint.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if endpoint.cert:
                _load_cert_chain(context, endpoint.cert)
            self.context = context
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.https:
                conn = _HTTPSConnection(self.netloc, self.port, self.context, self.server_name, TIMEOUT)
            else:
                conn = http.client.HTTPConnection(self.netloc, self.port, timeout=TIMEOUT)
            self._local.conn = conn
        return conn

    def request(
        self, method: str, path: str, query: List[Tuple[str, str]], headers: Dict[str, str], body: Optional[bytes]
    ) -> bytes:
        url = self.prefix + path + ("?" + urllib.parse.urlencode(query) if query else "")
        # A kept-alive connection the server has closed fails on first use: reconnect once, but never replay a
        # create, whose first attempt may have been stored.
        attempts = 1 if method == "POST" else 2
        for attempt in range(attempts):
            conn = self._connection()
            try:
                conn.putrequest(method, url, skip_accept_encoding=True)
                for name, value in self.headers:
                    conn.putheader(name, value)
                for name, value in headers.items():
                    conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(body or b"")))
                conn.endheaders(body)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt + 1 == attempts:
                    raise
        if response.status >= 400:
            raise HttpError(response.status, response.reason, data)
        return data


class _HTTPSConnection(http.client.HTTPSConnection):
    """HTTPSConnection that can verify the certificate against kubeconfig's ``tls-server-name``."""

    def __init__(
        self, host: str, port: Optional[int], context: Any, server_name: Optional[str], timeout: float
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_name = server_name

    def connect(self) -> None:
        if not self._server_name:
            super().connect()
            return
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_name)
