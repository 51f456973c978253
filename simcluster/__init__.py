"""A simulated Kubernetes cluster for testing kubectl-multus end to end, without a real one.

- `server`: HTTP and WebSocket on 127.0.0.1, shaped like kube-apiserver (routes, Status
  errors, discovery, pods/log, pods/exec with the v4/v5 channel protocol).
- `cluster`: the store, faults a test can switch on, the request log, the kubeconfig.
- `kubelet`: a DaemonSet controller and a kubelet running containers as programs on a
  virtual clock (`process`), through each pod's volumes and mounts (`runtime`, `fs`).
- `multus`: the thin entrypoint, the thick daemon and install_multus, modelled on what the
  real ones do; `busybox`: the commands an exec runs, acting on files through the mounts.

Start one by hand with `python -m simcluster examples/<scenario>`.
"""
