"""A Capsule CRM v2 API simulator for tests and demos.

It serves the endpoints oppsync uses (reference: capsule-api.md) from an
in-memory tenant, with Capsule's quirks on purpose: the asymmetric
owner/team writes, milestone automations that clear the owner after
create, the per-user rate limit with its headers, and injectable faults
(errors, latency, writes that commit but answer late or 502).

Public surface:

- :func:`create_app`: the ASGI app for a :class:`SimulatorState`;
- :func:`load_seed` and :func:`state_from_seed`: build a tenant;
- :func:`build_dataset_seed`: the demo seed from the CRM data set;
- :func:`serve`: run it under uvicorn (blocking).

Warning:
    The ``/_sim/`` control endpoints take no token. Bind loopback only.
"""

from .app import create_app
from .dataset import build_dataset_seed
from .seed import SeedError, load_seed, state_from_seed
from .server import serve
from .state import SimulatorState

__all__ = [
    "SeedError",
    "SimulatorState",
    "build_dataset_seed",
    "create_app",
    "load_seed",
    "serve",
    "state_from_seed",
]
