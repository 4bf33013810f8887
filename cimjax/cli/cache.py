"""``cimjax cache``: what the cache directory holds (``info``) and deleting entries of it (``clear``).

``clear`` is a dry run unless given ``--yes``. A KIND that is not an entry of the cache, and a negative
``--older-than``, print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from cimjax.cli.common import JsonOpt, out, user_errors

cache_app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@cache_app.command("info")
@user_errors
def info_command(as_json: JsonOpt = False) -> None:
    """The cache directory and, per top-level entry, its file count and size in MB (10^6 bytes)."""
    from cimjax.cache import cache_root
    from cimjax.cache_admin import info

    report = info(cache_root())
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    out.print(f"cache directory: {report['cache_dir']}" + ("" if report["exists"] else " (does not exist)"))
    for row in [*report["entries"], {"name": "total", **report["total"]}]:
        out.print(f"  {row['name']:<16} {row['files']:>8} files {row['mb']:>12.3f} MB", highlight=False)


@cache_app.command("clear")
@user_errors
def clear_command(
    kinds: Annotated[
        list[str],
        typer.Argument(help="entries to delete (see `cimjax cache info`); 'all': every entry but proxy-lm"),
    ],
    older_than: Annotated[
        float | None, typer.Option("--older-than", help="delete only files last modified more than DAYS ago")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="delete; without it, only print what would be deleted")] = False,
) -> None:
    """Delete entries of the cache (a dry run without --yes). proxy-lm (trained LMs) only when named."""
    from cimjax.cache import cache_root
    from cimjax.cache_admin import clear, plan, usage

    root = cache_root()
    planned = plan(root, kinds, older_than)
    verb = "deleted" if yes else "would delete"
    for name, paths in planned.items():
        u = usage(paths)
        out.print(f"{verb} {u.files} files ({u.mb:.3f} MB) of {name}", highlight=False)
    if yes:
        clear(root, planned)
    else:
        out.print(f"dry run in {root}: nothing deleted; add --yes to delete", highlight=False)
