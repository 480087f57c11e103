"""`caravan keys rotate|list`: the token-signing key ring."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from backend.commandline import Command, print_json, with_services
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.runtime import Services


def _keys_arguments(keys: argparse.ArgumentParser) -> None:
    keys_cmds = keys.add_subparsers(dest="action", required=True)
    rotate = keys_cmds.add_parser(
        "rotate",
        help="add a signing key: published now, signing once every server has loaded it "
        "(about 35 s); the old key verifies until its tokens expire",
    )
    rotate.add_argument(
        "--now", action="store_true", help="sign with the new key at once (a compromised key)"
    )
    keys_cmds.add_parser("list", help="list the signing keys and until when they verify")


def cmd_keys(settings: Settings, args: argparse.Namespace) -> None:
    async def work(services: Services) -> Any:
        if args.action == "rotate":
            key, activates_at = await services.keys.rotate(now=args.now)
            print(f"signing key {key.kid} signs from {activates_at}", file=sys.stderr)
        else:
            await services.keys.load()
        return await services.keys.describe()

    infos = with_services(settings, work)
    print_json(
        {
            "keys": [
                {
                    "kid": info.kid,
                    "created_at": info.created_at,
                    "activates_at": info.activates_at,
                    "retired_at": info.retired_at,
                    "verifies_until": info.verifies_until,
                }
                for info in infos
            ]
        }
    )


COMMANDS = (Command("keys", "the token-signing key ring", cmd_keys, _keys_arguments),)
