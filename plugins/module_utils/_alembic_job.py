# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The run of aiwfe.rollback.alembic_rollback: read, inspect, plan, then (unless planning only) stop the writers,
dump, move the database back and read its revision again.

Reads: the database's revision (psql inside the database container, _postgres), the migration graph of the image
(_alembic_inspect in a throwaway container, no network), the rows the lossy candidates hold. The plan is _alembic's.
Changes, in this order and only outside check mode and state=planned: stop the writers (left stopped), dump the
database (DB-STAMP.pre-migration.dump), then downgrade (a throwaway container of the migrations service, the newer
image pinned by a temporary override file), stamp (one transaction) or restore (the swap restore of _postgres_job).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils import _alembic as plan
from ansible_collections.aiwfe.rollback.plugins.module_utils import _alembic_inspect as inspector
from ansible_collections.aiwfe.rollback.plugins.module_utils import _postgres as pg
from ansible_collections.aiwfe.rollback.plugins.module_utils import _postgres_job as pgjob
from ansible_collections.aiwfe.rollback.plugins.module_utils._archive import DUMP_SUFFIXES, BackupNotFound, find_backup
from ansible_collections.aiwfe.rollback.plugins.module_utils._backup_sets import paired_dump
from ansible_collections.aiwfe.rollback.plugins.module_utils._common import database_target
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli, DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import ArtifactError, json_text, read_json, write_json_atomic
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._ledger import LedgerError, load_manifests, select
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import project_containers

PRE_MIGRATION = ".pre-migration"
IMAGE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,254}$")
RUN_TAG_REPO = "aiwfe-rollback/alembic-run"
CURRENT = ("SELECT json_build_object('server_version', current_setting('server_version'), "
           "'table', to_regclass('public.alembic_version') IS NOT NULL, "
           f"'revision', CASE WHEN to_regclass('public.alembic_version') IS NOT NULL THEN {pg.REVISION} END)")
STAMP_SQL = ("BEGIN;\n"
             "CREATE TABLE IF NOT EXISTS public.alembic_version (version_num varchar(32) NOT NULL, "
             "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));\n"
             "DELETE FROM public.alembic_version;\n"
             "INSERT INTO public.alembic_version (version_num) VALUES (:'rev');\n"
             "COMMIT;\n")
STAMP_BASE_SQL = ("BEGIN;\n"
                  "DO $$ BEGIN IF to_regclass('public.alembic_version') IS NOT NULL THEN "
                  "DELETE FROM public.alembic_version; END IF; END $$;\n"
                  "COMMIT;\n")
STAMP_WARNING = ("strategy stamp rewrote only alembic_version ({current} -> {target}): no migration ran, the schema is "
                 "what it was. Make sure it really is the schema of revision {target} before the code of the target "
                 "release runs on it")
COUNT_CHUNK = 40


class Clock:
    """Seconds per phase."""

    def __init__(self) -> None:
        self.start = self.mark = time.monotonic()
        self.seconds: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self.mark, 2)
        self.mark = now

    def done(self) -> dict[str, float]:
        return dict(self.seconds, total=round(time.monotonic() - self.start, 2))


# --- reading the database -------------------------------------------------------------------------------------------

def read_current(target: pg.Target) -> list[str]:
    """The database's Alembic revision(s), sorted ([] when alembic_version is missing or empty)."""
    answer = pg.psql(target, CURRENT)
    try:
        found = json.loads(answer)
    except ValueError:
        found = None
    if not isinstance(found, dict):
        raise pg.PostgresError(f"psql answered {answer[:200]!r}, not the JSON object asked for")
    try:
        return plan.split_revisions(found.get("revision"))
    except plan.PlanError as exc:
        raise pg.PostgresError(f"alembic_version holds something that is not a revision id: {exc}") from exc


