# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A Caddy proxy's configuration: validate a candidate Caddyfile in a throwaway container of the proxy's image,
install it atomically, reload the running proxy (or restart it when a reload cannot take), and read the certificate
it serves. The one place for "validate a Caddyfile before it goes live" (the blue_green and tls_rollback roles).

The certificate is read with the standard library: the handshake does not verify (Caddy's `tls internal` CA is
not in the host's trust store) unless a CA file is given, and the DER certificate is parsed here (subject, issuer,
validity, subjectAltName) because ssl only decodes a certificate it has verified.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import tempfile
import typing as t

from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import ComposeProject, DockerCli, DockerCliError
from ansible_collections.aiwfe.rollback.plugins.module_utils._files import write_text_atomic
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed
from ansible_collections.aiwfe.rollback.plugins.module_utils._stack import containers_by_service

STATES = ("validate", "install", "reload", "certificate")
# Where the candidate is mounted in the throwaway validating container.
CANDIDATE_IN_CONTAINER = "/tmp/Caddyfile.candidate"


# --- paths ------------------------------------------------------------------------------------------------------------
def confined_path(root: str, path: str) -> str:
    """``path`` (relative to the deploy directory ``root``) as an absolute path that stays inside ``root``.

    Refused with a JobFailed saying why: an absolute path, a '..' component, or a path that a symbolic link (on any
    component, the file itself included) takes out of ``root``. The file itself need not exist."""
    what = f"the Caddyfile path '{path}'"
    if not path or not path.strip():
        raise JobFailed(f"{what} is empty: name the Caddyfile relative to the deploy directory {root}. Nothing was changed.")
    if os.path.isabs(path):
        raise JobFailed(f"{what} is absolute: name it relative to the deploy directory {root} "
                        "(paths outside it are refused). Nothing was changed.")
    if ".." in path.replace("\\", "/").split("/"):
        raise JobFailed(f"{what} climbs out with '..': name a file inside the deploy directory {root}. Nothing was changed.")
    real_root = os.path.realpath(root)
    full = os.path.join(root, path)
    real = os.path.realpath(full)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise JobFailed(f"{what} leads out of the deploy directory {root} through a symbolic link (it resolves to "
                        f"{real}): refused. Nothing was changed.")
    return real


# --- validation ---------------------------------------------------------------------------------------------------------
def caddy_error(text: str) -> str:
    """Caddy's own error from `caddy validate` / `caddy reload` output: its 'Error:' lines, else its last line."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    if errors:
        return " ".join(errors)
    return lines[-1] if lines else ""


def validate_argv(docker: str, image: str, candidate: str, adapter: str) -> list[str]:
    """Validate ``candidate`` (a host file) in a throwaway container of ``image``: no network, never pulled, the file
    mounted read-only."""
    return [docker, "run", "--rm", "--pull", "never", "--network", "none",
            "--mount", f"type=bind,source={candidate},target={CANDIDATE_IN_CONTAINER},readonly",
            "--entrypoint", "caddy", image, "validate", "--config", CANDIDATE_IN_CONTAINER, "--adapter", adapter]


def check_image(image: str) -> None:
    if not image or image.startswith("-") or any(c.isspace() for c in image):
        raise JobFailed(f"'{image}' is not an image reference: set the Caddy image used to validate the candidate "
                        "(the proxy's own image)")


def validate(cli: DockerCli, image: str, content: str, adapter: str = "caddyfile", name: str = "Caddyfile") -> str:
    """Validate ``content`` with Caddy in a throwaway container; raises JobFailed carrying Caddy's error. Returns
    the sha256 of what was validated. The text goes through a private temporary file, so what is validated is exactly
    what a caller installs. Caddy's error names the file ``name`` (where a line number points)."""
    check_image(image)
    data = encode(content)
    directory = tempfile.mkdtemp(prefix="aiwfe-caddy-")
    try:
        candidate = os.path.join(directory, "Caddyfile")
        with open(candidate, "wb") as handle:
            handle.write(data)
        os.chmod(candidate, 0o644)  # readable by a proxy image that does not run as root
        argv = validate_argv(cli.docker, image, candidate, adapter)
        rc, out, err = cli.run(argv, "caddy validate", check=False)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if rc != 0:
        error = caddy_error(err + "\n" + out).replace(CANDIDATE_IN_CONTAINER, name)
        raise JobFailed(f"Caddy rejected the candidate configuration ({image}): {error}. Nothing was installed.",
                        {"changed": False, "valid": False}, caddy_error=error, cmd=argv, rc=rc, stderr=err)
    return hashlib.sha256(data).hexdigest()


