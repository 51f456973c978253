"""Image flavour against DaemonSet layout. Upstream publishes `<tag>` (thin) and `<tag>-thick`:
both carry every Multus binary, but only the thick image has the shell tools a thick manifest's
init container runs (`cp` in v4.0.x), so the thin image in a thick DaemonSet fails before Multus
starts (`exec: "cp": executable file not found in $PATH`)."""

from __future__ import annotations

from kubectl_multus.core.findings import Change, Finding, Severity, Target
from kubectl_multus.core.install import Install, pod_spec

UPSTREAM = "k8snetworkplumbingwg/multus-cni"
SHELL_TOOLS = ("cp", "sh", "/bin/sh", "bash", "/bin/bash", "/bin/cp")


def check_image_flavour(inst: Install) -> list[Finding]:
    if inst.mode != "thick" or UPSTREAM not in inst.image or ":" not in inst.image.rsplit("/", 1)[-1]:
        return []
    if inst.image.split("@")[0].endswith("-thick"):
        return []
    inits = [c for c in pod_spec(inst.ds).get("initContainers") or [] if c.get("image") == inst.image]
    needy = [c for c in inits if str((c.get("command") or [""])[0]) in SHELL_TOOLS]
    if not needy:
        return []  # the thin image runs multus-daemon itself: no harm without shell tools
    thick = inst.image.split("@")[0] + "-thick"
    ds = Target("DaemonSet", inst.namespace, inst.name)
    changes = [Change(ds, "ds.image", thick, inst.image, inst.container_name)]
    changes += [Change(ds, "ds.image", thick, inst.image, str(c.get("name"))) for c in inits]
    names = ", ".join(str(c.get("name")) for c in needy)
    return [
        Finding(
            "M117",
            Severity.ERROR,
            f"{inst.ref} runs multus-daemon from the thin image {inst.image}; init container {names} runs "
            f"{(needy[0].get('command') or [''])[0]}, which only the -thick image has, so the pod never starts",
            object=inst.ref,
            field="image",
            current=inst.image,
            expected=thick,
            remediation=f"use {thick} for every Multus container",
            changes=tuple(changes),
        )
    ]
