# Copyright (c) 2026 aiwfe.rollback contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shared Caddy step (module_utils/_caddy): the Caddyfile path kept inside the deploy directory, Caddy's error
text, the exact argv of the throwaway validation and of the reload, install's atomic replace (mode kept, check mode
writing nothing), the choice between a graceful reload and a restart, and the certificate read over a real TLS
handshake on the loopback (test-only keys below)."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import stat
import threading

import pytest

from ansible_collections.aiwfe.rollback.plugins.module_utils import _caddy as caddy
from ansible_collections.aiwfe.rollback.plugins.module_utils._docker_cli import DockerCli
from ansible_collections.aiwfe.rollback.plugins.module_utils._job import JobFailed

# A leaf for localhost (subject CN=localhost,O=aiwfe.rollback; SAN DNS:localhost, IP:127.0.0.1; serial 0x1234; valid
# 2026-01-01 to 2036-01-01, UTCTime) and its key.
LEAF = """-----BEGIN CERTIFICATE-----
MIIBbDCCARKgAwIBAgICEjQwCgYIKoZIzj0EAwIwMTEWMBQGA1UEAwwNYWl3ZmUg
dGVzdCBDQTEXMBUGA1UECgwOYWl3ZmUucm9sbGJhY2swHhcNMjYwMTAxMDAwMDAw
WhcNMzYwMTAxMDAwMDAwWjAtMRIwEAYDVQQDDAlsb2NhbGhvc3QxFzAVBgNVBAoM
DmFpd2ZlLnJvbGxiYWNrMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEjlnAszcr
piJA1Ugpi8ma9mmlWWUoIb0pEqdKvuOfcaYQOFHh3tIDKFwywTKvtNRWVM8wixsn
FvhaNbCB8F2hNKMeMBwwGgYDVR0RBBMwEYIJbG9jYWxob3N0hwR/AAABMAoGCCqG
SM49BAMCA0gAMEUCIB2OeBi1ZTcCrEUoroxIdM5JpBE4pHJgUHdIIn/vvPhRAiEA
jwot9pV6MUAYZUnLfiJd55YBzr6hNHx2TOJUIghwcA8=
-----END CERTIFICATE-----
"""
LEAF_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvrarMIUeaUFjy6O8
qeOU5lQgFIpIisq2EAb5zCLitmChRANCAASOWcCzNyumIkDVSCmLyZr2aaVZZSgh
vSkSp0q+459xphA4UeHe0gMoXDLBMq+01FZUzzCLGycW+Fo1sIHwXaE0
-----END PRIVATE KEY-----
"""
# Like Caddy's `tls internal` leaf: an empty subject, the name only in the SAN; valid until 2051 (GeneralizedTime).
EMPTY_SUBJECT = """-----BEGIN CERTIFICATE-----
MIIBODCB4KADAgECAgEHMAoGCCqGSM49BAMCMDExFjAUBgNVBAMMDWFpd2ZlIHRl
c3QgQ0ExFzAVBgNVBAoMDmFpd2ZlLnJvbGxiYWNrMCAXDTI2MDEwMTAwMDAwMFoY
DzIwNTEwNjAxMTIwMDAwWjAAMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE/+VV
W61LoyRN7Ngbo8Py9gRP+UUdW4m0In3eJ9ozxell8tnBxmL+602HuQMDuNyS1Dxi
kl5V9H5GNYO3ujUgfKMYMBYwFAYDVR0RBA0wC4IJbG9jYWxob3N0MAoGCCqGSM49
BAMCA0cAMEQCIBBFAv+TfafPLzj2NlSzYzIUKEuVFwTTESW3wmibUAn5AiAJkETZ
DLteRPjsKxheGRvX/a/xHeowtK0Q3MGA8TaqKA==
-----END CERTIFICATE-----
"""
# A self-signed CA certificate for localhost (serving it with its key verifies against itself).
SELF_SIGNED = """-----BEGIN CERTIFICATE-----
MIIBgDCCASagAwIBAgIBYzAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlsb2NhbGhv
c3QwHhcNMjYwMTAxMDAwMDAwWhcNNDYwMTAxMDAwMDAwWjAUMRIwEAYDVQQDDAls
b2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATDCSI0sCr0izqYJx6K
qOhgJnbE02ptb/4njeqeI2ywi9JPJT23f1mMO0qelpPH8zo9cQvDEb6jAaRYrJGM
VSX1o2kwZzAUBgNVHREEDTALgglsb2NhbGhvc3QwDwYDVR0TAQH/BAUwAwEB/zAd
BgNVHQ4EFgQU98W4jwJoqOY68rqXwCyweVenAwwwHwYDVR0jBBgwFoAU98W4jwJo
qOY68rqXwCyweVenAwwwCgYIKoZIzj0EAwIDSAAwRQIhAI0bbGIzU5lUKRDt9jx9
UEFWyb2+GOX3PHKHWgzGgFiUAiB2qU/tUzWQU6Fu+m0uqxUVbDZGpG9DGMvaKiJs
NVRfnw==
-----END CERTIFICATE-----
"""
SELF_SIGNED_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgH5kQpp5r6tZp9TFO
cbcIATa7ucp+uHtZRZDPmtEFQYmhRANCAATDCSI0sCr0izqYJx6KqOhgJnbE02pt
b/4njeqeI2ywi9JPJT23f1mMO0qelpPH8zo9cQvDEb6jAaRYrJGMVSX1
-----END PRIVATE KEY-----
"""

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
# What `caddy validate` prints for the reference stack's v1.3.0-bad-caddyfile (Caddy 2.6.2), stderr.
BAD_CADDYFILE_STDERR = (
    '{"level":"info","ts":1796013144.9,"msg":"using provided configuration","config_file":"/tmp/Caddyfile.candidate",'
    '"config_adapter":"caddyfile"}\n'
    "Error: adapting config using caddyfile: /tmp/Caddyfile.candidate:11 - Error during parsing: Unexpected EOF\n")
