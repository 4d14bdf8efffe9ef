# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check AWX / AAP survey specs (the JSON a job template's survey_spec endpoint takes) offline.

Two sets of rules:

* AWX's own (what POST .../survey_spec/ rejects, and what makes a default silently unusable at launch - AWX drops a
  default that fails its own launch-time check): name, description and a non-empty spec list; per question type,
  question_name and variable strings, required a boolean; type one of text, textarea, password, integer, float,
  multiplechoice, multiselect; no variable twice; a default of the question's type; min and max integers (or null)
  with min <= max, and a default within them; choices (a list of strings or a newline-separated string) for the two
  choice types, at most one default for multiplechoice and every default line among the choices (whole lines: AWX
  itself only tests substrings of a string of choices); no default on a password question (it would be stored in
  the spec); variables valid Ansible identifiers.
* This project's: a destructive opt-in (variable survey_optin_*) is a required multiplechoice whose choices are
  exactly yes and no and whose default is no; the collection's own opt-in variables (full_rollback_volume_prune, ...)
  are never survey variables - a survey answer is the string "yes"/"no" and the wrapper playbook turns it into the
  boolean; a typed confirmation (survey_confirm_*) is a text question with no default; no variable in the awx_ /
  tower_ namespace AWX fills itself; every question has a question_description.

    python tests/tools/awx_survey.py examples/operator/awx/surveys/*.json     (exit 1 and one line per problem)
"""

from __future__ import annotations

import json
import keyword
import re
import sys

TYPES = {
    "text": (str,),
    "textarea": (str,),
    "password": (str,),
    "multiplechoice": (str,),
    "multiselect": (str,),
    "integer": (int,),
    "float": (float, int),
}
CHOICE_TYPES = ("multiplechoice", "multiselect")
TEXT_TYPES = ("text", "textarea", "password")
# The collection's opt-in variables for destructive steps: the wrappers set them from survey_optin_* answers.
COLLECTION_OPTINS = (
    "full_rollback_volume_prune",
    "full_rollback_system_prune",
    "tls_rollback_clear_certificates",
)
OPTIN_PREFIX = "survey_optin_"
CONFIRM_PREFIX = "survey_confirm_"
# Extra vars AWX sets on every job (awx_job_id, tower_user_name, ...): a survey variable there is overwritten.
RESERVED_PREFIXES = ("awx_", "tower_")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_identifier(name: str) -> bool:
    """An Ansible variable name: a Python identifier in ASCII, not a keyword (ansible.utils.vars.isidentifier)."""
    return bool(_IDENTIFIER.match(name)) and not keyword.iskeyword(name) and name not in ("True", "False", "None")


def choice_list(choices: object) -> list[str] | None:
    """The choices as AWX reads them (a list, or non-blank lines of a string); None when they are neither."""
    if isinstance(choices, str):
        return [line for line in choices.splitlines() if line.strip() != ""]
    if isinstance(choices, list) and all(isinstance(c, str) for c in choices):
        return list(choices)
    return None


def default_list(default: str) -> list[str]:
    """A choice question's default as AWX reads it: its non-blank lines."""
    return [line for line in default.splitlines() if line.strip() != ""]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _limits(question: dict, where: str, errors: list[str]) -> tuple[int | None, int | None]:
    limits: dict[str, int | None] = {"min": None, "max": None}
    for key in limits:
        value = question.get(key)
        if value is None or value == "":
            continue
        if not _is_int(value):
            errors.append(f"{where}: {key} must be an integer or null, not {value!r}")
            continue
        limits[key] = value
    low, high = limits["min"], limits["max"]
    if low is not None and high is not None and low > high:
        errors.append(f"{where}: min {low} is greater than max {high}")
    return low, high


def _check_default(question: dict, qtype: str, where: str, low: int | None, high: int | None, errors: list[str]) -> None:
    if "default" not in question or question["default"] == "" or question["default"] is None:
        return
    default = question["default"]
    if qtype == "password":
        errors.append(f"{where}: a password question has no default (it would be stored in the spec)")
        return
    wanted = TYPES[qtype]
    if isinstance(default, bool) or not isinstance(default, wanted):
        errors.append(f"{where}: default {default!r} is not of type {qtype}")
        return
    if qtype in ("integer", "float"):
        if low is not None and default < low or high is not None and default > high:
            errors.append(f"{where}: default {default!r} is outside min {low} / max {high}")
    elif qtype in TEXT_TYPES:
        if low is not None and len(default) < low or high is not None and len(default) > high:
            errors.append(f"{where}: default {default!r} has a length outside min {low} / max {high}")
    if isinstance(default, str) and default.startswith("$encrypted$"):
        errors.append(f"{where}: $encrypted$ is reserved for password defaults")


def _check_choices(question: dict, qtype: str, where: str, errors: list[str]) -> None:
    if "choices" not in question:
        errors.append(f"{where}: a {qtype} question needs choices")
        return
    choices = choice_list(question["choices"])
    if choices is None:
        errors.append(f"{where}: choices must be a list of strings or a newline-separated string")
        return
    if not choices:
        errors.append(f"{where}: choices are empty")
        return
    if len(set(choices)) != len(choices):
        errors.append(f"{where}: a choice is listed twice")
    if "default" not in question or question["default"] in ("", None):
        return
    if not isinstance(question["default"], str):
        errors.append(f"{where}: the default of a {qtype} question is a string (lines for multiselect)")
        return
    defaults = default_list(question["default"])
    if qtype == "multiplechoice" and len(defaults) > 1:
        errors.append(f"{where}: a multiplechoice question has one default, not {defaults!r}")
    missing = [d for d in defaults if d not in choices]
    if missing:
        errors.append(f"{where}: default {', '.join(map(repr, missing))} is not among the choices {choices!r}")


def awx_errors(survey: object) -> list[str]:
    """AWX's own rules for a survey spec; [] when AWX accepts it and every default can be used."""
    if not isinstance(survey, dict):
        return ["the survey spec must be a JSON object"]
    errors: list[str] = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if field not in survey:
            errors.append(f"field '{field}' is missing from the survey spec")
        elif not isinstance(survey[field], kind):
            errors.append(f"field '{field}' must be a {kind.__name__}")
    spec = survey.get("spec")
    if not isinstance(spec, list):
        return errors
    if not spec:
        errors.append("'spec' has no questions")
    seen: set[str] = set()
    for idx, question in enumerate(spec):
        where = f"question {idx}"
        if not isinstance(question, dict):
            errors.append(f"{where}: not a JSON object")
            continue
        if isinstance(question.get("variable"), str):
            where = f"question {idx} ({question['variable']})"
        broken = False
        for field in ("type", "question_name", "variable", "required"):
            if field not in question:
                errors.append(f"{where}: '{field}' is missing")
                broken = True
            elif field == "required" and not isinstance(question[field], bool):
                errors.append(f"{where}: required must be true or false, not {question[field]!r}")
            elif field != "required" and not isinstance(question[field], str):
                errors.append(f"{where}: {field} must be a string")
                broken = True
        if broken:
            continue
        variable = question["variable"]
        if not is_identifier(variable):
            errors.append(f"{where}: variable {variable!r} is not a valid Ansible variable name")
        if variable in seen:
            errors.append(f"{where}: variable {variable!r} is asked twice")
        seen.add(variable)
        qtype = question["type"]
        if qtype not in TYPES:
            errors.append(f"{where}: type {qtype!r} is not one of {', '.join(TYPES)}")
            continue
        low, high = _limits(question, where, errors)
        if qtype in CHOICE_TYPES:
            _check_choices(question, qtype, where, errors)
        else:
            _check_default(question, qtype, where, low, high, errors)
    return errors


def project_errors(survey: object) -> list[str]:
    """This project's rules (destructive opt-ins, typed confirmations, names); run on a spec AWX accepts."""
    if not isinstance(survey, dict) or not isinstance(survey.get("spec"), list):
        return []
    errors: list[str] = []
    for idx, question in enumerate(survey["spec"]):
        if not isinstance(question, dict) or not isinstance(question.get("variable"), str):
            continue
        variable = question["variable"]
        where = f"question {idx} ({variable})"
        if not str(question.get("question_description", "")).strip():
            errors.append(f"{where}: no question_description - say what the answer does")
        if variable.startswith(RESERVED_PREFIXES):
            errors.append(f"{where}: awx_* and tower_* are the extra vars AWX sets itself on every job")
        if variable in COLLECTION_OPTINS:
            errors.append(
                f"{where}: the collection's opt-in {variable} is never a survey variable - ask "
                f"{OPTIN_PREFIX}... yes/no and let the wrapper playbook turn the answer into the boolean"
            )
        if variable.startswith(OPTIN_PREFIX):
            if question.get("required") is not True:
                errors.append(f"{where}: a destructive opt-in must be required")
            if question.get("type") != "multiplechoice":
                errors.append(f"{where}: a destructive opt-in must be a multiplechoice question")
            choices = choice_list(question.get("choices"))
            if choices is None or sorted(choices) != ["no", "yes"]:
                errors.append(f"{where}: a destructive opt-in's choices are exactly yes and no")
            if question.get("default") != "no":
                errors.append(f"{where}: a destructive opt-in's default is no")
        if variable.startswith(CONFIRM_PREFIX):
            if question.get("type") != "text":
                errors.append(f"{where}: a typed confirmation is a text question")
            if question.get("default") not in (None, ""):
                errors.append(f"{where}: a typed confirmation has no default (it would confirm by itself)")
    return errors


def check(survey: object) -> list[str]:
    return awx_errors(survey) + project_errors(survey)


def check_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            survey = json.load(handle)
    except (OSError, ValueError) as exc:
        return [f"{path}: cannot read it as JSON: {exc}"]
    return [f"{path}: {error}" for error in check(survey)]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: awx_survey.py SURVEY.json...", file=sys.stderr)
        return 2
    problems = [problem for path in argv for problem in check_file(path)]
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{len(argv)} survey spec(s) follow AWX's rules and the project's")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
