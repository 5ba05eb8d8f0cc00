"""The quote flow steered on the real broker: signed commands on `control` change the intents
it sends on `orders.intents` (parameters, strategy, pause and resume per instrument and
globally), each command is answered on `control.acks`, forged, unsigned, stale, replayed
and out-of-range commands are refused there and change nothing, and the state survives a
SIGKILL and restart from the recovery snapshot."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from connectors.kafka import EventProducer, KafkaConfig
from connectors.kafka.command_keys import CommandSigner
from models.events import ControlAck, ControlCommand, OrderIntent, decode
from tests.flow_runs import intents_on, publish, recorded_events, start_flow
from tests.kafka_service import kafka_toml, new_deployment, read_topic

pytestmark = pytest.mark.integration

BTC, ETH = "binance:BTC/USDT", "binance:ETH/USDT"
S = 1_000_000_000


@pytest.fixture(scope="module")
def events(shared_data):
    return recorded_events(8000)


class Operator:
    """Signs and publishes commands as the control API does; reads the flow's answers."""

    def __init__(self, config: KafkaConfig, signer: CommandSigner):
        self.config = config
        self.sign = signer
        self.producer = EventProducer(config)

    def command(self, action: str, target: str, ts: int | None = None,
                **params: str) -> ControlCommand:
        return self.sign(ControlCommand(
            command_id=uuid.uuid4().hex, ts=time.time_ns() if ts is None else ts,
            issued_by="alice", action=action, target=target, params=params,
        ))  # type: ignore[arg-type]

    def send(self, command: ControlCommand) -> ControlCommand:
        self.producer.send(command)
        self.producer.flush(10)
        return command

    def acks(self) -> dict[str, ControlAck]:
        return {ack.command_id: ack for ack in
                (decode(value) for _, _, value in read_topic(self.config, "control.acks"))}

    def ack(self, command: ControlCommand, flow_log: Path) -> ControlAck:
        return wait_for(lambda: self.acks().get(command.command_id),
                        f"the ack of {command.action} {command.target}", flow_log)


def wait_for(probe: Callable, what: str, flow_log: Path, timeout_s: float = 60.0):
    """`probe()` once it is truthy: each probe reads the topics anew, so this waits on what
    the flow has published, not on a guess of how long it takes."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout_s:g} s; flow log:\n"
                                 + flow_log.read_text()[-3000:])
        time.sleep(0.05)


def intent(config: KafkaConfig, key: str, version: int) -> Callable[[], OrderIntent | None]:
    """The probe for `key`'s intent decided under control state `version`."""
    def probe() -> OrderIntent | None:
        return next((i for i in intents_on(config)
                     if i.key == key and i.intent_id.endswith(f":c{version}")), None)
    return probe


def flow_config(path: Path, config: KafkaConfig, signer: CommandSigner, recovery: Path) -> Path:
    path.write_text(
        kafka_toml(config)
        + f'[recovery]\ndirectory = "{recovery}"\nsnapshot_interval_s = 0.2\n'
        + f'[commands]\npublic_keys = ["{signer.public_key}"]\n'
    )
    return path