GOOD = "https://localhost {\n\ttls internal\n\treverse_proxy api:8000\n}\n"
BAD = 'https://localhost {\n\theader {\n\t\tStrict-Transport-Security "max-age=1\n\t}\n}\n'


# --- the path stays inside the deploy directory ---------------------------------------------------------------------

@pytest.fixture
def deploy(tmp_path):
    root = tmp_path / "deploy"
    (root / "docker" / "caddy").mkdir(parents=True)
    (root / "docker" / "caddy" / "Caddyfile").write_text(BAD)
    os.chmod(root / "docker" / "caddy" / "Caddyfile", 0o640)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "Caddyfile").write_text("secret")
    return root


def test_a_relative_path_inside_is_resolved(deploy):
    assert caddy.confined_path(str(deploy), "docker/caddy/Caddyfile") == os.path.realpath(deploy / "docker/caddy/Caddyfile")
    assert caddy.confined_path(str(deploy), "docker/new/Caddyfile").endswith("/deploy/docker/new/Caddyfile")  # need not exist


@pytest.mark.parametrize("path, words", [
    ("/etc/caddy/Caddyfile", "is absolute"),
    ("../outside/Caddyfile", "climbs out with '..'"),
    ("docker/../../outside/Caddyfile", "climbs out with '..'"),
    ("", "is empty"),
    ("escape/Caddyfile", "through a symbolic link"),        # a directory link out of the deploy directory
    ("docker/caddy/linked", "through a symbolic link"),     # the file itself a link out
])
def test_a_path_out_of_the_deploy_directory_is_refused(deploy, path, words):
    os.symlink(deploy.parent / "outside", deploy / "escape")
    os.symlink(deploy.parent / "outside" / "Caddyfile", deploy / "docker" / "caddy" / "linked")
    with pytest.raises(JobFailed, match=words) as failed:
        caddy.confined_path(str(deploy), path)
    assert "Nothing was changed" in failed.value.msg


def test_a_link_that_stays_inside_is_followed(deploy):
    os.symlink(deploy / "docker" / "caddy", deploy / "proxy")
    assert caddy.confined_path(str(deploy), "proxy/Caddyfile") == os.path.realpath(deploy / "docker/caddy/Caddyfile")


