"""Who made a request, as established by a validated access token."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.keycloak.errors import InsufficientRole

# The realm's application roles. Keycloak nests them as composites (admin ⊇ trader ⊇ viewer)
# and expands composites when it issues a token, so an admin's token lists all three and a
# role check is a plain membership test.
ROLES = frozenset({"viewer", "trader", "admin"})


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    subject: str
    roles: frozenset[str]

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        realm_roles: Iterable[str] = claims.get("realm_access", {}).get("roles", ())
        return cls(
            username=claims.get("preferred_username") or claims["sub"],
            subject=claims["sub"],
            # Keycloak's own roles (offline_access, default-roles-…) mean nothing to the API.
            roles=ROLES.intersection(realm_roles),
        )

    def has_role(self, role: str) -> bool:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; the realm's roles are {sorted(ROLES)}")
        return role in self.roles

    def require(self, role: str) -> None:
        if not self.has_role(role):
            raise InsufficientRole(f"{self.username} lacks the {role} role")
