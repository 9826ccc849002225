"""``sys.mint``: the authority to create capabilities within a namespace.

Never granted by default: a host grants it deliberately, with a ``namespace`` (``"user.alice"`` lets a
script mint ``user.alice`` and ``user.alice.*``; ``"*"`` mints anything, including every registered
capability with any limits). Its ``mint`` method and the ``mint`` opcode are one code path, so the same
namespace checks apply to both.
"""

from __future__ import annotations

from ..opcodes import REQUIRED
from .base import Capability, Limit, ParamSpec, method


class SysMint(Capability):
    type = "sys.mint"
    label = "Mint capabilities"
    description = ("Create new capabilities whose type lies within this authority's namespace "
                   "(on a '.' boundary: 'fs' covers 'fs.read', never 'fsx.read').")
    default_grant = False
    limits = (Limit("namespace", "string", REQUIRED, "Types this authority may mint: this name and the names "
                    "below it ('*' for every type)", kind="namespace"),)

    @method("mint", ParamSpec("type", "string", description="The capability type to mint"),
            ParamSpec("params", "object", None, "Its parameters (limits for registered types)"),
            returns="capability", label="Mint")
    def mint(self, ctx, type, params):  # noqa: A002 - the declared parameter name scripts use
        """Mint a capability of a type within this authority's namespace (same checks as the mint opcode)."""
        return ctx.manager.mint(ctx.handle, type, params, op="sys.mint.mint")