def count_query(keys: t.Sequence[plan.CountKey]) -> str:
    """One statement counting, per key, the non-null values of a column or the rows of a table (NULL when it does not
    exist). Names are plain identifiers (plan.PLAIN_NAME), quoted again by format('%I')."""
    parts = []
    for index, (schema, table, column) in enumerate(keys):
        for name in (schema, table, column or "x"):
            if not plan.PLAIN_NAME.fullmatch(name):
                raise pg.PostgresError(f"{name!r} is not a plain name")
        if column:
            exists = (f"EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = '{schema}' "
                      f"AND table_name = '{table}' AND column_name = '{column}')")
            query = f"format('SELECT count(*) AS c FROM %I.%I WHERE %I IS NOT NULL', '{schema}', '{table}', '{column}')"
        else:
            exists = (f"EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = '{schema}' "
                      f"AND table_name = '{table}')")
            query = f"format('SELECT count(*) AS c FROM %I.%I', '{schema}', '{table}')"
        parts.append(f"'{index}', CASE WHEN {exists} THEN "
                     f"(xpath('/row/c/text()', query_to_xml({query}, false, true, '')))[1]::text::bigint END")
    return "SELECT json_build_object(" + ", ".join(parts) + ")"


def count_rows(target: pg.Target, keys: t.Sequence[plan.CountKey]) -> dict[plan.CountKey, int | None]:
    """What each lossy candidate holds now (None: it does not exist)."""
    counts: dict[plan.CountKey, int | None] = {}
    for start in range(0, len(keys), COUNT_CHUNK):
        chunk = list(keys[start:start + COUNT_CHUNK])
        answer = pg.psql(target, count_query(chunk))
        try:
            found = json.loads(answer)
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise pg.PostgresError(f"psql answered {answer[:200]!r}, not the JSON object asked for")
        for index, key in enumerate(chunk):
            value = found.get(str(index))
            counts[key] = int(value) if value is not None else None
    return counts


def psql_script(target: pg.Target, sql: str, variables: dict[str, str]) -> None:
    """Run a script through psql's standard input, with psql variables (quoted by psql: :'name'), stopping at the
    first error (the script's own transaction is then rolled back), under the target's timeout and lock_timeout
    like every other client command."""
    client = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for name, value in variables.items():
        client += ["-v", f"{name}={value}"]
    pg.run_client(target, client + ["-f", "-"], stdin=[sql.encode()])


# --- the image ------------------------------------------------------------------------------------------------------

def newest_container(containers: list[dict[str, t.Any]], service: str) -> dict[str, t.Any] | None:
    """The service's newest container (running or exited) of the project's containers."""
    own = [c for c in containers if c.get("Service") == service]
    own.sort(key=lambda c: ((c.get("_inspected") or {}).get("Created") or "", c.get("ID") or ""))
    return own[-1] if own else None


def migrations_image(cli: DockerCli, containers: list[dict[str, t.Any]], migrations: dict[str, t.Any]) -> tuple[str, list[str]]:
    """(image id, references naming it) to inspect and run the downgrade with: migrations.image, else the image of the
    migrations service's newest container."""
    service = migrations["service"]
    given = migrations.get("image")
    refs: list[str] = []
    if given:
        if not IMAGE_REF.fullmatch(given):
            raise JobFailed(f"migrations.image {given!r} is not an image id or reference; nothing was changed")
        wanted = given
        refs.append(given)
    else:
        container = newest_container(containers, service)
        if container is None:
            raise JobFailed(f"service {service} has no container to take the migrations' image from: pass "
                            "migrations.image (the image of the release that wrote the database's revision); "
                            "nothing was changed")
        details = container.get("_inspected") or {}
        wanted = details.get("Image") or ""
        configured = (details.get("Config") or {}).get("Image")
        if configured and IMAGE_REF.fullmatch(configured):
            refs.append(configured)
    info = cli.inspect("image", [wanted]).get(wanted)
    if not info:
        raise JobFailed(f"image {wanted} is not on this host: pass migrations.image of the release that wrote the "
                        "database's revision; nothing was changed")
    image_id = info["Id"]
    named = [r for r in refs if r != image_id]
    named += [r for r in info.get("RepoTags") or [] if r not in named]
    return image_id, named