def encode(content: str) -> bytes:
    try:
        return content.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JobFailed("the candidate configuration is not UTF-8 text (Caddy reads its Caddyfile as UTF-8). "
                        "Nothing was changed.") from exc


def sha256_text(content: str | None) -> str | None:
    return None if content is None else hashlib.sha256(content.encode("utf-8", "surrogateescape")).hexdigest()


# --- the candidate ------------------------------------------------------------------------------------------------------
def git_show(run_command: t.Callable[..., tuple[int, str, str]], directory: str, commit: str, path: str,
             git: str = "git") -> str:
    """The text of ``path`` (relative to the work tree ``directory``) at ``commit``."""
    if not commit or commit.startswith("-"):
        raise JobFailed(f"'{commit}' is not a git commit. Nothing was changed.")
    argv = [git, "-C", directory, "show", f"{commit}:./{path}"]
    rc, out, err = run_command(argv)
    if rc != 0:
        raise JobFailed(f"cannot read {path} at commit {commit[:12]} in {directory}: {err.strip()}. Nothing was changed.",
                        cmd=argv, rc=rc)
    return out


def read_file(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", "surrogateescape")


# --- install ------------------------------------------------------------------------------------------------------------
def install(live: str, content: str, mode: int, check_mode: bool) -> dict[str, t.Any]:
    """Replace ``live`` with ``content`` atomically (temporary file in its directory, fsync, rename), keeping the
    live file's mode and owner (``mode`` for a new file). Changes nothing when the content is the same."""
    encode(content)
    before = read_file(live)
    result = {
        "changed": before != content,
        "path": live,
        "sha256": sha256_text(content),
        "previous_sha256": sha256_text(before),
        "diff": {"before": before or "", "after": content, "before_header": live, "after_header": live},
    }
    if not result["changed"]:
        return result
    info = os.stat(live) if before is not None else None
    keep = stat.S_IMODE(info.st_mode) if info else mode
    result["mode"] = f"{keep:04o}"
    if not check_mode:
        write_text_atomic(live, content, keep)
        if info and os.geteuid() == 0 and (info.st_uid, info.st_gid) != (0, 0):
            os.chown(live, info.st_uid, info.st_gid)
    return result


# --- reload -------------------------------------------------------------------------------------------------------------
def find_container(cli: DockerCli, project_name: str, service: str, container: str | None) -> dict[str, t.Any]:
    """The proxy's container: ``container`` (name or id) when given, else the compose project's container of
    ``service``; JobFailed when there is none."""
    if container:
        found = cli.inspect("container", [container]).get(container)
        if not found:
            raise JobFailed(f"no container '{container}': start the proxy first. Nothing was changed.")
        return {"id": found.get("Id"), "name": (found.get("Name") or "").lstrip("/"),
                "state": (found.get("State") or {}).get("Status"), "image": (found.get("Config") or {}).get("Image")}
    if not project_name or not service:
        raise JobFailed("name the proxy: project_name and service (or container)")
    running = containers_by_service(cli, ComposeProject(project_name, "."), direct=True)
    if service not in running:
        known = ", ".join(sorted(running)) or "none"
        raise JobFailed(f"the compose project {project_name} has no container for the proxy service '{service}' "
                        f"(services with a container: {known}). Nothing was changed.")
    return running[service]


def reload_plan(state: str | None, seen_sha: str | None, live_sha: str | None) -> tuple[str, str]:
    """How to make the proxy serve the installed file: (method, why).

    A container that is not running (a restart loop, stopped) is restarted. A running one is reloaded gracefully
    (`caddy reload`, no dropped request), unless it does not see the installed file: a single-file bind mount keeps
    the inode of the file that was replaced, so only a restart (which mounts the path again) shows it the new one."""
    if state != "running":
        return "restart", f"the proxy container is {state or 'absent'}, not running (a restart loop?): restarted instead of reloaded"
    if seen_sha is not None and live_sha is not None and seen_sha != live_sha:
        return "restart", ("the container does not see the installed file (a single-file bind mount keeps the replaced "
                           "file's inode; mount its directory for reloads without a restart): restarted instead of reloaded")
    return "reload", "graceful reload (caddy reload): no restart, requests in flight finish"


def reload(cli: DockerCli, found: dict[str, t.Any], config: str, adapter: str, live: str | None,
           check_mode: bool) -> dict[str, t.Any]:
    """Make the proxy container ``found`` load ``config`` (its path inside the container): reload or restart, as
    reload_plan says."""
    cid = found["id"]
    live_sha = sha256_text(read_file(live)) if live else None
    seen_sha = None
    if found.get("state") == "running" and live_sha:
        rc, out, _err = cli.run([cli.docker, "exec", cid, "cat", "--", config], "reading the proxy's Caddyfile", check=False)
        seen_sha = sha256_text(out) if rc == 0 else None
    method, why = reload_plan(found.get("state"), seen_sha, live_sha)
    result = {"changed": True, "method": method, "reason": why, "container": found.get("name") or cid,
              "container_state": found.get("state")}
    if check_mode:
        return result
    if method == "restart":
        try:
            cli.run([cli.docker, "restart", "--", cid], "docker restart")
        except DockerCliError as exc:
            raise JobFailed.from_cli(exc, {"changed": False}) from exc
        return result
    argv = [cli.docker, "exec", cid, "caddy", "reload", "--config", config, "--adapter", adapter]
    rc, out, err = cli.run(argv, "caddy reload", check=False)
    if rc != 0:
        error = caddy_error(err + "\n" + out)
        raise JobFailed(f"Caddy's reload of {config} failed: {error}. The proxy still runs the configuration it had.",
                        {"changed": False}, caddy_error=error, cmd=argv, rc=rc, stderr=err)
    return result


# --- the certificate ----------------------------------------------------------------------------------------------------
NAMES = {"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
         "2.5.4.5": "serialNumber", "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC"}
SUBJECT_ALT_NAME = "2.5.29.17"


class CertificateError(Exception):
    """The bytes are not a DER certificate this parser understands."""


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at ``pos``."""
    if pos + 2 > len(data):
        raise CertificateError("truncated DER")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise CertificateError("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise CertificateError("truncated DER")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    items = []
    while start < end:
        tag, value, stop = _tlv(data, start)
        items.append((tag, value, stop))
        start = stop
    return items


def _oid(raw: bytes) -> str:
    if not raw:
        raise CertificateError("empty OID")
    parts = [min(raw[0] // 40, 2), raw[0] - 40 * min(raw[0] // 40, 2)]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _text(tag: int, raw: bytes) -> str:
    if tag == 0x1E:
        return raw.decode("utf-16-be", "replace")
    if tag == 0x1C:
        return raw.decode("utf-32-be", "replace")
    if tag == 0x14:
        return raw.decode("latin-1")
    return raw.decode("utf-8", "replace")


def _name(data: bytes, start: int, end: int) -> list[tuple[str, str]]:
    pairs = []
    for _set_tag, set_start, set_end in _children(data, start, end):
        for _seq_tag, seq_start, seq_end in _children(data, set_start, set_end):
            (_t1, oid_start, oid_end), (value_tag, value_start, value_end) = _children(data, seq_start, seq_end)[:2]
            oid = _oid(data[oid_start:oid_end])
            pairs.append((NAMES.get(oid, oid), _text(value_tag, data[value_start:value_end])))
    return pairs


def _time(tag: int, raw: bytes) -> datetime.datetime:
    text = raw.decode("ascii")
    if not text.endswith("Z"):
        raise CertificateError(f"time {text} is not UTC")
    if tag == 0x17:  # UTCTime YYMMDDHHMM[SS]Z
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    digits = text[:-1].split(".")[0]
    if len(digits) == 12:
        digits += "00"
    return datetime.datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=datetime.timezone.utc)


def _alt_names(data: bytes, start: int, end: int) -> list[str]:
    names = []
    for tag, value_start, value_end in _children(data, start, end):
        raw = data[value_start:value_end]
        if tag == 0x82:
            names.append(f"DNS:{raw.decode('ascii', 'replace')}")
        elif tag == 0x87 and len(raw) in (4, 16):
            names.append(f"IP:{ipaddress.ip_address(raw)}")
        elif tag == 0x86:
            names.append(f"URI:{raw.decode('ascii', 'replace')}")
        elif tag == 0x81:
            names.append(f"email:{raw.decode('ascii', 'replace')}")
    return names


def format_name(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f"{key}={value}" for key, value in pairs)


def parse_certificate(der: bytes, now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Subject, issuer, serial, validity, days left and subjectAltName of a DER X.509 certificate."""
    try:
        _tag, cert_start, cert_end = _tlv(der, 0)
        tbs_tag, tbs_start, tbs_end = _children(der, cert_start, cert_end)[0]
        fields = _children(der, tbs_start, tbs_end)
        if tbs_tag != 0x30 or len(fields) < 6:
            raise CertificateError("not an X.509 certificate")
        if fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        serial, _algorithm, issuer, validity, subject = fields[:5]
        (nb_tag, nb_start, nb_end), (na_tag, na_start, na_end) = _children(der, validity[1], validity[2])[:2]
        not_before = _time(nb_tag, der[nb_start:nb_end])
        not_after = _time(na_tag, der[na_start:na_end])
        alt_names: list[str] = []
        for tag, start, end in fields[6:]:
            if tag != 0xA3:
                continue
            (_seq, ext_start, ext_end), = _children(der, start, end)[:1]
            for _ext_tag, one_start, one_end in _children(der, ext_start, ext_end):
                parts = _children(der, one_start, one_end)
                if _oid(der[parts[0][1]:parts[0][2]]) == SUBJECT_ALT_NAME:
                    _octets, value_start, value_end = parts[-1]
                    _san_tag, san_start, san_end = _tlv(der, value_start)
                    if san_end <= value_end:
                        alt_names = _alt_names(der, san_start, san_end)
        subject_pairs = _name(der, subject[1], subject[2])
        issuer_pairs = _name(der, issuer[1], issuer[2])
    except (CertificateError, IndexError, ValueError, UnicodeDecodeError) as exc:
        raise CertificateError(f"cannot read the certificate: {exc}") from exc
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {
        "subject": format_name(subject_pairs),
        "issuer": format_name(issuer_pairs),
        "subject_fields": dict(subject_pairs),
        "issuer_fields": dict(issuer_pairs),
        "serial": der[serial[1]:serial[2]].hex(),
        "not_before": not_before.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "days_left": int((not_after - now).total_seconds() // 86400),
        "hours_left": int((not_after - now).total_seconds() // 3600),
        "expired": now > not_after,
        "not_yet_valid": now < not_before,
        "subject_alt_names": alt_names,
        "sha256_fingerprint": hashlib.sha256(der).hexdigest(),
    }


def certificate(host: str, port: int, server_name: str | None, timeout: float, ca_file: str | None = None,
                now: datetime.datetime | None = None) -> dict[str, t.Any]:
    """Open a TLS connection to host:port with SNI ``server_name`` (default ``host``) and report the certificate it
    presents. Never raises for the connection: ``handshake`` says whether it succeeded and ``error`` why not. Verifies
    the chain and the name only with ``ca_file`` (``verified``)."""
    name = server_name or host
    result: dict[str, t.Any] = {"changed": False, "host": host, "port": port, "server_name": name, "handshake": False,
                                "verified": None, "error": None}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=name) as tls:
                der = tls.getpeercert(binary_form=True)
                result.update(handshake=True, protocol=tls.version(), cipher=(tls.cipher() or [None])[0],
                              verified=True if ca_file else None)
    except ssl.SSLCertVerificationError as exc:
        result.update(verified=False, error=f"certificate not verified against {ca_file}: {exc.verify_message or exc}")
        return result
    except (OSError, ssl.SSLError) as exc:
        result["error"] = f"TLS handshake with {host}:{port} (SNI {name}) failed: {exc}"
        return result
    if not der:
        result.update(handshake=False, error="the server presented no certificate")
        return result
    try:
        result.update(parse_certificate(der, now))
    except CertificateError as exc:
        result["error"] = str(exc)
    return result


# --- the module's work --------------------------------------------------------------------------------------------------
def live_path(params: dict[str, t.Any], required: bool) -> str | None:
    """The live Caddyfile as an absolute path (confined to project_dir when that is given), or None."""
    path = params.get("path")
    if not path:
        if required:
            raise JobFailed("path is required: name the live Caddyfile")
        return None
    if params.get("project_dir"):
        if not os.path.isdir(params["project_dir"]):
            raise JobFailed(f"project_dir {params['project_dir']} does not exist: point it at the deploy directory")
        return confined_path(params["project_dir"], path)
    if not os.path.isabs(path):
        raise JobFailed(f"path '{path}' is relative: give project_dir (the directory it is relative to) or an absolute path")
    return path


def candidate(cli: DockerCli, params: dict[str, t.Any], live: str | None) -> str:
    """The candidate configuration: content, src, path at git_commit, or (validate) the live file itself."""
    if params.get("content") is not None:
        text = params["content"]
    elif params.get("src"):
        text = read_file(params["src"])
        if text is None:
            raise JobFailed(f"src {params['src']} does not exist. Nothing was changed.")
    elif params.get("git_commit"):
        text = git_show(cli.run_command, params["project_dir"], params["git_commit"],
                        os.path.relpath(str(live), os.path.realpath(params["project_dir"])), params.get("git") or "git")
    elif params["state"] == "validate" and live:
        text = read_file(live)
        if text is None:
            raise JobFailed(f"{live} does not exist: nothing to validate")
    else:
        raise JobFailed("name the candidate configuration: content, src or git_commit")
    want = params.get("expect_sha256")
    if want and sha256_text(text) != want.lower():
        raise JobFailed(f"the candidate's sha256 is {sha256_text(text)}, not the expected {want} (the one the release "
                        "recorded?): refused. Nothing was changed.", {"changed": False})
    return text


def validating_image(cli: DockerCli, params: dict[str, t.Any]) -> str:
    if params.get("image"):
        return params["image"]
    if params.get("container") or (params.get("project_name") and params.get("service")):
        image = find_container(cli, params.get("project_name") or "", params.get("service") or "", params.get("container")).get("image")
        if image:
            return image
    raise JobFailed("name the Caddy image that validates the candidate (image), or the proxy (project_name and service, "
                    "or container) whose image does")


def run(cli: DockerCli, params: dict[str, t.Any], check_mode: bool) -> dict[str, t.Any]:
    """The module's work for params['state']; raises JobFailed with what to do next."""
    state = params["state"]
    if state == "certificate":
        if not 0 < params["port"] < 65536:
            raise JobFailed(f"port {params['port']} is not a TCP port")
        return certificate(params["host"], params["port"], params.get("server_name"), params["timeout"], params.get("ca_file"))
    if state == "reload":
        live = live_path(params, required=False)
        found = find_container(cli, params.get("project_name") or "", params.get("service") or "", params.get("container"))
        return reload(cli, found, params["config_in_container"], params["adapter"], live, check_mode)
    live = live_path(params, required=state == "install")
    text = candidate(cli, params, live)
    # validated even when the live file already holds it: that live file may be what breaks the proxy
    image = validating_image(cli, params)
    shown = params.get("path") or params.get("src") or "Caddyfile"
    if params.get("git_commit"):
        shown = f"{params['git_commit'][:12]}:{params.get('path')}"
    sha = validate(cli, image, text, params["adapter"], shown)
    if state == "validate":
        return {"changed": False, "valid": True, "sha256": sha, "image": image}
    try:
        mode = int(params["mode"], 8)
    except ValueError as exc:
        raise JobFailed(f"mode '{params['mode']}' is not an octal file mode such as 0644") from exc
    try:
        return dict(install(str(live), text, mode, check_mode), validated=True, image=image)
    except OSError as exc:
        raise JobFailed(f"cannot write {live}: {exc.strerror or exc}. The live file is unchanged.", {"changed": False}) from exc
