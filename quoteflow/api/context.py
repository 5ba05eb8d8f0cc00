"""What every route needs, kept on `app.state` and handed to routes as a dependency."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from fastapi import Request

from connectors.kafka import routes
from connectors.keycloak import Principal
from models.events import ControlCommand, to_builtins
from quoteflow.api.audit import AuditTrail
from quoteflow.api.metrics import ApiMetrics
from quoteflow.api.schemas import CommandOut
from quoteflow.api.services import ApiServices


@dataclass(frozen=True, slots=True)
class ApiContext:
    services: ApiServices
    metrics: ApiMetrics
    audit: AuditTrail

    def issue(
        self, who: Principal, action: str, target: str, params: dict[str, str]
    ) -> CommandOut:
        """Deliver a control command to the `control` topic, then audit it."""
        command = ControlCommand(
            command_id=uuid.uuid4().hex, ts=time.time_ns(), issued_by=who.username,
            action=action, target=target, params=params,
        )
        command = self.services.publisher.command(command)  # signed
        self.metrics.commands.labels(action).inc()
        self.audit.record(who, "control", {"command": to_builtins(command)})
        kafka = self.services.config.kafka
        topic, key_of = routes(kafka.prefix, kafka.account)[ControlCommand]
        return CommandOut(
            command_id=command.command_id, action=action, target=target, params=params,
            issued_by=who.username, ts=command.ts, topic=topic, key=key_of(command),
        )


def context(request: Request) -> ApiContext:
    return request.app.state.context
