"""Start a simulated cluster on a dump folder and keep it running: `python -m simcluster DIR`.

Prints the kubeconfig to use (`kubectl --kubeconfig PATH get pods -A` works, as does
`kubectl multus diagnose --kubeconfig PATH`). Ctrl-C stops it and removes its files.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from simcluster.cluster import Cluster
from simcluster.process import Clock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simcluster", description=__doc__.splitlines()[0])
    parser.add_argument("scenario", type=Path, help="a dump folder, e.g. examples/k3s-thin-doubled-prefix")
    parser.add_argument(
        "--speed",
        type=float,
        default=10.0,
        help="virtual seconds per real second (default 10: a thick Multus gives up on a missing primary config after 12 s)",
    )
    parser.add_argument("--kubeconfig-out", type=Path, help="also copy the kubeconfig here")
    args = parser.parse_args(argv)
    if not args.scenario.is_dir():
        parser.error(f"{args.scenario}: not a folder")
    cluster = Cluster(clock=Clock(speed=args.speed))
    cluster.load_dump(args.scenario)
    cluster.start()
    cluster.sync()
    assert cluster.kubeconfig is not None
    if args.kubeconfig_out:
        args.kubeconfig_out.write_text(cluster.kubeconfig.read_text())
    print(args.kubeconfig_out or cluster.kubeconfig, flush=True)
    print(f"simulated cluster on {args.scenario} is up; Ctrl-C stops it", file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            cluster.sync()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