# --- Caddy's error text ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, error", [
    (BAD_CADDYFILE_STDERR, "Error: adapting config using caddyfile: /tmp/Caddyfile.candidate:11 - Error during parsing: Unexpected EOF"),
    ("Error: a\nnoise\nError: b\n", "Error: a Error: b"),
    ("docker: Error response from daemon: No such image: caddy:9\n\n", "docker: Error response from daemon: No such image: caddy:9"),
    ("", ""),
])
def test_caddy_error(text, error):
    assert caddy.caddy_error(text) == error


# --- validation in a throwaway container ------------------------------------------------------------------------------

class Docker:
    """A fake docker CLI: answers by the first words after `docker`, records every argv, and keeps what the
    validating container would have read from its mount."""

    def __init__(self, answers: dict[str, tuple[int, str, str]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[list[str]] = []
        self.mounted: list[str] = []

    def __call__(self, argv, **_kwargs):
        argv = list(argv)
        self.calls.append(argv)
        if argv[1] == "run":
            source = [a for a in argv if a.startswith("type=bind,")][0].split(",")[1].split("=", 1)[1]
            with open(source, encoding="utf-8") as handle:
                self.mounted.append(handle.read())
            assert stat.S_IMODE(os.stat(source).st_mode) == 0o644
        for key, answer in self.answers.items():
            if " ".join(argv).startswith(key):
                return answer
        return 0, "", ""


def test_validate_runs_caddy_validate_without_network_or_pull_on_a_private_copy():
    docker = Docker()
    sha = caddy.validate(DockerCli(docker), "aiwfe/caddy:2.6", GOOD)
    (argv,) = docker.calls
    mount = argv[argv.index("--mount") + 1]
    assert argv == ["docker", "run", "--rm", "--pull", "never", "--network", "none", "--mount", mount,
                    "--entrypoint", "caddy", "aiwfe/caddy:2.6", "validate", "--config", "/tmp/Caddyfile.candidate",
                    "--adapter", "caddyfile"]
    assert mount.endswith(",target=/tmp/Caddyfile.candidate,readonly")
    assert docker.mounted == [GOOD]
    assert not os.path.exists(mount.split(",")[1].split("=", 1)[1])   # the private copy is gone
    assert sha == caddy.sha256_text(GOOD)


def test_a_candidate_caddy_rejects_fails_with_caddys_error():
    docker = Docker({"docker run": (1, "", BAD_CADDYFILE_STDERR)})
    with pytest.raises(JobFailed) as failed:
        caddy.validate(DockerCli(docker), "aiwfe/caddy:2.6", BAD)
    assert failed.value.msg == ("Caddy rejected the candidate configuration (aiwfe/caddy:2.6): Error: adapting config "
                                "using caddyfile: Caddyfile:11 - Error during parsing: Unexpected EOF. Nothing was installed.")
    assert failed.value.details["caddy_error"].endswith("Unexpected EOF")
    assert failed.value.result == {"changed": False, "valid": False}


@pytest.mark.parametrize("image", ["", "--privileged", "caddy latest"])
def test_a_bad_image_reference_is_refused_before_docker_runs(image):
    docker = Docker()
    with pytest.raises(JobFailed, match="is not an image reference"):
        caddy.validate(DockerCli(docker), image, GOOD)
    assert docker.calls == []


# --- install: atomic, mode kept, check mode writes nothing --------------------------------------------------------------

def test_install_replaces_the_file_keeping_its_mode(deploy):
    live = str(deploy / "docker/caddy/Caddyfile")
    inode = os.stat(live).st_ino
    result = caddy.install(live, GOOD, 0o644, check_mode=False)
    assert result["changed"] and result["mode"] == "0640"
    assert result["previous_sha256"] == caddy.sha256_text(BAD) and result["sha256"] == caddy.sha256_text(GOOD)
    assert result["diff"]["before"] == BAD and result["diff"]["after"] == GOOD
    assert (deploy / "docker/caddy/Caddyfile").read_text() == GOOD
    assert stat.S_IMODE(os.stat(live).st_mode) == 0o640
    assert os.stat(live).st_ino != inode                  # renamed over, never written in place
    assert sorted(os.listdir(deploy / "docker/caddy")) == ["Caddyfile"]   # no temporary left
    again = caddy.install(live, GOOD, 0o644, check_mode=False)
    assert not again["changed"] and "mode" not in again


def test_install_in_check_mode_reports_and_writes_nothing(deploy):
    live = str(deploy / "docker/caddy/Caddyfile")
    result = caddy.install(live, GOOD, 0o644, check_mode=True)
    assert result["changed"] and result["diff"]["after"] == GOOD
    assert (deploy / "docker/caddy/Caddyfile").read_text() == BAD


def test_install_creates_a_missing_file_with_the_given_mode(deploy):
    live = str(deploy / "docker/caddy/Caddyfile.new")
    result = caddy.install(live, GOOD, 0o644, check_mode=False)
    assert result["changed"] and result["previous_sha256"] is None
    assert stat.S_IMODE(os.stat(live).st_mode) == 0o644


# --- run(): the module's states -----------------------------------------------------------------------------------------

def params(**given):
    base = {"state": "validate", "path": None, "project_dir": None, "content": None, "src": None, "git_commit": None,
            "expect_sha256": None, "image": "aiwfe/caddy:2.6", "adapter": "caddyfile", "mode": "0644",
            "project_name": None, "service": None, "container": None, "config_in_container": "/etc/caddy/Caddyfile",
            "host": "localhost", "port": 443, "server_name": None, "timeout": 5.0, "ca_file": None, "git": "git"}
    base.update(given)
    return base


def test_install_from_a_git_commit_validates_then_replaces(deploy):
    docker = Docker({"git -C": (0, GOOD, "")})
    result = caddy.run(DockerCli(docker), params(state="install", project_dir=str(deploy), path="docker/caddy/Caddyfile",
                                                 git_commit="c0ffee", expect_sha256=caddy.sha256_text(GOOD)), False)
    assert docker.calls[0] == ["git", "-C", str(deploy), "show", "c0ffee:./docker/caddy/Caddyfile"]
    assert docker.calls[1][:2] == ["docker", "run"] and docker.mounted == [GOOD]
    assert result["changed"] and result["validated"]
    assert (deploy / "docker/caddy/Caddyfile").read_text() == GOOD


def test_an_invalid_candidate_is_never_installed(deploy):
    docker = Docker({"git -C": (0, BAD + "\n# other\n", ""), "docker run": (1, "", BAD_CADDYFILE_STDERR)})
    with pytest.raises(JobFailed, match="Caddy rejected"):
        caddy.run(DockerCli(docker), params(state="install", project_dir=str(deploy), path="docker/caddy/Caddyfile",
                                            git_commit="c0ffee"), False)
    assert (deploy / "docker/caddy/Caddyfile").read_text() == BAD


def test_an_unchanged_file_is_validated_and_not_written(deploy):
    docker = Docker()
    live = deploy / "docker/caddy/Caddyfile"
    inode = os.stat(live).st_ino
    result = caddy.run(DockerCli(docker), params(state="install", project_dir=str(deploy), path="docker/caddy/Caddyfile",
                                                 content=BAD), False)
    assert not result["changed"] and result["validated"]
    assert docker.mounted == [BAD] and os.stat(live).st_ino == inode


def test_a_live_file_caddy_rejects_is_refused_even_when_unchanged(deploy):
    # a rollback to the release whose Caddyfile is the broken one now live: refused, not "nothing to do"
    docker = Docker({"git -C": (0, BAD, ""), "docker run": (1, "", BAD_CADDYFILE_STDERR)})
    with pytest.raises(JobFailed, match="bad:docker/caddy/Caddyfile:11 - Error during parsing: Unexpected EOF"):
        caddy.run(DockerCli(docker), params(state="install", project_dir=str(deploy), path="docker/caddy/Caddyfile",
                                            git_commit="bad"), True)


def test_a_candidate_other_than_the_recorded_one_is_refused(deploy):
    docker = Docker({"git -C": (0, GOOD, "")})
    with pytest.raises(JobFailed, match="not the expected 0{64}"):
        caddy.run(DockerCli(docker), params(state="install", project_dir=str(deploy), path="docker/caddy/Caddyfile",
                                            git_commit="c0ffee", expect_sha256="0" * 64), False)
    assert [argv[0] for argv in docker.calls] == ["git"]


def test_a_path_outside_is_refused_before_git_or_docker_run(deploy):
    docker = Docker()
    with pytest.raises(JobFailed, match="climbs out"):
        caddy.run(DockerCli(docker), params(state="install", project_dir=str(deploy), path="../outside/Caddyfile",
                                            git_commit="c0ffee"), False)
    assert docker.calls == []
    assert (deploy.parent / "outside" / "Caddyfile").read_text() == "secret"


def test_validate_checks_the_live_file_itself_without_a_candidate(deploy):
    docker = Docker()
    result = caddy.run(DockerCli(docker), params(project_dir=str(deploy), path="docker/caddy/Caddyfile"), False)
    assert result == {"changed": False, "valid": True, "sha256": caddy.sha256_text(BAD), "image": "aiwfe/caddy:2.6"}
    assert docker.mounted == [BAD]


# --- reload or restart -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("state, seen, live, method, words", [
    ("running", "a", "a", "reload", "graceful"),
    ("running", None, "a", "reload", "graceful"),          # cannot tell (no cat in the image): reload
    ("running", "old", "new", "restart", "single-file bind mount"),
    ("restarting", None, "a", "restart", "restarting, not running"),
    ("exited", None, "a", "restart", "exited, not running"),
])
def test_reload_plan(state, seen, live, method, words):
    got, why = caddy.reload_plan(state, seen, live)
    assert got == method and words in why