class GraphCache:
    """The inspector's answers by image id, in <ledger_dir>/<project>/alembic-graphs/ (0600 files). An image id names
    immutable content, so its migrations never change: the next run skips the throwaway container. The key also holds
    the inspector's own text and the options that shape its answer. Read by every run; written only by runs that may
    change things (never in check mode or with state=planned, which write nothing). At most KEEP newest are kept."""

    KEEP = 20

    def __init__(self, directory: str, write: bool) -> None:
        self.directory = directory
        self.write = write

    @staticmethod
    def key(image: str, migrations: dict[str, t.Any]) -> str | None:
        if not image.startswith("sha256:"):
            return None
        parts = [image, migrations["python"], migrations.get("config") or "", migrations.get("script_location") or "",
                 hashlib.sha256(inspector.SCRIPT.encode()).hexdigest()]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def get(self, key: str | None) -> dict[str, t.Any] | None:
        if key is None:
            return None
        found = read_json(os.path.join(self.directory, key + ".json"))
        if not (isinstance(found, dict) and found.get("key") == key and isinstance(found.get("answer"), dict)):
            return None
        answer = found["answer"]
        return answer if answer.get("ok") and isinstance(answer.get("revisions"), dict) else None

    def put(self, key: str | None, answer: dict[str, t.Any]) -> None:
        if key is None or not self.write:
            return
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            write_json_atomic(os.path.join(self.directory, key + ".json"), {"key": key, "answer": answer})
            entries = sorted((e for e in os.scandir(self.directory) if e.name.endswith(".json")),
                             key=lambda e: e.stat().st_mtime, reverse=True)
            for entry in entries[self.KEEP:]:
                os.unlink(entry.path)
        except OSError:
            pass  # a cache that cannot be written only costs the next run the container


def inspect_image(cli: DockerCli, image: str, migrations: dict[str, t.Any], cache: GraphCache | None = None) -> dict[str, t.Any]:
    """The inspector's answer for ``image`` (from the cache when it has it)."""
    key = GraphCache.key(image, migrations)
    cached = cache.get(key) if cache else None
    if cached is not None:
        return cached
    argv = inspector.argv(cli.docker, image, migrations["python"], migrations.get("config") or "",
                          migrations.get("script_location") or "")
    rc, out, err = cli.run_command(argv, data=inspector.SCRIPT, binary_data=True)
    if rc != 0 and inspector.MARKER not in out:
        raise inspector.run_error(image, rc, err, migrations["python"])
    answer = inspector.parse(out, image)
    if cache:
        cache.put(key, answer)
    return answer


def offline_sql(cli: DockerCli, image: str, migrations: dict[str, t.Any], values: dict[str, str]) -> str:
    """The SQL Alembic would run (its offline --sql mode, in a throwaway container without network); a failure is
    reported in the text, not raised."""
    command = plan.fill(migrations["sql_command"], values)
    argv = [cli.docker, "run", "--rm", "--network", "none", "--pull", "never", "--entrypoint", command[0], image] + command[1:]
    rc, out, err = cli.run_command(argv)
    if rc != 0:
        return f"SQL not available: {command_line(command)} failed (rc={rc}): {(err.strip() or out.strip())[-600:]}"
    return out


def command_line(argv: t.Sequence[str]) -> str:
    return " ".join(argv)


# --- changing the database ------------------------------------------------------------------------------------------

class RunImage:
    """A reference naming the image for compose: one of its own that still points at it, else a temporary tag removed
    afterwards (a compose file takes references, not image ids)."""

    def __init__(self, cli: DockerCli, image_id: str, refs: list[str], project: str) -> None:
        self.cli = cli
        self.image_id = image_id
        self.refs = refs
        self.tag = f"{RUN_TAG_REPO}:{re.sub(r'[^a-z0-9_.-]+', '-', project.lower())[:100]}"
        self.tagged = False

    def __enter__(self) -> str:
        for ref in self.refs:
            info = self.cli.inspect("image", [ref]).get(ref)
            if info and info.get("Id") == self.image_id:
                return ref
        self.cli.tag(self.image_id, self.tag)
        self.tagged = True
        return self.tag

    def __exit__(self, *exc: t.Any) -> None:
        if self.tagged:
            self.cli.untag(self.tag)


