# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The survey spec checker (tests/tools/awx_survey.py): a good spec passes, each of AWX's rules and the project's
rules broken once fails with its own message, and every survey spec of the operator project's AWX layout
(examples/operator/awx/surveys) passes and is wired to its wrapper playbook."""

from __future__ import annotations

import copy
import json
import pathlib

import pytest
import yaml

from ansible_collections.aiwfe.rollback.tests.tools import awx_survey as aws

ROOT = pathlib.Path(__file__).resolve().parents[4]
AWX_DIR = ROOT / "examples" / "operator" / "awx"
# The job templates the operator project ships a survey for (issue 15), each with its wrapper awx/awx_<name>.yml.
TEMPLATES = ("rollback_full", "rollback_quick", "rollback_migration", "rollback_tls", "restore", "unlock")

GOOD = {
    "name": "Complete system rollback",
    "description": "answers for awx/awx_rollback_full.yml",
    "spec": [
        {"question_name": "Release", "question_description": "previous or a tag", "variable": "aiwfe_rollback_release",
         "type": "text", "required": True, "default": "previous", "min": 1, "max": 128},
        {"question_name": "Prune volumes?", "question_description": "destructive", "variable": "survey_optin_volume_prune",
         "type": "multiplechoice", "required": True, "choices": ["no", "yes"], "default": "no"},
        {"question_name": "Type the stack", "question_description": "confirm", "variable": "survey_confirm_stack",
         "type": "text", "required": False, "min": 0, "max": 128},
        {"question_name": "Services", "question_description": "none: all", "variable": "aiwfe_rollback_services",
         "type": "multiselect", "required": False, "choices": "api\nworker\n\nreasoning-service", "default": "api\nworker"},
        {"question_name": "Notes", "question_description": "free text", "variable": "aiwfe_root_cause",
         "type": "textarea", "required": False, "default": ""},
        {"question_name": "Timeout", "question_description": "seconds", "variable": "survey_timeout",
         "type": "integer", "required": False, "default": 120, "min": 10, "max": 600},
        {"question_name": "Ratio", "question_description": "share", "variable": "survey_ratio",
         "type": "float", "required": False, "default": 0.5, "min": 0, "max": 1},
        {"question_name": "Token", "question_description": "secret", "variable": "survey_token",
         "type": "password", "required": False},
    ],
}


def _question(spec: dict, variable: str) -> dict:
    return next(q for q in spec["spec"] if q["variable"] == variable)


def _broken(change) -> list[str]:
    survey = copy.deepcopy(GOOD)
    change(survey)
    return aws.check(survey)


def test_good_spec_passes():
    assert aws.check(GOOD) == []


def _set(variable, key, value):
    def change(survey):
        _question(survey, variable)[key] = value
    return change


def _drop(variable, key):
    def change(survey):
        del _question(survey, variable)[key]
    return change


def _top(key, value=None, delete=False):
    def change(survey):
        if delete:
            del survey[key]
        else:
            survey[key] = value
    return change


def _append(question):
    def change(survey):
        survey["spec"].append(question)
    return change


AWX_RULES = [
    ("no name", _top("name", delete=True), "field 'name' is missing"),
    ("description not a string", _top("description", 3), "field 'description' must be a str"),
    ("spec not a list", _top("spec", {"a": 1}), "field 'spec' must be a list"),
    ("empty spec", _top("spec", []), "'spec' has no questions"),
    ("question not an object", _append("text"), "question 8: not a JSON object"),
    ("type missing", _drop("aiwfe_root_cause", "type"), "'type' is missing"),
    ("variable missing", _drop("aiwfe_root_cause", "variable"), "'variable' is missing"),
    ("question_name missing", _drop("aiwfe_root_cause", "question_name"), "'question_name' is missing"),
    ("required missing", _drop("aiwfe_root_cause", "required"), "'required' is missing"),
    ("required a string", _set("aiwfe_root_cause", "required", "false"), "required must be true or false"),
    ("required an int", _set("aiwfe_root_cause", "required", 0), "required must be true or false"),
    ("unknown type", _set("aiwfe_root_cause", "type", "boolean"), "type 'boolean' is not one of"),
    ("duplicate variable", _append(dict(GOOD["spec"][0])), "variable 'aiwfe_rollback_release' is asked twice"),
    ("variable with a dash", _set("aiwfe_root_cause", "variable", "root-cause"), "not a valid Ansible variable name"),
    ("variable a keyword", _set("aiwfe_root_cause", "variable", "class"), "not a valid Ansible variable name"),
    ("variable starts with a digit", _set("aiwfe_root_cause", "variable", "1cause"), "not a valid Ansible variable name"),
    ("variable not ASCII", _set("aiwfe_root_cause", "variable", "caus\u00e9"), "not a valid Ansible variable name"),
    ("text default not a string", _set("aiwfe_rollback_release", "default", 7), "is not of type text"),
    ("integer default a string", _set("survey_timeout", "default", "120"), "is not of type integer"),
    ("integer default a float", _set("survey_timeout", "default", 1.5), "is not of type integer"),
    ("integer default a bool", _set("survey_timeout", "default", True), "is not of type integer"),
    ("float default a string", _set("survey_ratio", "default", "0.5"), "is not of type float"),
    ("min not an integer", _set("survey_timeout", "min", "10"), "min must be an integer or null"),
    ("max a float", _set("survey_ratio", "max", 1.5), "max must be an integer or null"),
    ("min above max", _set("survey_timeout", "min", 700), "min 700 is greater than max 600"),
    ("integer default below min", _set("survey_timeout", "default", 5), "outside min 10 / max 600"),
    ("text default longer than max", _set("aiwfe_rollback_release", "max", 3), "has a length outside min 1 / max 3"),
    ("text default shorter than min", _set("aiwfe_rollback_release", "min", 20), "has a length outside min 20"),
    ("password with a default", _set("survey_token", "default", "s3cret"), "a password question has no default"),
    ("$encrypted$ outside a password", _set("aiwfe_root_cause", "default", "$encrypted$x"), "$encrypted$ is reserved"),
    ("choices missing", _drop("survey_optin_volume_prune", "choices"), "a multiplechoice question needs choices"),
    ("choices a dict", _set("aiwfe_rollback_services", "choices", {"api": 1}), "choices must be a list of strings"),
    ("choices with a number", _set("aiwfe_rollback_services", "choices", ["api", 2]), "choices must be a list of strings"),
    ("choices empty", _set("aiwfe_rollback_services", "choices", "\n\n"), "choices are empty"),
    ("choice twice", _set("aiwfe_rollback_services", "choices", ["api", "api"]), "a choice is listed twice"),
    ("multiplechoice default not a choice", _set("survey_optin_volume_prune", "default", "No"), "'No' is not among the choices"),
    ("multiplechoice two defaults", _set("survey_optin_volume_prune", "default", "no\nyes"), "has one default"),
    ("multiselect default line not a choice", _set("aiwfe_rollback_services", "default", "api\nweb"), "'web' is not among the choices"),
    # AWX's own test is `in` on the string of choices, a substring test: "work" would pass there, not here.
    ("multiselect default a substring of a choice", _set("aiwfe_rollback_services", "default", "work"), "'work' is not among"),
    ("choice default a list", _set("aiwfe_rollback_services", "default", ["api"]), "is a string (lines for multiselect)"),
]


@pytest.mark.parametrize("why, change, message", AWX_RULES, ids=[rule[0] for rule in AWX_RULES])
def test_each_awx_rule_fails(why, change, message):
    errors = _broken(change)
    assert any(message in error for error in errors), (why, errors)


def test_not_an_object():
    assert aws.check([]) == ["the survey spec must be a JSON object"]


PROJECT_RULES = [
    ("opt-in not required", _set("survey_optin_volume_prune", "required", False), "a destructive opt-in must be required"),
    ("opt-in a text", _set("survey_optin_volume_prune", "type", "text"), "must be a multiplechoice question"),
    ("opt-in a multiselect", _set("survey_optin_volume_prune", "type", "multiselect"), "must be a multiplechoice question"),
    ("opt-in defaulting to yes", _set("survey_optin_volume_prune", "default", "yes"), "a destructive opt-in's default is no"),
    ("opt-in without a default", _drop("survey_optin_volume_prune", "default"), "a destructive opt-in's default is no"),
    ("opt-in with true/false", _set("survey_optin_volume_prune", "choices", ["false", "true"]), "choices are exactly yes and no"),
    ("opt-in with a third choice", _set("survey_optin_volume_prune", "choices", "no\nyes\nmaybe"), "choices are exactly yes and no"),
    ("collection opt-in asked directly", _set("survey_optin_volume_prune", "variable", "full_rollback_volume_prune"),
     "is never a survey variable"),
    ("tls opt-in asked directly", _set("aiwfe_root_cause", "variable", "tls_rollback_clear_certificates"), "is never a survey variable"),
    ("confirmation with a default", _set("survey_confirm_stack", "default", "ai_workflow_engine"),
     "a typed confirmation has no default"),
    ("confirmation a choice", _set("survey_confirm_stack", "type", "textarea"), "a typed confirmation is a text question"),
    ("AWX's namespace", _set("aiwfe_root_cause", "variable", "awx_job_id"), "awx_* and tower_* are the extra vars"),
    ("Tower's namespace", _set("aiwfe_root_cause", "variable", "tower_user_name"), "awx_* and tower_* are the extra vars"),
    ("no description", _drop("aiwfe_root_cause", "question_description"), "no question_description"),
    ("blank description", _set("aiwfe_root_cause", "question_description", "  "), "no question_description"),
]


@pytest.mark.parametrize("why, change, message", PROJECT_RULES, ids=[rule[0] for rule in PROJECT_RULES])
def test_each_project_rule_fails(why, change, message):
    errors = _broken(change)
    assert any(message in error for error in errors), (why, errors)


def test_main_reports_each_file(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    bad_survey = copy.deepcopy(GOOD)
    _question(bad_survey, "survey_optin_volume_prune")["default"] = "yes"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bad_survey))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert aws.main([str(good)]) == 0
    assert "1 survey spec(s) follow" in capsys.readouterr().out
    assert aws.main([str(good), str(bad), str(broken)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"{bad}: question 1 (survey_optin_volume_prune)") for line in out)
    assert any(line.startswith(f"{broken}: cannot read it as JSON") for line in out)
    assert aws.main([]) == 2


def _surveys() -> list[pathlib.Path]:
    return sorted((AWX_DIR / "surveys").glob("*.json"))


def test_every_job_template_has_a_survey():
    assert sorted(p.stem for p in _surveys()) == sorted(TEMPLATES)


@pytest.mark.parametrize("path", _surveys(), ids=lambda p: p.name)
def test_operator_project_survey_passes(path):
    assert aws.check_file(str(path)) == []


def _wrapper_check_play(name: str) -> tuple[str, dict]:
    text = (AWX_DIR / f"awx_{name}.yml").read_text(encoding="utf-8")
    return text, yaml.safe_load(text)[0]


@pytest.mark.parametrize("name", TEMPLATES)
def test_wrapper_reads_every_answer(name):
    """Every survey_* answer is used by the wrapper (else it would be ignored), every opt-in is one of the yes/no
    answers its first play checks before anything runs, and the typed confirmation is checked there."""
    survey = json.loads((AWX_DIR / "surveys" / f"{name}.json").read_text(encoding="utf-8"))
    text, check_play = _wrapper_check_play(name)
    assert check_play["any_errors_fatal"] is True
    assert {"ansible.builtin.import_tasks": "tasks/check_survey.yml"}.items() <= check_play["tasks"][-1].items()
    yes_no = check_play["vars"]["survey_check_yes_no"]
    variables = [q["variable"] for q in survey["spec"]]
    for variable in variables:
        if variable.startswith("survey_") and variable != "survey_confirm_stack":
            assert variable in text, f"{name}: the answer {variable} is not used by awx_{name}.yml"
        if variable.startswith(aws.OPTIN_PREFIX):
            assert variable in yes_no, f"{name}: {variable} is not checked as a yes/no answer"
    for variable in yes_no:
        assert variable in variables, f"{name}: awx_{name}.yml checks {variable}, which its survey does not ask"
    if check_play["vars"]["survey_check_confirm"] is not False:
        assert "survey_confirm_stack" in variables, f"{name}: a confirmation is checked but the survey does not ask it"
