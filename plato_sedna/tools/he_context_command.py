"""``plato-sedna he-context FILE``: write a fedavg_he job's CKKS context, to store as its Secret."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plato_sedna.errors import PlatoSednaError

PROG = "plato-sedna he-context"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write a fresh TenSEAL CKKS context (Plato's fedavg_he parameters, secret key included) "
        "for one fedavg_he job; every worker of the job mounts the same one.",
    )
    parser.add_argument("file", type=Path, help="where to write it (mode 600)")
    parser.add_argument("--secret", default="he-context", help="the Secret name in the printed command (default: %(default)s)")
    parser.add_argument("--namespace", default="default", help="the namespace in the printed command")
    parser.add_argument("--force", action="store_true", help="replace an existing file (its jobs' keys are lost)")
    return parser


def main(argv: list[str]) -> int:
    from plato_sedna.he_context import SECRET_KEY, write_context

    args = build_parser().parse_args(argv)
    if args.file.exists() and not args.force:
        print(
            f"{PROG}: error: {args.file} exists; a job's workers must keep one context, "
            "so pick another file or pass --force to replace it",
            file=sys.stderr,
        )
        return 2
    try:
        path = write_context(args.file)
    except (OSError, PlatoSednaError) as error:
        print(f"{PROG}: error: cannot write {args.file}: {error}", file=sys.stderr)
        return 1
    print(f"wrote the CKKS context {path} ({path.stat().st_size} bytes, secret key included; keep it private)")
    print(
        f"store it as the job's Secret and mount it in every pod (plato-sedna render --he-secret {args.secret}):\n"
        f"  kubectl -n {args.namespace} create secret generic {args.secret} --from-file={SECRET_KEY}={path}"
    )
    return 0