def write_override(directory: str, service: str, image: str, entrypoint: str) -> str:
    """The temporary compose file that pins the service's image and entrypoint (JSON is YAML), 0600."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=".alembic-run-", suffix=".compose.yaml", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json_text({"services": {service: {"image": image, "entrypoint": [entrypoint]}}}))
    return path


def downgrade(cli: DockerCli, project: ComposeProject, ledger_dir: str, migrations: dict[str, t.Any], image_id: str,
              refs: list[str], command: list[str]) -> tuple[int, str, str]:
    """Run the downgrade command in a throwaway container of the migrations service (its environment, networks and
    secrets) with the newer image; (rc, stdout, stderr). The override file is removed afterwards."""
    with RunImage(cli, image_id, refs, project.name) as image:
        override = write_override(os.path.join(ledger_dir, project.name), migrations["service"], image, command[0])
        try:
            run_project = ComposeProject(project.name, project.directory, project.file_paths(), override)
            return cli.compose(run_project, ["run", "--rm", "--no-deps", "-T", "--interactive=false", "--",
                                             migrations["service"]] + command[1:], "docker compose run", check=False)
        finally:
            os.unlink(override)


def restore(cli: DockerCli, project: ComposeProject, target: pg.Target, path: str, manifest: dict[str, t.Any],
            params: dict[str, t.Any], result: dict[str, t.Any]) -> None:
    """The swap restore of docs/migrations.md (_postgres_job.restore_swap) of the paired dump: the writers are already
    stopped (and stay so), the pre-change dump is the state before."""
    try:
        result["restore"] = pgjob.restore_swap(cli, project, target, path, manifest, writers=[],
                                               backup_dir=params["backup_dir"],
                                               journal_dir=os.path.join(params["ledger_dir"], project.name),
                                               restart_writers=False, pre_restore_dump=result["pre_change_dump"])
    except pgjob.RestoreFailed as exc:
        result["restore"] = exc.report
        raise JobFailed(f"the restore of {path} failed: {exc.msg}", result, **exc.details) from exc


# --- the run --------------------------------------------------------------------------------------------------------

def check_request(params: dict[str, t.Any]) -> None:
    """Everything that can be refused before a command runs."""
    if params.get("target") is not None:
        plan.check_target(params["target"])
    if params.get("release") is not None and not str(params["release"]).strip():
        raise plan.PlanError("release is empty: name a release label, a manifest id or previous")
    migrations = params["migrations"]
    for key in ("command", "sql_command"):
        if not migrations[key] or not migrations[key][0]:
            raise plan.PlanError(f"migrations.{key} is empty: give the argv to run (e.g. the default, "
                                 "python3 -m alembic ...)")
    if params["database"]["service"] in params["stop_services"]:
        raise plan.PlanError(f"stop_services names the database service {params['database']['service']}: list only "
                             "the services that write to it")


def recorded_at(params: dict[str, t.Any], project: ComposeProject, current: list[str], result: dict[str, t.Any]) -> bool:
    """Whether the ledger release of ``params`` recorded exactly the revision(s) the database holds (then the image
    need not be read at all)."""
    manifest = select(load_manifests(params["ledger_dir"], project.name), params["release"])
    result["release"] = {"id": manifest.get("id"), "release": manifest.get("release")}
    recorded = manifest.get("alembic_revision")
    return bool(recorded) and plan.split_revisions(recorded) == current


def release_revision(cli: DockerCli, project: ComposeProject, params: dict[str, t.Any], graph: plan.Graph,
                     result: dict[str, t.Any], cache: GraphCache) -> str | None:
    """The revision a ledger release recorded (alembic_revision, else alembic_head), else the head of its image's
    migrations."""
    manifest = select(load_manifests(params["ledger_dir"], project.name), params["release"])
    result["release"] = {"id": manifest.get("id"), "release": manifest.get("release")}
    recorded = manifest.get("alembic_revision") or manifest.get("alembic_head")
    if not recorded:
        service = params["migrations"]["service"]
        image = ((manifest.get("services") or {}).get(service) or {}).get("image_id")
        if not image:
            raise plan.PlanError(f"release {manifest.get('release')} ({manifest.get('id')}) recorded no Alembic "
                                 f"revision and no image of service {service}: name the target revision instead")
        heads = plan.Graph(inspect_image(cli, image, params["migrations"], cache)).heads
        if len(heads) != 1:
            raise plan.PlanError(f"release {manifest.get('release')} recorded no Alembic revision and its image has "
                                 f"{len(heads)} heads ({', '.join(heads) or 'none'}): name the target revision")
        recorded = heads[0]
    revisions = plan.split_revisions(recorded)
    if len(revisions) != 1:
        raise plan.PlanError(f"release {manifest.get('release')} recorded the revisions {recorded}: name the target "
                             "revision instead")
    if not graph.knows(revisions[0]):
        raise plan.PlanError(f"release {manifest.get('release')} recorded revision {revisions[0]}, which the "
                             f"migrations in the image do not know: pass migrations.image of a newer release")
    return revisions[0]


def scrub(value: t.Any, secret: str | None) -> t.Any:
    """The value with every occurrence of the password replaced (results and messages never hold it)."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, "********")
    if isinstance(value, dict):
        return {k: scrub(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secret) for v in value]
    return value