def test_signed_commands_steer_the_flow_and_every_command_is_answered(
    kafka_bootstrap, events, tmp_path
):
    config = new_deployment(kafka_bootstrap)
    publish(config, events)
    signer = CommandSigner(Ed25519PrivateKey.generate())
    operator = Operator(config, signer)
    config_file = flow_config(tmp_path / "q.toml", config, signer, tmp_path / "recovery")
    log = tmp_path / "flow.log"
    flow = start_flow(config_file, log=log)
    try:
        # Both instruments quote under the configuration first.
        wait_for(lambda: {i.key for i in intents_on(config)} >= {BTC, ETH}, "intents", log)
        assert not any(":c" in i.intent_id for i in intents_on(config))

        # New parameters: BTC requotes at once with them, on the book it has.
        sized = operator.send(operator.command(
            "set_params", BTC, strategy="avellaneda-stoikov-infinite", order_size="0.002"))
        ack = operator.ack(sized, log)
        assert (ack.status, ack.process, ack.issued_by) == ("applied", "quote", "alice")
        assert ack.state["strategies"][BTC]["params"] == {"order_size": "0.002"}
        quoted = wait_for(intent(config, BTC, 1), "BTC quotes with the new size", log)
        assert quoted.bids and {q.size for q in quoted.bids + quoted.asks} == {Decimal("0.002")}

        # A strategy switch.
        operator.ack(operator.send(operator.command(
            "set_params", BTC, strategy="ladder", levels="2")), log)
        ladder = wait_for(intent(config, BTC, 2), "BTC on the ladder", log)
        assert ladder.strategy == "ladder" and len(ladder.bids) == len(ladder.asks) == 2

        # Pause one instrument, then everything: each sends an empty desired state once.
        operator.ack(operator.send(operator.command("pause", BTC)), log)
        withdrawn = wait_for(intent(config, BTC, 3), "BTC withdrawn", log)
        assert withdrawn.bids == withdrawn.asks == []
        operator.ack(operator.send(operator.command("pause", "*")), log)
        eth_withdrawn = wait_for(intent(config, ETH, 4), "ETH withdrawn", log)
        assert eth_withdrawn.bids == eth_withdrawn.asks == []

        # Resuming everything leaves BTC paused on its own; resuming BTC quotes it again.
        operator.ack(operator.send(operator.command("resume", "*")), log)
        assert wait_for(intent(config, ETH, 5), "ETH resumed", log).bids
        resume_btc = operator.send(operator.command("resume", BTC))
        operator.ack(resume_btc, log)
        resumed = wait_for(intent(config, BTC, 6), "BTC resumed", log)
        assert resumed.strategy == "ladder" and len(resumed.bids) == 2
        assert intent(config, BTC, 5)() is None  # BTC heard of c5, and stayed paused

        # What must never be acted on is answered as refused, and changes nothing.
        forged = msgspec.structs.replace(operator.command("pause", "*"), issued_by="mallory")
        unsigned = ControlCommand(command_id=uuid.uuid4().hex, ts=time.time_ns(),
                                  issued_by="mallory", action="pause", target="*")
        refused = {
            "bad_signature": forged,
            "unsigned": unsigned,
            "stale": operator.command("pause", "*", ts=time.time_ns() - 120 * S),
            "replayed": resume_btc,
            "bad_params": operator.command("set_params", "*", strategy="ladder",
                                           levels="30000000"),
        }
        for command in refused.values():
            operator.send(command)
        for reason, command in refused.items():
            ack = operator.ack(command, log)
            assert ack.status == "refused" and ack.reason.startswith(reason), ack
            assert ack.state["version"] == 6
        assert intent(config, BTC, 7)() is None and intent(config, ETH, 7)() is None

        # The state and the nonces seen survive a kill: from the last snapshot, and what came
        # after it is read again and decided again alike (it is still fresh).
        flow.kill()
        flow.wait(timeout=30)
        flow = start_flow(config_file, log=log)
        operator.ack(operator.send(operator.command("pause", ETH)), log)
        assert wait_for(intent(config, ETH, 7), "ETH paused after the restart", log).bids == []
        # Its ack came after everything re-read: now a replay is refused by the new process.
        replays = replayed(config, resume_btc)
        operator.send(resume_btc)
        wait_for(lambda: replayed(config, resume_btc) > replays, "the replay refused", log)
    finally:
        flow.kill()
        flow.wait(timeout=30)
        operator.producer.close()


def replayed(config: KafkaConfig, command: ControlCommand) -> int:
    acks = (decode(value) for _, _, value in read_topic(config, "control.acks"))
    return sum(a.command_id == command.command_id and a.reason == "replayed" for a in acks)
