# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The states of aiwfe.rollback.volume_backup: backup, verify, restore and prune of a Docker named volume.

VolumeBackup(cli, params, check_mode).run(diff) returns the module's result or raises JobFailed with the result
so far. The streaming is _volume's, the Docker side _volume_ops', names, listing and retention _archive's, and
every archive is published (and deleted) through _files.
"""

from __future__ import annotations

import os
import shutil
import socket
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._archive import (
    NAME_RE, BackupNotFound, UnsafeArchive, archive_name, find_backup, list_backups, select_prune,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import (
    ArtifactError, JournalError, StepJournal, failpoint, fresh_name, fresh_stamp, iso, publish, remove_artifact,
    remove_stale_temporaries, stamp, utc_now,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume import (
    VolumeError, Watchdog, compressor, create_archive, timed, tool_versions, verify_archive,
)
from ansible_collections.aiwfe.rollback.plugins.module_utils._volume_ops import (
    DONE, RESTORING, REVERTED, STOPPED, SWAPPED, SWAPPING, check_volume_name, contents_line, create_volume, finish_swap,
    readable, remove_helper, remove_volume, start_containers, stop_containers, stop_journal, swap, swap_journal, tar_argv,
    volume_info, volume_users,
)

# What a step can fail with; DockerCliError only where the step itself explains it.
ARCHIVE_ERRORS = (VolumeError, UnsafeArchive)


class VolumeBackup:
    """One run of the module: ``params`` are its options, ``result`` what it returns (also with a failure)."""

    def __init__(self, cli: DockerCli, params: dict[str, t.Any], check_mode: bool) -> None:
        self.cli = cli
        self.params = params
        self.check_mode = check_mode
        self.result: dict[str, t.Any] = {"changed": False, "pruned": [], "stopped": [], "seconds": {}}

    def fail(self, msg: str, **details: t.Any) -> t.NoReturn:
        raise JobFailed(msg, self.result, **details)

    def run(self, diff: bool = False) -> dict[str, t.Any]:
        """Run the state the options name; with ``diff``, add the before/after diff (not for verify)."""
        state = self.params["state"]
        self.check_options()
        actions = {"backup": self.backup, "verify": self.verify, "restore": self.restore, "prune": self.prune_verified}
        try:
            before = self.before(state) if diff else ""
            actions[state]()
            if diff and state != "verify":
                self.result["diff"] = self.diff(state, before)
        except DockerCliError as exc:
            raise JobFailed.from_cli(exc, self.result) from exc
        except ArtifactError as exc:
            raise JobFailed(str(exc), self.result) from exc
        return self.result

    # --- options and lookups ---------------------------------------------------------------------------------
    def check_options(self) -> None:
        if self.params["keep"] is not None and self.params["keep"] < 1:
            self.fail("keep must be at least 1 (the newest backup is never deleted)")
        if self.params["max_age_days"] is not None and self.params["max_age_days"] < 0:
            self.fail("max_age_days must be >= 0")
        if self.params["keep_pre_restore"] < 1:
            self.fail("keep_pre_restore must be at least 1 (the volume a restore just replaced is always kept)")
        if self.params["timeout"] < 1:
            self.fail("timeout must be at least 1 (seconds)")
        if self.params["volume"] is not None:
            self.volume_name(self.params["volume"], "volume")

    def volume_name(self, name: t.Any, where: str) -> str:
        try:
            return check_volume_name(name, where)
        except VolumeError as exc:
            raise JobFailed(str(exc), self.result) from exc

    def find(self) -> tuple[str, dict[str, t.Any]]:
        """The archive O(archive) names (or the newest of O(volume)) and its manifest."""
        volume = self.params["volume"]
        if self.params["archive"] == "latest" and not volume:
            self.fail("archive 'latest' needs 'volume'")
        what = f"backup of volume {volume}" if volume else "backup"
        try:
            return find_backup(self.params["backup_dir"], self.params["archive"], volume, what)
        except BackupNotFound as exc:
            raise JobFailed(str(exc), self.result) from exc

    def compression(self) -> str:
        kind = self.params["compression"]
        if kind == "auto":
            return "zstd" if shutil.which("zstd") else "gzip"
        if kind == "zstd" and not shutil.which("zstd"):
            self.fail("compression zstd asked for but the zstd command is missing: install zstd or use compression: gzip")
        return kind

    def archives(self) -> list[str]:
        """Names of the volume's backups in O(backup_dir), oldest first."""
        volume = self.params["volume"] or (self.result.get("manifest") or {}).get("volume")
        return [os.path.basename(b["path"]) for b in list_backups(self.params["backup_dir"], volume)] if volume else []

    def contents(self, volume: str) -> str:
        return contents_line(volume, (volume_info(self.cli, volume) or {}).get("Mountpoint") or "")

    # --- prune -----------------------------------------------------------------------------------------------
    def prune(self, prove: t.Callable[[], None] | None = None, planned: str = "") -> None:
        """Delete the backups O(keep) / O(max_age_days) select; ``prove`` runs first, only when one would go.

        ``planned``: in check mode, the archive the backup would add (it counts for O(keep) as it will).
        """
        backups = list_backups(self.params["backup_dir"], self.params["volume"])
        if planned:
            backups.append({"path": planned, "stamp": NAME_RE.match(os.path.basename(planned)).group("stamp")})
        doomed = select_prune(backups, self.params["keep"], self.params["max_age_days"], utc_now())
        if doomed and prove is not None and not self.check_mode:
            prove()
        for backup in doomed:
            self.result["pruned"].append(backup["path"])
            if not self.check_mode:
                remove_artifact(backup["path"])
        if doomed:
            self.result["changed"] = True

    def prune_verified(self) -> None:
        """state prune: only when the newest backup verifies."""
        self.verify()
        self.prune()

    # --- backup ----------------------------------------------------------------------------------------------
    def backup(self) -> None:
        params = self.params
        volume = params["volume"]
        info = volume_info(self.cli, volume)
        if info is None:
            self.fail(f"volume {volume} does not exist (`docker volume ls` lists the volumes): nothing was changed")
        directory = params["backup_dir"]
        if os.path.exists(directory) and not (os.path.isdir(directory) and os.access(directory, os.W_OK | os.X_OK)):
            self.fail(f"backup_dir {directory} is not a writable directory: fix its permissions or pick another; nothing was changed")
        kind = self.compression()
        mountpoint = info.get("Mountpoint") or ""
        direct = params["access"] != "helper" and readable(mountpoint)
        if params["access"] == "direct" and not direct:
            self.fail(f"cannot read {mountpoint} directly: run on the Docker host as root, or use access: helper")
        self.start_stopped(volume)
        name = fresh_name(directory, lambda when: archive_name(volume, when, kind))
        final = os.path.join(directory, name)
        self.result.update(archive=final, access="direct" if direct else "helper")
        if self.check_mode:
            self.result["changed"] = True
            self.prune(planned=final)
            return
        argv = tar_argv(self.cli, volume, mountpoint if direct else None, params["helper_image"])
        users = volume_users(self.cli, volume) if params["stop_containers"] else []
        self.result["removed_temporaries"] = remove_stale_temporaries(directory)
        watchdog = Watchdog(params["timeout"], f"the backup of volume {volume}",
                            None if direct else lambda: remove_helper(self.cli, volume))
        try:
            final, manifest = publish(directory, name, lambda tmp: self.write_archive(tmp, argv, kind, users, watchdog))
        except ARCHIVE_ERRORS + (DockerCliError, ArtifactError, OSError) as exc:
            self.result["changed"] = bool(users)
            self.fail(f"backup of {volume} failed, nothing was kept: {getattr(exc, 'msg', None) or exc}")
        self.result.update(changed=True, manifest=manifest)
        self.prune(lambda: self.read_back(final, manifest))

    def write_archive(self, tmp: str, argv: list[str], kind: str, users: list[str], watchdog: Watchdog) -> dict[str, t.Any]:
        """Fill ``tmp`` with the archive, the volume's users stopped meanwhile (and started again however it ends: the
        watchdog stops tar and the compressor after O(timeout)); returns its manifest."""
        params = self.params
        journal = self.backup_journal() if users else None
        entry = journal.begin(STOPPED, volume=params["volume"], users=users) if journal else {}
        stop_containers(self.cli, users)
        self.result["stopped"] = users
        try:
            with watchdog:
                (sha, stats), self.result["seconds"]["backup"] = timed(
                    create_archive, argv, compressor(kind, params["level"]), tmp, watchdog)
        finally:
            start_containers(self.cli, users)
            if journal:
                journal.step(entry, DONE)
        return {
            "format": 1, "archive": os.path.basename(self.result["archive"]), "volume": params["volume"], "sha256": sha,
            "archive_bytes": os.path.getsize(tmp), "members": stats.as_dict(), "compression": kind, "level": params["level"],
            "access": self.result["access"], "tools": tool_versions(kind), "created": iso(), "host": socket.gethostname(),
            "seconds": dict(self.result["seconds"]), "stopped_containers": users,
        }

    def read_back(self, path: str, manifest: dict[str, t.Any]) -> None:
        """Older backups go only once the new one is proven readable from disk; a new one that is not is removed."""
        try:
            _stats, self.result["seconds"]["verify"] = timed(verify_archive, path, manifest, None, self.params["timeout"])
        except ARCHIVE_ERRORS as exc:
            remove_artifact(path)
            self.fail(f"the new backup of {manifest['volume']} failed its read-back and was removed; nothing was pruned: {exc}")

    # --- verify ----------------------------------------------------------------------------------------------
    def verify(self) -> None:
        path, manifest = self.find()
        try:
            _stats, self.result["seconds"]["verify"] = timed(verify_archive, path, manifest, None, self.params["timeout"])
        except ARCHIVE_ERRORS as exc:
            self.fail(f"{path} failed verification: {exc}", archive=path)
        self.result.update(archive=path, manifest=manifest)

    # --- restore ---------------------------------------------------------------------------------------------
    def restore(self) -> None:
        params = self.params
        path, manifest = self.find()
        volume = self.volume_name(params["volume"] or manifest.get("volume"), "the volume the manifest names,")
        self.result.update(archive=path, manifest=manifest, volume=volume)
        journal = self.journal()
        if self.check_mode:
            self.result["pending_swaps"] = [{"id": e.get("id"), "state": e.get("state"),
                                             "action": "revert" if e.get("state") == RESTORING else "finish"}
                                            for e in journal.pending(volume=volume)]
        elif self.recover(journal, volume, manifest.get("sha256")):
            self.prune_kept(journal, volume)
            return
        self.start_stopped(volume)
        info = volume_info(self.cli, volume)
        if info is not None and (info.get("Driver") != "local" or info.get("Options")):
            self.fail(f"volume {volume} uses driver {info.get('Driver')} with options {info.get('Options')}: only plain local volumes can be swapped")
        users = volume_users(self.cli, volume) if info is not None else []
        if users and not params["stop_containers"]:
            self.fail(f"volume {volume} is used by running containers {', '.join(users)}: stop them or set stop_containers: true; "
                      "nothing was changed")
        if self.check_mode:
            try:
                _stats, self.result["seconds"]["verify"] = timed(verify_archive, path, manifest, None, params["timeout"])
            except ARCHIVE_ERRORS as exc:
                self.fail(f"{path} failed verification, it would not be restored: {exc}")
            self.result["changed"] = True
            return
        when = stamp(fresh_stamp(lambda at: any(self.cli.inspect("volume", self.restore_volumes(volume, stamp(at))).values())))
        staging, kept = self.restore_volumes(volume, when)
        entry = journal.begin(RESTORING, id=when, volume=volume, staging_volume=staging, kept_volume=kept, archive=path,
                              sha256=manifest.get("sha256"))
        try:
            staging_mp = create_volume(self.cli, staging)
        except DockerCliError as exc:
            self.revert(journal, entry, exc.msg)
            self.fail(f"cannot create the staging volume {staging} ({exc.msg}): nothing was changed", cmd=exc.cmd,
                      rc=exc.rc, stderr=exc.stderr)
        if not os.access(staging_mp, os.W_OK):
            self.revert(journal, entry, "no direct access to the volume mountpoints")
            self.fail("restore needs direct access to volume mountpoints: run it on the Docker host as root; nothing was changed")
        try:
            _stats, self.result["seconds"]["restore"] = timed(verify_archive, path, manifest, staging_mp, params["timeout"])
        except ARCHIVE_ERRORS as exc:
            self.revert(journal, entry, str(exc))
            self.fail(f"{path} was refused, nothing was changed: {exc}")
        live = info["Mountpoint"] if info is not None else create_volume(self.cli, volume)
        kept_mp = create_volume(self.cli, kept)
        # reported before anything can fail: where the data before will be
        self.result["kept_volume"] = kept
        journal.step(entry, SWAPPING, users=users, live_dir=live, staging_dir=staging_mp, kept_dir=kept_mp)
        try:
            self.result["changed"] = bool(users)
            stop_containers(self.cli, users)
            self.result["stopped"] = users
            self.result["changed"] = True
            swap(live, staging_mp, kept_mp)
        except (OSError, DockerCliError) as exc:
            why = getattr(exc, "msg", None) or str(exc)
            self.revert(journal, entry, why)
            self.start_after_failure(users)
            self.result.pop("kept_volume")
            self.fail(f"restoring {volume} failed before its data was replaced ({why}); {volume} holds what it held, "
                      f"its containers were started again")
        journal.step(entry, SWAPPED)
        failpoint("swapped")
        self.after_swap(journal, entry)
        self.prune_kept(journal, volume)

    def journal(self) -> StepJournal:
        try:
            return swap_journal(self.params["journal_dir"])
        except (JournalError, OSError) as exc:
            self.fail(f"{exc}: nothing was changed; compare it with the volumes (docker volume ls: <volume>-restore-*, "
                      "<volume>-pre-restore-*) and move it aside")

    def backup_journal(self) -> StepJournal:
        try:
            return stop_journal(self.params["journal_dir"])
        except (JournalError, OSError) as exc:
            self.fail(f"{exc}: nothing was changed; it records containers a backup stopped - start those that should "
                      "run (docker ps -a) and move it aside")

    def start_stopped(self, volume: str) -> None:
        """Start the containers an earlier backup of ``volume`` stopped and was killed before it started them again
        (its journal entry is still pending); in check mode only say which."""
        journal = self.backup_journal()
        pending = journal.pending(volume=volume)
        users = sorted({name for entry in pending for name in entry.get("users") or []})
        if not users:
            return
        self.result["restarted"] = users
        self.result["changed"] = True
        if self.check_mode:
            return
        try:
            start_containers(self.cli, users)
        except DockerCliError as exc:
            self.fail(f"an earlier backup of {volume} was interrupted with {', '.join(users)} stopped, and starting them "
                      f"failed: {exc.msg}; start them by hand (docker start {' '.join(users)}), then run again",
                      cmd=exc.cmd, rc=exc.rc, stderr=exc.stderr)
        for entry in pending:
            journal.step(entry, DONE, restarted_by_a_later_run=True)

    def start_after_failure(self, users: list[str]) -> None:
        try:
            start_containers(self.cli, users)
        except DockerCliError as exc:
            self.result.setdefault("notes", []).append(exc.msg)

    def revert(self, journal: StepJournal, entry: dict[str, t.Any], why: str) -> None:
        """Undo a restore whose data never went live: its staging volume goes, and its kept volume while still empty."""
        remove_volume(self.cli, entry["staging_volume"])
        kept_dir = (volume_info(self.cli, entry["kept_volume"]) or {}).get("Mountpoint") or ""
        if not (os.path.isdir(kept_dir) and os.listdir(kept_dir)):
            remove_volume(self.cli, entry["kept_volume"], empty_first=False)
        journal.step(entry, REVERTED, reason=why)

    def after_swap(self, journal: StepJournal, entry: dict[str, t.Any]) -> None:
        """The data is swapped in: the staging volume goes, the containers start again, the restore is done."""
        problem = remove_volume(self.cli, entry["staging_volume"])
        if problem:
            self.result.setdefault("notes", []).append(f"the staging volume {entry['staging_volume']} (empty) is left: {problem}")
        users = entry.get("users") or []
        try:
            start_containers(self.cli, users)
        except DockerCliError as exc:
            journal.step(entry, DONE, start_failed=exc.msg)
            raise JobFailed(f"volume {entry['volume']} was restored from {entry['archive']} and the data it held is kept "
                            f"in volume {entry['kept_volume']}, but its containers did not start: {exc.msg}; find out why "
                            f"(docker logs) and start them (docker start {' '.join(users)})", self.result,
                            cmd=exc.cmd, rc=exc.rc, stderr=exc.stderr) from exc
        journal.step(entry, DONE)
        self.result.update(changed=True, kept_volume=entry["kept_volume"])

    def recover(self, journal: StepJournal, volume: str, sha256: t.Any) -> bool:
        """Finish or revert the restores of ``volume`` a crash interrupted (the journal's entries not done): one killed
        before its data was swapped in is reverted, one killed during or after the swap is finished. True when the
        last one finished restored this very archive (sha256): it is then not restored again."""
        recovered = []
        for entry in journal.pending(volume=volume):
            if entry["state"] == RESTORING:
                self.revert(journal, entry, "interrupted before its data was verified")
                recovered.append({"id": entry["id"], "action": "reverted"})
                continue
            if entry["state"] == SWAPPING:
                try:
                    done = finish_swap(entry["live_dir"], entry["staging_dir"], entry["kept_dir"])
                except (VolumeError, OSError) as exc:
                    self.fail(f"the restore {entry['id']} of {volume} was interrupted during its swap and cannot be "
                              f"finished: {exc}; the journal {journal.path} records its volumes and directories")
                journal.step(entry, SWAPPED, finished=done)
            self.after_swap(journal, entry)
            recovered.append({"id": entry["id"], "action": "finished", "kept_volume": entry["kept_volume"],
                              "archive": entry["archive"], "sha256": entry.get("sha256")})
        self.result["recovered"] = recovered
        if recovered:
            self.result["changed"] = True
        same = bool(recovered) and recovered[-1]["action"] == "finished" and recovered[-1]["sha256"] == sha256
        if not same:
            self.result.pop("kept_volume", None)
        return same

    def prune_kept(self, journal: StepJournal, volume: str) -> None:
        """Remove the volumes restores of ``volume`` kept beyond the O(keep_pre_restore) newest - only those of a
        restore the journal shows done; one a container uses is kept (a note)."""
        done = [e for e in journal.all_entries if e.get("volume") == volume and e.get("state") == DONE and not e.get("removed")]
        found = self.cli.inspect("volume", [e["kept_volume"] for e in done]) if done else {}
        done = sorted((e for e in done if found.get(e["kept_volume"])), key=lambda e: e["id"], reverse=True)
        removed = []
        for entry in done[self.params["keep_pre_restore"]:]:
            problem = remove_volume(self.cli, entry["kept_volume"], empty_first=False)
            if problem:
                self.result.setdefault("notes", []).append(f"kept {entry['kept_volume']} beyond keep_pre_restore: {problem}")
                continue
            entry["removed"] = iso()
            removed.append(entry["kept_volume"])
        if removed:
            journal.save()
        self.result["removed_volumes"] = removed

    @staticmethod
    def restore_volumes(volume: str, when: str) -> list[str]:
        """The staging volume a restore extracts into and the volume that keeps the data from before."""
        return [f"{volume}-restore-{when}", f"{volume}-pre-restore-{when}"]

    # --- diff ------------------------------------------------------------------------------------------------
    def before(self, state: str) -> str:
        """The diff's before: the volume's contents for a restore, the volume's archives for backup and prune."""
        if state == "restore":
            volume = self.params["volume"] or self.find()[1].get("volume")
            return self.contents(volume) if volume else ""
        return "" if state == "verify" else "".join(n + "\n" for n in self.archives())

    def diff(self, state: str, before: str) -> dict[str, t.Any]:
        header = os.path.join(self.params["backup_dir"], str(self.params["volume"] or ""))
        if state == "restore":
            members = (self.result.get("manifest") or {}).get("members") or {}
            volume = self.result.get("volume")
            kept = self.result.get("kept_volume") or f"{volume}-pre-restore-<time>"
            after = (f"volume {volume}: contents of {os.path.basename(self.result.get('archive') or '')} "
                     f"({members.get('files', '?')} files, {members.get('bytes', '?')} bytes); the data before is kept in "
                     f"volume {kept}\n")
            return {"before": before, "after": after, "before_header": volume, "after_header": volume}
        names = [n for n in before.splitlines() if n]
        if self.check_mode:
            pruned = {os.path.basename(p) for p in self.result["pruned"]}
            names = [n for n in names if n not in pruned]
            if state == "backup" and self.result.get("archive"):
                names.append(os.path.basename(self.result["archive"]))
        else:
            names = self.archives()
        return {"before": before, "after": "".join(n + "\n" for n in names), "before_header": header, "after_header": header}
