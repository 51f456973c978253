"""Run by test_client_versions in a subprocess whose sys.path holds one version of the
`kubernetes` client: the calls the product makes, against a simulated cluster, as JSON.

usage: python client_smoke.py KUBECONFIG POD
"""

from __future__ import annotations

import json
import sys
from typing import Any


def exec_status(core: Any, pod: str, argv: list[str], stdin: bytes | None = None) -> dict[str, Any]:
    from kubernetes.stream import stream

    ws = stream(
        core.connect_get_namespaced_pod_exec, pod, "kube-system", command=argv, container="main",
        stdin=stdin is not None, stdout=True, stderr=True, tty=False, _preload_content=False,
    )  # fmt: skip
    if stdin is not None:
        ws.write_stdin(stdin.decode())
        if hasattr(ws, "close_channel"):  # v5 only (client 36 on)
            ws.close_channel(0)
    ws.run_forever(timeout=10)
    out, err, status = ws.read_stdout(), ws.read_stderr(), ws.read_channel(3)
    ws.close()
    ws.sock.shutdown()  # websocket-client leaves it open once the server has closed first
    return {"stdout": out, "stderr": err, "status": json.loads(status) if status else None}


def main(kubeconfig: str, pod: str) -> None:
    import kubernetes
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig, persist_config=False)
    core = client.CoreV1Api(api)
    result: dict[str, Any] = {"version": kubernetes.__version__}
    result["nodes"] = [n.metadata.name for n in core.list_node().items]
    result["pods"] = [
        p.metadata.name for p in core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-a").items
    ]
    core.patch_namespaced_config_map("cfg", "kube-system", {"data": {"k": "v"}})
    result["cm"] = core.read_namespaced_config_map("cfg", "kube-system").data
    try:
        core.read_namespaced_config_map("missing", "kube-system")
    except client.ApiException as exc:
        result["missing"] = exc.status
    result["json"] = exec_status(core, pod, ["cat", "/host/etc/cni/net.d/10-x.conflist"])
    result["fail"] = exec_status(core, pod, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    if hasattr(client.CoreV1Api, "connect_get_namespaced_pod_exec"):
        result["stdin"] = exec_status(core, pod, ["dd", "of=/host/etc/cni/net.d/written"], stdin=b"hello\n")
    api.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
