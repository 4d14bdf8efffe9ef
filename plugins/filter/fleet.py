# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of role aiwfe.rollback.fleet; the logic is plugins/module_utils/_fleet.py (documented in fleet_*.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.aiwfe.rollback.plugins.module_utils._fleet import FleetError, agree, collect, decide, summary


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FleetError as exc:
            raise AnsibleFilterError(f"{func.__name__}: {exc}") from exc
    return run


def fleet_collect(hostvars, hosts, name):
    return _wrap(collect)(hostvars, hosts, name)


def fleet_agree(checks, requested, hosts):
    return _wrap(agree)(checks, requested, hosts)


def fleet_decide(results, hosts, batch, max_fail_percentage):
    return _wrap(decide)(hosts, batch, results, max_fail_percentage)


def fleet_summary(results, hosts, target, kind, reason="", froms=None):
    return _wrap(summary)(hosts, results, target, kind, reason, froms)


class FilterModule:
    """The fleet's decisions."""

    def filters(self):
        return {"fleet_agree": fleet_agree, "fleet_collect": fleet_collect, "fleet_decide": fleet_decide, "fleet_summary": fleet_summary}
