"""`python -m sidecar`: start the detection service."""

import sys

from .server import main

sys.exit(main())