def with_state(msg: str, result: dict[str, t.Any]) -> str:
    """A failure's message, completed with what the run left behind (stopped writers, the pre-change dump)."""
    notes = []
    if result.get("stopped") and "Writers stopped" not in msg:
        notes.append(f"{', '.join(result['stopped'])} stopped and left stopped")
    if result.get("pre_change_dump") and result["pre_change_dump"] not in msg:
        notes.append(f"the state before is in {result['pre_change_dump']}")
    return msg + (f" ({'; '.join(notes)})" if notes else "")


def run(cli: DockerCli, project: ComposeProject, params: dict[str, t.Any], check_mode: bool,
        warn: t.Callable[[str], None]) -> dict[str, t.Any]:
    """The module's whole run; returns its result or raises JobFailed (with the result so far)."""
    result: dict[str, t.Any] = {"changed": False}
    clock = Clock()
    secret: list[str | None] = [None]
    try:
        _run(cli, project, params, check_mode, warn, result, clock, secret)
    except (plan.PlanError, pg.PostgresError, inspector.InspectError, LedgerError, BackupNotFound,
            ArtifactError) as exc:
        result["seconds"] = clock.done()
        raise JobFailed(scrub(with_state(str(exc), result), secret[0]), scrub(result, secret[0])) from exc
    except DockerCliError as exc:
        result["seconds"] = clock.done()
        failed = JobFailed.from_cli(exc, result)
        raise JobFailed(scrub(with_state(failed.msg, result), secret[0]), scrub(result, secret[0]),
                        **scrub(failed.details, secret[0])) from exc
    except JobFailed as exc:
        merged = dict(result, **exc.result)
        merged.setdefault("seconds", clock.done())
        raise JobFailed(scrub(with_state(exc.msg, merged), secret[0]), scrub(merged, secret[0]),
                        **scrub(exc.details, secret[0])) from exc
    result["seconds"] = clock.done()
    return scrub(result, secret[0])


