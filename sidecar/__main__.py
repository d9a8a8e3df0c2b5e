"""`python -m sidecar`: start the detection service."""

import os
import sys

# Before torch loads OpenMP: worker threads sleep instead of spinning at every parallel region.
# The model shares the CPU with frame decoding and gRPC; with spinning workers, one busy core made
# a CPU forward pass ~30x slower (measured: 27 ms -> 835 ms on 2 cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .server.app import main
from .server.event_observer import event_observer

sys.exit(main(observer_factory=event_observer))
