"""The kubelet's root dir as the thick Multus reaches it.

multus-daemon asks the kubelet's pod-resources socket (`/var/lib/kubelet/pod-resources`, a fixed
path in the pod) which devices a pod was given, for networks that name a device resource
(`k8s.v1.cni.cncf.io/resourceName`, e.g. SR-IOV). Upstream mounts host `/var/lib/kubelet` there;
k0s and microk8s keep the kubelet's root elsewhere, so the runtime creates an empty
`/var/lib/kubelet` and those networks fail to attach while everything else works.
"""

from __future__ import annotations

from kubectl_multus.core.distros import KUBELET_ROOT, RuntimeDirs
from kubectl_multus.core.findings import Change, Finding, Severity, Target
from kubectl_multus.core.install import Install
from kubectl_multus.core.paths import norm
from kubectl_multus.core.snapshot import NodeFiles

POD_RESOURCES = "pod-resources"


def check_kubelet_dir(inst: Install, dirs: RuntimeDirs, files: NodeFiles | None) -> list[Finding]:
    root = dirs.distro.kubelet_root
    if root == KUBELET_ROOT or inst.mode != "thick":
        return []  # the thin `multus` binary runs on the host: no volume is involved
    socket_dir = f"{root}/{POD_RESOURCES}"
    if files is not None and files.exists(f"{KUBELET_ROOT}/{POD_RESOURCES}"):
        return []  # this kubelet was given the usual root dir
    out: list[Finding] = []
    for m in inst.mounts.mounts:
        vol = m.volume
        if vol.kind != "hostPath" or vol.host_path is None or norm(vol.host_path) != KUBELET_ROOT:
            continue
        if norm(m.mount_path) != KUBELET_ROOT:
            continue  # mounted for something else than the daemon's fixed pod-resources path
        if files is not None and files.exists(socket_dir) is False:
            out.append(
                Finding(
                    "M125",
                    Severity.INFO,
                    f"volume {vol.name} mounts host {KUBELET_ROOT}; neither it nor {root} (the {dirs.distro.name} "
                    "default) holds the kubelet's pod-resources socket: check the kubelet's --root-dir on the node "
                    "and point the volume there if you use networks that name a device resource",
                    object=inst.ref,
                    field=f"volume {vol.name} hostPath",
                    current=vol.host_path,
                    evidence=(f"host {socket_dir}: absent", f"host {KUBELET_ROOT}/{POD_RESOURCES}: absent"),
                    remediation=f"find the kubelet's root dir (its --root-dir flag) and set volume {vol.name} hostPath to it",
                )
            )
            break
        seen = f"host {socket_dir} exists" if files is not None and files.exists(socket_dir) else None
        out.append(
            Finding(
                "M125",
                Severity.WARNING,
                f"volume {vol.name} mounts host {KUBELET_ROOT}, but the kubelet of this {dirs.distro.name} node keeps "
                f"its root dir in {root}: Multus finds no pod-resources socket, so networks that name a device "
                "resource (resourceName, e.g. SR-IOV) fail to attach",
                object=inst.ref,
                field=f"volume {vol.name} hostPath",
                current=vol.host_path,
                expected=root,
                evidence=(
                    f"{dirs.distro.name}'s kubelet root dir is {root} (unless its kubelet root dir was changed)",
                    *([seen] if seen else []),
                ),
                remediation=f"set volume {vol.name} hostPath to {root} (keep it mounted at {KUBELET_ROOT})",
                changes=(
                    Change(
                        Target("DaemonSet", inst.namespace, inst.name),
                        f"ds.volume.{vol.name}.hostPath",
                        root,
                        vol.host_path,
                    ),
                ),
            )
        )
        break
    return out