def _run(cli: DockerCli, project: ComposeProject, params: dict[str, t.Any], check_mode: bool,
         warn: t.Callable[[str], None], result: dict[str, t.Any], clock: Clock, secret: list[str | None]) -> None:
    database, migrations = params["database"], params["migrations"]
    check_request(params)
    containers = project_containers(cli, project)
    services = {c.get("Service") for c in containers}
    unknown = [s for s in params["stop_services"] if s not in services]
    if unknown:
        raise plan.PlanError(f"unknown service(s) {', '.join(unknown)} in stop_services (project {project.name} has "
                             f"{', '.join(sorted(s for s in services if s)) or 'no containers'}); nothing was changed")
    db = next((c for c in containers if c.get("Service") == database["service"] and c.get("State") == "running"), None)
    if db is None:
        raise JobFailed(f"service {database['service']} of project {project.name} has no running container: start the "
                        "database first; nothing was changed", result)
    target = database_target(database, cli.docker, db["ID"])
    secret[0] = target.password
    current = read_current(target)
    result["from_revision"] = ",".join(current) or None
    result["to_revision"] = result["from_revision"]
    clock.lap("read")

    if params.get("release") is not None and recorded_at(params, project, current, result):
        # The release recorded the revision the database is at: nothing to move, no image to read.
        result.update(target_revision=result["from_revision"], steps=[], strategy=params["strategy"],
                      strategy_reason=f"the database is already at {plan.shown(current)}, the revision release "
                                      f"{result['release']['release']} recorded")
        clock.lap("plan")
        return
    cache = GraphCache(os.path.join(params["ledger_dir"], project.name, "alembic-graphs"),
                       write=not check_mode and params["state"] == "rolled_back")
    image_id, refs = migrations_image(cli, containers, migrations)
    result["image"] = image_id
    inspected = inspect_image(cli, image_id, migrations, cache)
    graph = plan.Graph(inspected)
    result["heads"] = graph.heads
    plan.known_current(graph, current, image_id)
    if params.get("release") is not None:
        wanted = release_revision(cli, project, params, graph, result, cache)
    else:
        wanted = plan.resolve(graph, current, params["target"])
    result["target_revision"] = wanted
    clock.lap("inspect")

    at_target = current == ([wanted] if wanted else [])
    if params["strategy"] == "stamp":
        # A stamp may name any revision of the graph (also above the database's, or on another branch): it only
        # rewrites alembic_version. Its steps are those a downgrade would remove, when there are such.
        try:
            revisions = plan.path(graph, current, wanted)
        except plan.PlanError:
            revisions = []
    else:
        revisions = plan.path(graph, current, wanted)
    keys = plan.count_keys(graph, revisions)
    counts = count_rows(target, keys) if keys else {}
    steps = [plan.classify(graph, rev, counts) for rev in revisions]
    result["steps"] = steps
    if at_target:
        result.update(strategy=params["strategy"], strategy_reason=f"the database is already at {plan.shown(current)}")
        clock.lap("plan")
        return
    if not params.get("restore_dump") and params.get("backup_sets") and params["strategy"] in ("auto", "restore"):
        paired = paired_dump(params["backup_sets"], database["name"], wanted)
        if paired:
            params = dict(params, restore_dump=paired.path)
            result["restore_set"] = paired.set_id
    if params["strategy"] == "restore" and not params.get("restore_dump"):
        raise plan.PlanError(f"no dump of {database['name']} at revision {plan.shown(wanted)} in the backup sets of "
                             f"{params['backup_sets']}: pass restore_dump, or use strategy downgrade")
    strategy, why = plan.choose(params["strategy"], steps, params.get("restore_dump"), params["allow_lossy"])
    result.update(strategy=strategy, strategy_reason=why)
    dump_path, dump_manifest = None, None
    if strategy == "restore":
        given = params["restore_dump"]
        dump_path, dump_manifest = find_backup(os.path.dirname(given) or ".", given, None, "dump", DUMP_SUFFIXES)
        recorded = plan.split_revisions(dump_manifest.get("alembic_revision"))
        if recorded != ([wanted] if wanted else []):
            raise plan.PlanError(f"the dump {dump_path} is at revision {plan.shown(recorded)}, the target is "
                                 f"{plan.shown(wanted)}: pass the dump paired with the target release")
        pgjob.verify_dump(target, dump_path, dump_manifest)
        result["restore_dump"] = dump_path
    values = {"from": ",".join(current) or plan.BASE, "to": wanted or plan.BASE, "revision": wanted or plan.BASE,
              "config": migrations.get("config") or "", "script_location": graph.script_location}
    command = plan.fill(migrations["command"], values)
    result["command"] = command if strategy == "downgrade" else None
    clock.lap("plan")

    if check_mode or params["state"] == "planned":
        if strategy == "downgrade":
            result["sql"] = offline_sql(cli, image_id, migrations, values)
        elif strategy == "stamp":
            result["sql"] = (STAMP_SQL.replace(":'rev'", f"'{wanted}'") if wanted else STAMP_BASE_SQL)
        else:
            result["lost_rows"] = plan.lost_rows(pg.facts(target)["row_counts"], dump_manifest["row_counts"])
        result["changed"] = bool(check_mode and params["state"] == "rolled_back")
        clock.lap("sql")
        return

    writers = params["stop_services"]
    if writers:
        cli.compose(project, ["stop", "--"] + writers, "docker compose stop")
        result["changed"] = True
        result["stopped"] = writers
    clock.lap("stop")
    result["pre_change_dump"], pre_manifest = pgjob.make_dump(target, params["backup_dir"], PRE_MIGRATION)
    result["changed"] = True
    clock.lap("dump")

    if strategy == "downgrade":
        rc, out, err = downgrade(cli, project, params["ledger_dir"], migrations, image_id, refs, command)
        if rc != 0:
            unread = ""
            try:
                after: list[str] | None = read_current(target)
            except (pg.PostgresError, DockerCliError) as exc:
                # The database itself went away (killed, stopped, restarted) while the downgrade ran.
                after, unread = None, str(exc)
            if after is None:
                result["to_revision"] = None
                raise JobFailed(
                    f"the downgrade {command_line(command)} failed (rc={rc}) and the database cannot be read now "
                    f"({unread[-160:]}). PostgreSQL runs the downgrade in one transaction: the database is still at "
                    f"{plan.shown(current)} unless that transaction committed (then it is at {plan.shown(wanted)}), never "
                    f"between. Next: start the database service {database['service']} and run the rollback again - it "
                    f"moves the database or finds it at the target. The state before is in {result['pre_change_dump']}. "
                    f"Writers stopped: {', '.join(writers) or 'none'}", result,
                    cmd=command, rc=rc, stderr=err.strip()[-2000:], stdout=out.strip()[-2000:])
            result["to_revision"] = ",".join(after) or None
            where = ("is still at " + plan.shown(current) + " (the downgrade ran in one transaction); nothing was lost"
                     if after == current else "is now at " + plan.shown(after) + ", between the two")
            raise JobFailed(f"the downgrade {command_line(command)} failed (rc={rc}); the database {where}. Next: "
                            f"fix what the downgrade's output shows and run again, or strategy=restore with "
                            f"restore_dump=<the dump paired with the target release> (the state "
                            f"before is in {result['pre_change_dump']}; restore_dump={result['pre_change_dump']} puts "
                            f"it back). Writers stopped: {', '.join(writers) or 'none'}", result,
                            cmd=command, rc=rc, stderr=err.strip()[-2000:], stdout=out.strip()[-2000:])
    elif strategy == "stamp":
        if wanted:
            psql_script(target, STAMP_SQL, {"rev": wanted})
        else:
            psql_script(target, STAMP_BASE_SQL, {})
        warn(STAMP_WARNING.format(target=plan.shown(wanted), current=plan.shown(current)))
    else:
        result["lost_rows"] = plan.lost_rows(pre_manifest.get("row_counts") or {}, dump_manifest.get("row_counts") or {})
        restore(cli, project, target, dump_path, dump_manifest, params, result)
    clock.lap("migrate")

    after = read_current(target)
    result["to_revision"] = ",".join(after) or None
    clock.lap("verify")
    if after != ([wanted] if wanted else []):
        raise JobFailed(f"after the {strategy} the database is at {plan.shown(after)}, not at the target "
                        f"{plan.shown(wanted)}; the state before is in {result['pre_change_dump']}", result)
