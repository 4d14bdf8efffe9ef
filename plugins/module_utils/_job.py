# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a module's work ends: a result to return, or JobFailed carrying the message and what was done before.

The work of a module lives in a module_util function that returns the module's result or raises JobFailed;
the module's main() only builds the options and hands both to run_job.
"""

from __future__ import annotations

import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume import Watchdog


class JobFailed(Exception):
    """The work failed. ``msg`` says what happened and what to do next; ``result`` is what the module returns with
    the failure (what was done before it: changed, containers stopped and started again, files written); ``details``
    are more return values (cmd, rc, stderr of a failed command)."""

    def __init__(self, msg: str, result: dict[str, t.Any] | None = None, **details: t.Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.result = dict(result or {})
        self.details = details

    @classmethod
    def from_cli(cls, exc: DockerCliError, result: dict[str, t.Any] | None = None) -> "JobFailed":
        """A failed docker command, with its command line, return code and stderr."""
        return cls(exc.msg, result, cmd=exc.cmd, rc=exc.rc, stderr=exc.stderr)

    def as_fail_kwargs(self) -> dict[str, t.Any]:
        return dict(self.result, msg=self.msg, **self.details)


def run_job(module: t.Any, work: t.Callable[[], dict[str, t.Any]]) -> None:
    """Run ``work()`` and end the module: exit_json with its result, or fail_json with a JobFailed."""
    try:
        result = work()
    except JobFailed as exc:
        module.fail_json(**exc.as_fail_kwargs())
    module.exit_json(**result)


def run_watched(cli: DockerCli, argv: list[str], what: str, seconds: float, hint: str, data: str | None = None,
                on_expiry: t.Callable[[], t.Any] | None = None) -> tuple[int, str, str]:
    """Run a docker command through the module's run_command, stopped after ``seconds`` (then ``on_expiry``, e.g.
    remove its container); JobFailed "WHAT did not finish within N s and was stopped: HINT" when it had to be."""
    kwargs: dict[str, t.Any] = {"data": data, "binary_data": True} if data is not None else {}
    with Watchdog(seconds, what, on_expiry) as watchdog:
        rc, out, err = cli.run_command(argv, before_communicate_callback=watchdog.watch, **kwargs)
    if watchdog.expired:
        raise JobFailed(f"{what} did not finish within {seconds} s and was stopped: {hint}", cmd=argv, rc=rc, stderr=err)
    return rc, out, err
