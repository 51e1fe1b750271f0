"""The simulator's account, what every Plivo SDK client pointed at it uses unless told otherwise.

``MA`` + 18 characters: the Plivo SDK refuses an Auth ID of any other shape. The service's
config takes these as the carrier credentials when ``carrier.kind = "simulator"`` leaves them
empty (the service may import the simulator's defaults; the simulator imports nothing of it).
"""

from __future__ import annotations

DEFAULT_AUTH_ID = "MASIMULATOR000000000"
DEFAULT_AUTH_TOKEN = "simulator-auth-token"
