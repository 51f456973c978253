"""Findings: one model for every problem diagnose reports, and the catalogue of their codes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any


class Severity(IntEnum):
    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Target:
    """What a change edits: a DaemonSet, one key of a ConfigMap, or a file on one node."""

    kind: str  # DaemonSet | ConfigMap | NodeFile
    namespace: str = ""
    name: str = ""
    key: str = ""  # ConfigMap data key
    node: str = ""  # NodeFile only
    path: str = ""  # NodeFile host path

    def __str__(self) -> str:
        if self.kind == "NodeFile":
            return f"file {self.path} on node {self.node}"
        if self.kind == "ConfigMap":
            return f"ConfigMap {self.namespace}/{self.name} key {self.key}"
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def cluster_wide(self) -> bool:
        return self.kind != "NodeFile"


@dataclass(frozen=True)
class Change:
    """One value to set (None: remove). `key` is the stable name of the field:
    `ds.arg.--cni-conf-dir`, `ds.volume.cni.hostPath`, `ds.mount.cnibin.mountPath`,
    `daemon_config.binDir`, and any field of one container by its name:
    `ds.initContainer.install-multus-binary.resources.limits.memory`,
    `ds.container.kube-multus.securityContext.privileged`."""

    target: Target
    key: str
    value: str | None
    current: str | None = None
    container: str = ""  # DaemonSet args and mounts: which container


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    nodes: tuple[str, ...] = ()  # () = cluster-wide
    object: str = ""  # "DaemonSet kube-system/kube-multus-ds"
    field: str = ""  # "container kube-multus arg --cni-conf-dir"
    current: str | None = None
    expected: str | None = None
    evidence: tuple[str, ...] = ()
    remediation: str = ""
    changes: tuple[Change, ...] = ()

    @property
    def title(self) -> str:
        return CATALOGUE[self.code].title

    def merge_key(self) -> tuple[Any, ...]:
        return (self.code, self.object, self.field, self.current, self.expected, self.message, self.changes)

    def with_nodes(self, nodes: tuple[str, ...]) -> Finding:
        return replace(self, nodes=nodes)


@dataclass(frozen=True)
class Code:
    code: str
    severity: Severity
    title: str
    checks: str
    fix: str


CATALOGUE: dict[str, Code] = {
    c.code: c
    for c in [
        Code(
            "M001",
            Severity.WARNING,
            "several Multus installs",
            "exactly one DaemonSet runs Multus",
            "remove all but one; two Multus installs fight over 00-multus.conf",
        ),
        Code(
            "M002",
            Severity.WARNING,
            "thin and thick mixed",
            "the command, image, args and daemon config agree on thin or thick mode",
            "use the manifest of one mode: thin runs /thin_entrypoint, thick runs multus-daemon",
        ),
        Code(
            "M003",
            Severity.ERROR,
            "daemon config unreadable",
            "the thick daemon config (ConfigMap key or node file) exists and is valid JSON",
            "restore the file or ConfigMap key the daemon reads with -config",
        ),
        Code(
            "M101",
            Severity.ERROR,
            "container path under no mount",
            "every setting read inside the container names a path that a volume mount provides",
            "point it at the mountPath of the volume that holds the host directory",
        ),
        Code(
            "M102",
            Severity.ERROR,
            "host path where a container path belongs",
            "no setting read inside the container holds a host path",
            "use the container path: the volume's mountPath, not its hostPath",
        ),
        Code(
            "M103",
            Severity.ERROR,
            "prefix applied twice",
            "no configured path repeats a run of segments (a pod or distribution prefix applied twice)",
            "use the path with the prefix once, in the world the setting lives in",
        ),
        Code(
            "M104",
            Severity.ERROR,
            "container path where a host path belongs",
            "no setting written into host files holds a path as the container sees it",
            "use the host path: the volume's hostPath, not its mountPath",
        ),
        Code(
            "M105",
            Severity.ERROR,
            "host setting does not match where the file is",
            "each host path written into 00-multus.conf names where Multus really puts the file",
            "set it to the host path of the file Multus writes",
        ),
        Code(
            "M106",
            Severity.ERROR,
            "thick binDir differs between pod and host",
            "with chrootDir set, binDir is mounted at the same path it has on the host, "
            "and is the runtime's CNI bin dir",
            "mount the CNI bin dir at its host path and set binDir to it",
        ),
        Code(
            "M107",
            Severity.ERROR,
            "CNI conf dir volume is not the runtime's",
            "the hostPath volume Multus uses for CNI configs is the directory the node's runtime reads",
            "set the volume's hostPath to the runtime's CNI conf dir",
        ),
        Code(
            "M108",
            Severity.ERROR,
            "CNI bin dir volume is not the runtime's",
            "the hostPath volume Multus installs its binary into is the node's runtime CNI bin dir",
            "set the volume's hostPath to the runtime's CNI bin dir",
        ),
        Code(
            "M109",
            Severity.ERROR,
            "configured path does not exist on the node",
            "a configured directory or file exists on the node (node files known)",
            "create it, or point the setting at one that exists",
        ),
        Code(
            "M110",
            Severity.ERROR,
            "no primary CNI config",
            "the directory Multus takes the primary network from holds a .conf or .conflist file",
            "point the autoconfig dir at the directory the primary CNI writes to",
        ),
        Code(
            "M111",
            Severity.ERROR,
            "shim socket not shared",
            "the thick daemon's socketDir is the host directory the shim uses (daemonSocketDir)",
            "set socketDir to the container path of the host's daemonSocketDir",
        ),
        Code(
            "M112",
            Severity.ERROR,
            "readiness indicator file missing",
            "the readiness indicator file exists (thick waits 45 s for it, then exits 1)",
            "point it at the file the primary CNI writes, or remove the key",
        ),
        Code(
            "M113",
            Severity.WARNING,
            "k3s bin dir pinned to one release",
            "the CNI bin hostPath does not go through k3s's versioned data/<hash> or data/current dir",
            "use the stable /var/lib/rancher/k3s/data/cni (k3s releases from Oct 2024 on)",
        ),
        Code(
            "M114",
            Severity.ERROR,
            "chrootDir is not the host root",
            "the thick chrootDir resolves to the host's /",
            "mount hostPath / and point chrootDir at its mountPath",
        ),
        Code(
            "M115",
            Severity.ERROR,
            "flag the binary does not define",
            "every flag in the Multus container's args is one its binary (thin_entrypoint or multus-daemon) defines",
            "remove the flag, or use its current name (or, for multus-daemon 4, its daemon-config.json key)",
        ),
        Code(
            "M116",
            Severity.ERROR,
            "--cni-version differs from the primary's",
            "a thin --cni-version equals the primary CNI config's cniVersion (or --force-cni-version is set)",
            "remove --cni-version, or set it to the primary's cniVersion",
        ),
        Code(
            "M117",
            Severity.ERROR,
            "thin image in a thick DaemonSet",
            "a thick DaemonSet whose init containers run shell tools uses the -thick image",
            "use the <tag>-thick image for every Multus container",
        ),
        Code(
            "M118",
            Severity.ERROR,
            "Bidirectional mount propagation without privileged",
            "a Multus container with mountPropagation Bidirectional is privileged (the API server rejects it otherwise)",
            "set securityContext.privileged: true on that container, or use HostToContainer",
        ),
        Code(
            "M125",
            Severity.WARNING,
            "kubelet dir volume is not the kubelet's",
            "a hostPath volume mounted at /var/lib/kubelet (multus-daemon's pod-resources path) is the node's "
            "kubelet root dir (k0s: /var/lib/k0s/kubelet, microk8s: /var/snap/microk8s/common/var/lib/kubelet)",
            "set the volume's hostPath to the kubelet's root dir, keeping its mountPath /var/lib/kubelet",
        ),
        Code(
            "M201",
            Severity.ERROR,
            "Multus pod not running",
            "the Multus pod on each node is Running and Ready",
            "see the findings above for the cause; the logs (kubectl logs --previous) hold the error",
        ),
        Code(
            "M202",
            Severity.ERROR,
            "Multus startup error in logs",
            "the Multus logs carry none of the startup errors of the thin entrypoint or thick daemon",
            "fix the setting the message names",
        ),
        Code(
            "M203",
            Severity.WARNING,
            "no Multus config on the node",
            "00-multus.conf(list) exists in the runtime's CNI conf dir while Multus runs",
            "without it pods start without Multus; fix the conf dir setting and restart Multus",
        ),
        Code(
            "M204",
            Severity.ERROR,
            "00-multus.conf names a kubeconfig that is not there",
            "the kubeconfig named in 00-multus.conf(list) exists on the host",
            "set --multus-kubeconfig-file-host to the host path of <cni conf dir>/multus.d/multus.kubeconfig",
        ),
        Code(
            "M205",
            Severity.ERROR,
            "Multus config written where the runtime does not look",
            "no 00-multus.conf(list) lies in a mounted directory that is not the runtime's conf dir",
            "fix the conf dir setting; remove the stray file",
        ),
        Code(
            "M206",
            Severity.ERROR,
            "broken Multus config on the node",
            "every 00-multus.conf(list) in the runtime's conf dir is a JSON object (the runtime loads the first by name)",
            "remove the file; the Multus pod writes a fresh one when it starts",
        ),
        Code(
            "M207",
            Severity.ERROR,
            "Multus config renamed away",
            "a renamed 00-multus.conf(list) (*.cilium_bak, *.bak) is not the only one in the runtime's conf dir "
            "(else the runtime calls the primary CNI directly)",
            "put it back (the plan writes the renamed copy back) and restart that node's Multus pod; stop the "
            "tool that renamed it (Cilium: cni.exclusive=false)",
        ),
        Code(
            "M208",
            Severity.ERROR,
            "primary CNI not ready",
            "where no primary CNI config exists, the DaemonSet of the primary CNI (canal, calico, flannel, cilium, "
            "...) has every pod ready",
            "fix the primary CNI first; Multus recovers once its config appears",
        ),
        Code(
            "M209",
            Severity.WARNING,
            "primary CNI to check by hand",
            "where no primary CNI config exists, a DaemonSet of a known primary CNI explains why (if none does, what to check by hand)",
            "check the primary CNI's pod on the node (kubectl get pods -A -o wide --field-selector spec.nodeName=NODE)",
        ),
        Code(
            "M210",
            Severity.ERROR,
            "Multus config delegates to Multus",
            "the delegate (thin) or clusterNetwork (thick) of 00-multus.conf(list) is not a multus or multus-shim "
            "config",
            "remove the file (and the leftover Multus config it was made from) and restart that node's Multus pod",
        ),
        Code(
            "M211",
            Severity.WARNING,
            "Multus config stale",
            "the primary in 00-multus.conf(list) (delegate name and type, or clusterNetwork) is the primary config "
            "Multus would take now",
            "restart that node's Multus pod: it regenerates the file from the current primary",
        ),
        Code(
            "M212",
            Severity.ERROR,
            "Multus config cniVersion rejects its delegate",
            "00-multus.conf(list), and a thick daemon config in auto mode (the daemon exits before it writes the "
            "file), has no cniVersion of 0.4.0 or later over a delegate below 0.4.0",
            "regenerate it with the primary's cniVersion (thick: set the daemon config's cniVersion)",
        ),
        Code(
            "M213",
            Severity.ERROR,
            "Multus kubeconfig token expired",
            "the service-account token in the kubeconfig 00-multus.conf names has not expired (exp claim only)",
            "restart that node's Multus pod: the entrypoint writes a fresh token",
        ),
        Code(
            "M214",
            Severity.WARNING,
            "Cilium renames other CNI configs",
            "Cilium, where it runs beside Multus, has cni-exclusive false",
            "helm upgrade cilium --reuse-values --set cni.exclusive=false (ConfigMap cilium-config "
            'cni-exclusive: "false"), then restart the Cilium agents',
        ),
        Code(
            "M301",
            Severity.INFO,
            "resources and QoS",
            "the Multus pod's memory limit and QoS class, for information (Burstable pods are evicted first)",
            "set requests equal to limits on every container for Guaranteed QoS",
        ),
        Code(
            "M302",
            Severity.ERROR,
            "Multus killed for memory",
            "the Multus container's last exit was not OOMKilled",
            "raise its memory limit (and keep requests equal to limits)",
        ),
        Code(
            "M303",
            Severity.WARNING,
            "Multus evicted or OOM-killed while not Guaranteed",
            "a Multus pod that was evicted or OOM-killed has QoS class Guaranteed (Burstable pods go first)",
            "set limits equal to requests on every container, init containers included",
        ),
        Code(
            "M304",
            Severity.ERROR,
            "thick daemon socket missing on the host",
            "<daemonSocketDir>/multus.sock exists on the node (the shim on the host dials it for every pod)",
            "get the Multus pod on that node running; check socketDir against daemonSocketDir",
        ),
        Code(
            "M305",
            Severity.ERROR,
            "init container skipped writing to the host",
            "no Multus init container logs that its host directory is non-writeable (SELinux denies unprivileged writes)",
            "make that init container privileged",
        ),
        Code(
            "M306",
            Severity.WARNING,
            "permission denied on a host path",
            "no Multus container logs permission denied on a path it mounts from the host while unprivileged",
            "check the node's SELinux audit log (ausearch -m avc); make the container privileged or give it seLinuxOptions type spc_t",
        ),
        Code(
            "M307",
            Severity.ERROR,
            "Multus container cannot start",
            "the container runtime could start each Multus container (its command exists in the image, its mounts can be made)",
            "use the command that the image has, or the image whose binary the command names; make the host mount shared",
        ),
        Code(
            "M401",
            Severity.ERROR,
            "CNI plugin binary missing",
            "every plugin type and IPAM type that Multus, the primary config and each NetworkAttachmentDefinition "
            "run has a binary in the dirs searched on the node (the Multus binary: in the runtime's bin dir; a NAD "
            "naming a device resource only on nodes that offer it)",
            "install the binary into the runtime's CNI bin dir on every node listed (containernetworking/plugins "
            "for the reference plugins); the fix plan lists it as a manual step",
        ),
        Code(
            "M402",
            Severity.ERROR,
            "NetworkAttachmentDefinition config invalid",
            "spec.config is a JSON object with a type, or a conflist whose every plugin has one",
            "correct spec.config",
        ),
        Code(
            "M403",
            Severity.INFO,
            "NetworkAttachmentDefinition config in a node file",
            "each NetworkAttachmentDefinition has a spec.config (without one Multus reads a file of its name from its confDir, checked by hand)",
            "check by hand that the file exists on every node",
        ),
        Code(
            "M404",
            Severity.ERROR,
            "requested network does not exist",
            "every network the k8s.v1.cni.cncf.io/networks annotation of a pod names is a "
            "NetworkAttachmentDefinition (pods not finished and not on the host network)",
            "create the NetworkAttachmentDefinition in the pod's namespace, or fix the annotation",
        ),
        Code(
            "M405",
            Severity.ERROR,
            "pod started without Multus",
            "a Running pod's network-status lists every network it asks for",
            "make 00-multus.conf the runtime's first config, then recreate the pod",
        ),
        Code(
            "M406",
            Severity.ERROR,
            "networks annotation unreadable",
            "a pod's k8s.v1.cni.cncf.io/networks is a comma list or a JSON list of objects with a name",
            "rewrite the annotation",
        ),
        Code(
            "M900",
            Severity.WARNING,
            "node not checked",
            "every node running Multus could be inspected",
            "see the reason; rerun when the node is reachable",
        ),
        Code(
            "M901",
            Severity.INFO,
            "node files not captured",
            "the snapshot holds the node's files",
            "capture them to check existence of configured paths",
        ),
    ]
}


def sort_key(f: Finding) -> tuple[Any, ...]:
    return (-f.severity, f.code, f.object, f.field, f.nodes)
