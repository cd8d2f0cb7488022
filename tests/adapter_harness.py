"""Running one adapter alone, as the stage runner would, for adapter tests."""

from __future__ import annotations

import asyncio
import json

from factflow_assets.adapters import ADAPTERS, AdapterContext, Message
from resources.http import new_http_client


def json_message(payload: dict, message_id: str = "m1", metadata: dict | None = None) -> Message:
    return Message(message_id, json.dumps(payload).encode(), "application/json", metadata or {})


def run_adapter(adapter_type: str, message: Message, config: dict | None = None, messages: list[Message] | None = None, policy=None):
    """Open the adapter, process `message` (or each of `messages`), close it; return the emits.

    With several messages it returns a list of outcomes (emits or the exception raised).
    `policy` (a NetworkPolicy) checks every request, as in a stage run.
    """
    adapter_class = ADAPTERS[adapter_type]

    async def main():
        async with new_http_client(request_check=policy.check if policy else None) as http:
            adapter = adapter_class(adapter_class.config_model.model_validate(config or {}), AdapterContext(http, "e1", "r", adapter_type, policy))
            await adapter.open()
            try:
                if messages is None:
                    return list(await adapter.process(message))  # an iterator of outputs made one by one, listed
                outcomes = []
                for m in messages:
                    try:
                        outcomes.append(list(await adapter.process(m)))
                    except Exception as error:  # noqa: BLE001 (the test inspects it)
                        outcomes.append(error)
                return outcomes
            finally:
                await adapter.close()

    return asyncio.run(main())
