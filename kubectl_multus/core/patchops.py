"""JSON patches that change exactly what a fix plan changes, and refuse if anyone else did.

Each replaced value is preceded by a `test` of the value the plan was computed from, so the API
server applies the whole patch or none of it: a DaemonSet edited since we read it is a 422, not
a silent overwrite.
"""

from __future__ import annotations

from typing import Any


def _ptr(parts: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def diff_ops(before: Any, after: Any, at: list[str | int] | None = None) -> list[dict[str, Any]]:
    """RFC 6902 operations turning `before` into `after`, each guarded by a `test`."""
    at = at or []
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        ops: list[dict[str, Any]] = []
        if at and any(key not in before for key in after):
            # `add` replaces a member someone else added meanwhile, and no test can say "absent":
            # test the whole object the member goes into instead.
            ops.append({"op": "test", "path": _ptr(at), "value": before})
        for key in before:
            if key not in after:
                ops += [
                    {"op": "test", "path": _ptr([*at, key]), "value": before[key]},
                    {"op": "remove", "path": _ptr([*at, key])},
                ]
        for key, value in after.items():
            if key in before:
                ops += diff_ops(before[key], value, [*at, key])
            else:
                ops.append({"op": "add", "path": _ptr([*at, key]), "value": value})
        return ops
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after) and at:
        named = all(isinstance(x, dict) and "name" in x for x in before + after)
        if not named or [x["name"] for x in before] == [x["name"] for x in after]:
            ops = []
            for i, (b, a) in enumerate(zip(before, after, strict=True)):
                item = diff_ops(b, a, [*at, i])
                if named and item:
                    # A container or volume is addressed by index: make sure it is still the one we mean
                    # (an `add` carries no test of its own).
                    item.insert(0, {"op": "test", "path": _ptr([*at, i, "name"]), "value": b["name"]})
                ops += item
            return ops
    if not at:
        raise ValueError("the documents differ at their root")
    return [{"op": "test", "path": _ptr(at), "value": before}, {"op": "replace", "path": _ptr(at), "value": after}]


def daemonset_patch(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """The DaemonSet's pod template, changed where the plan changes it and nowhere else."""
    ops = diff_ops(before.get("spec") or {}, after.get("spec") or {}, ["spec"])
    if any(not op["path"].startswith("/spec/template/") for op in ops if op["op"] != "test"):
        raise ValueError("a fix may only change the DaemonSet's pod template")
    return ops


def configmap_patch(key: str, before: str, after: str) -> list[dict[str, Any]]:
    path = _ptr(["data", key])
    return [{"op": "test", "path": path, "value": before}, {"op": "replace", "path": path, "value": after}]


def restart_patch(stamp: str) -> dict[str, Any]:
    """What `kubectl rollout restart` sends: a changed template annotation rolls every pod."""
    return {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