def container(state="running"):
    return {"id": "c1", "name": "p-caddy-1", "state": state, "image": "aiwfe/caddy:2.6"}


def test_a_running_proxy_that_sees_the_file_is_reloaded_gracefully(deploy):
    live = str(deploy / "docker/caddy/Caddyfile")
    docker = Docker({"docker exec c1 cat": (0, BAD, "")})
    result = caddy.reload(DockerCli(docker), container(), "/etc/caddy/Caddyfile", "caddyfile", live, False)
    assert result["method"] == "reload" and result["changed"]
    assert docker.calls == [["docker", "exec", "c1", "cat", "--", "/etc/caddy/Caddyfile"],
                            ["docker", "exec", "c1", "caddy", "reload", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]]


def test_a_proxy_that_sees_the_replaced_file_is_restarted(deploy):
    live = str(deploy / "docker/caddy/Caddyfile")
    docker = Docker({"docker exec c1 cat": (0, "the old inode's content", "")})
    result = caddy.reload(DockerCli(docker), container(), "/etc/caddy/Caddyfile", "caddyfile", live, False)
    assert result["method"] == "restart"
    assert docker.calls[-1] == ["docker", "restart", "--", "c1"]


def test_a_restart_loop_is_restarted_and_check_mode_does_nothing(deploy):
    docker = Docker()
    planned = caddy.reload(DockerCli(docker), container("restarting"), "/etc/caddy/Caddyfile", "caddyfile", None, True)
    assert planned["method"] == "restart" and planned["container_state"] == "restarting" and docker.calls == []
    caddy.reload(DockerCli(docker), container("restarting"), "/etc/caddy/Caddyfile", "caddyfile", None, False)
    assert docker.calls == [["docker", "restart", "--", "c1"]]


