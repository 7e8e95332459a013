"""The GMS test double: the one protocol-faithful stand-in for DataHub GMS v1.7.0 the project
keeps (no Docker here, so no real GMS). See server.py for what it serves and the other modules for
the DataHub source each behaviour was taken from.
"""

from devstack.gms_double.auth import Principal
from devstack.gms_double.mcl import ProducedMcl
from devstack.gms_double.server import GmsDouble

__all__ = ["GmsDouble", "Principal", "ProducedMcl"]
