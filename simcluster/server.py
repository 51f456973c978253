"""HTTP and WebSocket front of the simulated cluster: routes the real client's requests.

Paths, verbs, content types, status codes and `Status` bodies follow kube-apiserver, so the
official client raises against this server exactly what it raises against a real one.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simcluster import api, websocket
from simcluster.api import ApiError, Kind
from simcluster.cluster import Cluster, Request


def _bool(values: list[str] | None) -> bool:
    # Go's strconv.ParseBool: the 35 client sends "True", newer ones "true".
    return values is not None and bool(values) and values[-1] in ("1", "t", "T", "true", "True", "TRUE")


class Route:
    """A parsed resource URL."""

    def __init__(self, kind: Kind | None, ns: str, name: str, sub: str) -> None:
        self.kind, self.ns, self.name, self.sub = kind, ns, name, sub


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    _recorded = False
    server: SimServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- plumbing --------------------------------------------------------------------
    def _record(self, code: int) -> None:
        """Log the request before the client can see the answer: a test that reads the log
        right after a call must find that call in it."""
        if self._recorded:
            return
        self._recorded = True
        self._code = code
        method, path, query, verb, route = self._what
        kind = route.kind.resource if route.kind else ""
        self.server.cluster.record(
            Request(method, path, query, verb, kind, route.ns, route.name, code, self.headers.get("Content-Type", ""))
        )

    def _send(self, code: int, body: Any, ctype: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self._record(code)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self._code = code

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise api.bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        cluster = self.server.cluster
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        self._code = 0
        self._recorded = False
        verb, route = "discovery", Route(None, "", "", "")
        self._what: tuple[str, str, dict[str, list[str]], str, Route] = (method, url.path, query, verb, route)
        try:
            cluster.wait_latency()
            parts = [p for p in url.path.split("/") if p]
            body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
            with cluster.lock:
                handled = self._discovery(parts)
                if handled is None:
                    route = self._route(parts)
                    verb = self._verb(method, route)
                    self._what = (method, url.path, query, verb, route)
                    kind = route.kind
                    assert kind is not None
                    for rbac_verb in _rbac_verbs(verb, cluster.version):
                        cluster.check(
                            method,
                            url.path,
                            rbac_verb,
                            kind,
                            route.sub,
                            route.ns,
                            route.name,
                            json.dumps(body) if body else "",
                        )
                    if verb == "exec":
                        exec_args = self._exec_prepare(route, query)
                    else:
                        result = self._dispatch(verb, route, query, body)
                else:
                    cluster.check(method, url.path, "get", None, "", "", "")
                    result = handled
                # Serialised under the lock: a response never mixes two states of the cluster.
                payload = (
                    b"" if verb == "exec" else result if isinstance(result, bytes) else json.dumps(result).encode()
                )
            if verb == "exec":
                self._exec_run(route, query, *exec_args)
            elif isinstance(result, bytes):
                self._send(200, result, "text/plain")
            else:
                self._send(201 if verb == "create" else 200, payload)
        except ApiError as err:
            self._send(err.code, err.status())
        except websocket_refused as refused:
            self._send(refused.code, refused.body, refused.ctype)
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception as exc:  # a bug in the simulation: answer like a failing apiserver, keep serving
            self._send(
                500, ApiError(500, "InternalError", f"Internal error occurred: {type(exc).__name__}: {exc}").status()
            )
        finally:
            self._record(self._code)

    # --- routing ---------------------------------------------------------------------------
    def _discovery(self, parts: list[str]) -> Any:
        store = self.server.cluster.store
        if parts == ["version"]:
            return self.server.cluster.version
        if parts == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
            }
        if parts == ["apis"]:
            groups: dict[str, list[str]] = {}
            for kind in store.kinds.values():
                if kind.group:
                    groups.setdefault(kind.group, [])
                    if kind.version not in groups[kind.group]:
                        groups[kind.group].append(kind.version)
            groups.setdefault("authorization.k8s.io", ["v1"])
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_group(g, vs) for g, vs in sorted(groups.items())],
            }
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group = "" if parts[0] == "api" else parts[1]
            version = parts[-1]
            kinds = [k for k in store.kinds.values() if k.group == group and k.version == version]
            if group == "authorization.k8s.io":
                return {
                    "kind": "APIResourceList",
                    "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}",
                    "resources": [
                        {
                            "name": "selfsubjectaccessreviews",
                            "singularName": "selfsubjectaccessreview",
                            "namespaced": False,
                            "kind": "SelfSubjectAccessReview",
                            "verbs": ["create"],
                        }
                    ],
                }
            if not kinds:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            resources = []
            for k in kinds:
                resources.append(
                    {
                        "name": k.plural,
                        "singularName": k.kind.lower(),
                        "namespaced": k.namespaced,
                        "kind": k.kind,
                        "verbs": list(k.verbs),
                        "shortNames": list(k.short),
                    }
                )
                if k.kind == "Pod":
                    resources += [
                        {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
                        {
                            "name": "pods/exec",
                            "singularName": "",
                            "namespaced": True,
                            "kind": "PodExecOptions",
                            "verbs": ["create", "get"],
                        },
                    ]
            gv = f"{group}/{version}" if group else version
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
        if len(parts) == 2 and parts[0] == "apis":
            versions = sorted({k.version for k in store.kinds.values() if k.group == parts[1]})
            if not versions:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _group(parts[1], versions)
        return None

    def _route(self, parts: list[str]) -> Route:
        store = self.server.cluster.store
        not_found = ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[:1] == ["api"] and len(parts) >= 3 and parts[1] == "v1":
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 4:
            group, rest = parts[1], parts[3:]
        else:
            raise not_found
        if group == "authorization.k8s.io" and rest == ["selfsubjectaccessreviews"]:
            return Route(
                Kind("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
                "",
                "",
                "",
            )
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        kind = store.kind(group, rest[0])
        if kind is None or len(rest) > 3:
            raise not_found
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and not (kind.kind == "Pod" and sub in ("log", "exec", "status")) and sub != "status":
            raise not_found
        return Route(kind, ns, name, sub)

    def _verb(self, method: str, route: Route) -> str:
        if route.sub in ("exec", "log"):
            return route.sub
        if not route.name:
            return {"GET": "list", "POST": "create", "DELETE": "deletecollection"}.get(method, "unsupported")
        return {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "unsupported")

    def _dispatch(self, verb: str, route: Route, query: dict[str, list[str]], body: Any) -> Any:
        cluster = self.server.cluster
        kind = route.kind
        assert kind is not None
        dry = bool(query.get("dryRun"))
        if kind.kind == "SelfSubjectAccessReview":
            if verb != "create":
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
            return cluster.access_review(body or {})
        if verb == "list":
            if query.get("watch", [""])[-1] in ("true", "1", "True"):
                raise api.bad_request("watch is not served by the simulated cluster")
            return self._list(kind, route.ns or None, query)
        if verb == "get":
            return cluster.get(kind, route.ns, route.name)
        if verb == "create":
            return cluster.create(kind, route.ns, body or {}, dry)
        if verb == "update":
            return cluster.replace(kind, route.ns, route.name, body or {}, dry)
        if verb == "patch":
            return cluster.patch(kind, route.ns, route.name, body, self.headers.get("Content-Type", ""), dry)
        if verb == "delete":
            obj = cluster.delete(kind, route.ns, route.name, dry)
            if kind.kind in ("Pod", "DaemonSet", "Namespace"):
                return obj
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": route.name,
                    "group": kind.group,
                    "kind": kind.plural,
                    "uid": obj["metadata"].get("uid"),
                },
            }
        if verb == "deletecollection":
            items = self._list(kind, route.ns or None, query)["items"]
            for item in items:
                cluster.delete(kind, item["metadata"].get("namespace", ""), item["metadata"]["name"], dry)
            return {**self._list(kind, route.ns or None, {}), "items": items}
        if verb == "log":
            pod = cluster.get(kind, route.ns, route.name)
            return cluster.kubelet.logs(pod, query).encode()
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _list(self, kind: Kind, ns: str | None, query: dict[str, list[str]]) -> dict[str, Any]:
        from simcluster import selectors

        cluster = self.server.cluster
        items = cluster.list(kind, ns)
        try:
            if query.get("labelSelector", [""])[-1]:
                sel = selectors.parse_label_selector(query["labelSelector"][-1])
                items = [o for o in items if sel.matches((o.get("metadata") or {}).get("labels") or {})]
            if query.get("fieldSelector", [""])[-1]:
                fields = selectors.parse_field_selector(query["fieldSelector"][-1], _FIELDS.get(kind.kind, _FIELDS[""]))
                items = [o for o in items if fields.matches(o)]
        except selectors.SelectorError as exc:
            raise api.bad_request(str(exc)) from exc
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": {"resourceVersion": cluster.store.resource_version},
            "items": items,
        }

    # --- exec --------------------------------------------------------------------------------
    def _exec_prepare(self, route: Route, query: dict[str, list[str]]) -> tuple[Any, str]:
        cluster = self.server.cluster
        assert route.kind is not None
        pod = cluster.get(route.kind, route.ns, route.name)
        cluster.kubelet.exec_fs(pod, query.get("container", [""])[-1])  # refused before the upgrade
        if self.headers.get("Upgrade", "").lower() != "websocket":
            # SPDY, which kubectl falls back to, is not simulated: only the WebSocket protocol.
            raise api.bad_request("Upgrade request required")
        protocol = websocket.choose_protocol(self.headers.get("Sec-WebSocket-Protocol", ""))
        if protocol is None:
            raise api.bad_request("no supported subprotocol (want v5.channel.k8s.io or v4.channel.k8s.io)")
        if not query.get("command"):
            raise api.bad_request("you must specify at least 1 command")
        return pod, protocol

    def _exec_run(self, route: Route, query: dict[str, list[str]], pod: Any, protocol: str) -> None:
        from simcluster import busybox
        from simcluster.runtime import has_tools

        cluster = self.server.cluster
        self._record(101)
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", websocket.accept_key(self.headers.get("Sec-WebSocket-Key", "")))
        self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self._code = 101
        self.close_connection = True
        ws = websocket.WebSocket(self.rfile, self.wfile, self.connection)  # type: ignore[arg-type]
        want_out, want_err = _bool(query.get("stdout")), _bool(query.get("stderr"))
        ws.send(bytes([websocket.STDOUT if want_out else websocket.STDERR]))
        stdin = b""
        if _bool(query.get("stdin")):
            stdin = ws.read_stdin(half_close=protocol.startswith("v5"), idle=0.5)
        with cluster.lock:
            try:  # the container may have stopped while stdin arrived
                fs, image, env = cluster.kubelet.exec_target(pod, query.get("container", [""])[-1])
            except ExecRefused as refused:
                ws.send_status(None, refused.body.decode(errors="replace"))
                ws.close()
                return
            argv0 = query["command"][0]
            if not has_tools(image):
                # A distroless image: the runtime cannot even start the command.
                ws.send_status(
                    None,
                    f'OCI runtime exec failed: exec failed: unable to start container process: exec: "{argv0}": executable file not found in $PATH: unknown',
                )
                ws.close()
                return
            path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            faults = cluster.faults
            breaks = (
                faults.exec_breaks_after is not None
                and faults.exec_breaks_on in (None, argv0)
                and faults.exec_breaks_times != 0
            )
            if breaks and faults.exec_breaks_times is not None:
                faults.exec_breaks_times -= 1
            if breaks and not faults.exec_broken_ran:
                self.connection.shutdown(2)  # dropped before the command could run
                return
            done = busybox.run(query["command"], fs, stdin=stdin, env={"PATH": path, **env})
        if breaks:
            if want_out:
                ws.send_channel(websocket.STDOUT, done.stdout[: faults.exec_breaks_after])
            self.connection.shutdown(2)
            return
        if want_out and done.stdout:
            ws.send_channel(websocket.STDOUT, done.stdout)
        if want_err and done.stderr:
            ws.send_channel(websocket.STDERR, done.stderr)
        ws.send_status(done.exit_code)
        ws.close()


class ExecRefused(Exception):
    """The kubelet refuses the exec before the upgrade (the client sees `Handshake status …`)."""

    def __init__(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        super().__init__(body.decode(errors="replace"))
        self.code, self.body, self.ctype = code, body, ctype


websocket_refused = ExecRefused

_FIELDS = {
    "": ("metadata.name", "metadata.namespace"),
    "Pod": (
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "Node": ("metadata.name", "spec.unschedulable"),
    "Event": (
        "metadata.name",
        "metadata.namespace",
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "reason",
        "type",
        "source",
    ),
    "Secret": ("metadata.name", "metadata.namespace", "type"),
}


def _rbac_verbs(verb: str, version: dict[str, str]) -> list[str]:
    """Exec over WebSocket is a GET: authorised as `get pods/exec`, plus `create` from 1.35 on
    (kubernetes#78741, kubernetes PR 134577)."""
    if verb == "exec":
        minor = int("".join(ch for ch in version.get("minor", "0") if ch.isdigit()) or 0)
        return ["get", "create"] if minor >= 35 else ["get"]
    return [{"log": "get"}.get(verb, verb)]


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": name, "versions": gvs, "preferredVersion": gvs[0]}


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    cluster: Cluster

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # a client hanging up is not news


def serve(cluster: Cluster) -> SimServer:
    server = SimServer(("127.0.0.1", 0), Handler)
    server.cluster = cluster
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="simcluster-api", daemon=True
    ).start()
    return server