def test_a_failed_reload_says_caddys_error():
    docker = Docker({"docker exec c1 caddy": (1, "", "Error: loading new config: bad\n")})
    with pytest.raises(JobFailed, match="reload of /etc/caddy/Caddyfile failed: Error: loading new config: bad"):
        caddy.reload(DockerCli(docker), container(), "/etc/caddy/Caddyfile", "caddyfile", None, False)


def test_an_unknown_proxy_service_is_named_with_the_services_that_exist():
    docker = Docker({"docker ps": (0, "", "")})
    with pytest.raises(JobFailed, match="no container for the proxy service 'nope'.*services with a container: none"):
        caddy.find_container(DockerCli(docker), "p", "nope", None)


# --- the certificate ---------------------------------------------------------------------------------------------------

def der(pem: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem)


def test_parse_a_certificate():
    cert = caddy.parse_certificate(der(LEAF), NOW)
    assert cert["subject"] == "CN=localhost,O=aiwfe.rollback"
    assert cert["issuer"] == "CN=aiwfe test CA,O=aiwfe.rollback"
    assert cert["issuer_fields"] == {"CN": "aiwfe test CA", "O": "aiwfe.rollback"}
    assert cert["serial"] == "1234"
    assert (cert["not_before"], cert["not_after"]) == ("2026-01-01T00:00:00Z", "2036-01-01T00:00:00Z")
    assert cert["days_left"] == 3501 and cert["hours_left"] == 3501 * 24 and not cert["expired"] and not cert["not_yet_valid"]
    assert cert["subject_alt_names"] == ["DNS:localhost", "IP:127.0.0.1"]


def test_parse_a_caddy_like_leaf_empty_subject_generalized_time():
    cert = caddy.parse_certificate(der(EMPTY_SUBJECT), datetime.datetime(2052, 1, 1, tzinfo=datetime.timezone.utc))
    assert cert["subject"] == "" and cert["subject_alt_names"] == ["DNS:localhost"]
    assert cert["not_after"] == "2051-06-01T12:00:00Z"
    assert cert["expired"] and cert["days_left"] < 0


@pytest.mark.parametrize("data", [b"", b"\x30\x03\x02\x01", b"not a certificate", der(LEAF)[:100]])
def test_garbage_is_not_a_certificate(data):
    with pytest.raises(caddy.CertificateError):
        caddy.parse_certificate(data, NOW)


@pytest.fixture
def tls_server(tmp_path):
    """A TLS server on the loopback serving a certificate; yields a function (cert, key) -> port."""
    servers = []

    def serve(cert: str, key: str) -> int:
        (tmp_path / "cert.pem").write_text(cert)
        (tmp_path / "key.pem").write_text(key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(10)
        servers.append(listener)

        def accept():
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

        threading.Thread(target=accept, daemon=True).start()
        return listener.getsockname()[1]

    yield serve
    for listener in servers:
        listener.close()


def test_certificate_over_a_real_handshake_without_verification(tls_server):
    port = tls_server(LEAF, LEAF_KEY)
    result = caddy.certificate("127.0.0.1", port, "localhost", 5.0, now=NOW)
    assert result["handshake"] and result["error"] is None and result["verified"] is None
    assert result["subject"] == "CN=localhost,O=aiwfe.rollback" and result["days_left"] == 3501
    assert result["protocol"].startswith("TLS") and not result["changed"]


def test_certificate_verified_against_a_ca_file(tls_server, tmp_path):
    (tmp_path / "ca.pem").write_text(SELF_SIGNED)
    port = tls_server(SELF_SIGNED, SELF_SIGNED_KEY)
    result = caddy.certificate("127.0.0.1", port, "localhost", 5.0, str(tmp_path / "ca.pem"), now=NOW)
    assert result["handshake"] and result["verified"] is True and result["subject"] == "CN=localhost"


def test_certificate_not_verified_is_reported_not_raised(tls_server, tmp_path):
    (tmp_path / "ca.pem").write_text(SELF_SIGNED)
    port = tls_server(LEAF, LEAF_KEY)
    result = caddy.certificate("127.0.0.1", port, "localhost", 5.0, str(tmp_path / "ca.pem"), now=NOW)
    assert not result["handshake"] and result["verified"] is False and "not verified" in result["error"]


def test_no_tls_server_is_a_failed_handshake_not_an_exception():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    result = caddy.certificate("127.0.0.1", port, None, 2.0)
    assert not result["handshake"] and f"127.0.0.1:{port}" in result["error"] and result["server_name"] == "127.0.0.1"
