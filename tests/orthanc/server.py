"""Starting and stopping a real Orthanc DICOMweb server on 127.0.0.1 (tests and benches).

Orthanc 1.10 has no bind-address option: it listens on ``0.0.0.0:HttpPort``;
``RemoteAccessAllowed: false`` makes it refuse every peer but loopback. Storage
is a temporary directory; the process is stopped by its PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ORTHANC = "/usr/sbin/Orthanc"
PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
INSTALL_HINT = "apt-get install -y orthanc orthanc-dicomweb (or `make apt`, which `make test` runs)"
USER = "cohortdb"
PASSWORD = "test-secret"  # a throwaway password of a throwaway server, never a real credential
TOKEN = "test-bearer-token"  # likewise: checked by a Lua filter in ``auth="token"`` mode (see `start`)
GOOGLE_ROOT = "/v1/projects/p/locations/l/datasets/d/dicomStores/s/dicomWeb"
"""Google Cloud Healthcare's DICOMweb path form, served by Orthanc in the token mode."""
_TOKEN_FILTER = """
function IncomingHttpRequestFilter(method, uri, ip, username, httpHeaders)
  return httpHeaders['authorization'] == 'Bearer %s'
end
"""


def missing() -> str | None:
    """Why Orthanc cannot be started here (None when it can)."""
    for path in (ORTHANC, PLUGIN):
        if not os.path.exists(path):
            return f"{path} is missing: install it with {INSTALL_HINT}"
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Orthanc:
    """A running Orthanc: its base URL, DICOMweb root, credentials and process."""

    work: Path
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    root: str = "/dicom-web"
    token: bool = False
    """Authentication by bearer token (a Lua filter) instead of HTTP Basic."""
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}{self.root}"

    @property
    def auth(self) -> tuple[str, str] | None:
        return None if self.token else (USER, PASSWORD)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"} if self.token else {}

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def upload(self, data: bytes) -> dict[str, str] | None:
        """``POST /instances``: Orthanc's reply, None when it refuses the file (400/404)."""
        response = requests.post(f"{self.url}/instances", data=data, auth=self.auth, headers=self.headers,
                                 timeout=60)
        if response.status_code in (400, 404):
            return None
        response.raise_for_status()
        reply: dict[str, str] = response.json()
        return reply

    def delete_study(self, study_uid: str) -> None:
        """Delete a study by its StudyInstanceUID (every Orthanc study of that UID)."""
        found = requests.post(f"{self.url}/tools/lookup", data=study_uid, auth=self.auth, headers=self.headers,
                              timeout=30)
        found.raise_for_status()
        for hit in found.json():
            if hit["Type"] == "Study":
                requests.delete(f"{self.url}/studies/{hit['ID']}", auth=self.auth, headers=self.headers,
                                timeout=60).raise_for_status()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; waits for the process."""
        if self.stopped:
            return
        self.stopped = True
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL now (a server dying mid-run)."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait()
        self.stopped = True


def start(work: Path, *, token: bool = False) -> Orthanc:
    """Start Orthanc with storage under ``work``, DICOMweb with full metadata, no DICOM port;
    wait until it answers.

    Authentication: HTTP Basic (``USER``/``PASSWORD``), DICOMweb at ``/dicom-web``; with
    ``token``, a bearer token (``TOKEN``, checked by a Lua ``IncomingHttpRequestFilter``: Orthanc
    1.10 has no token authentication of its own; a wrong one gets 403) and DICOMweb at Google
    Cloud Healthcare's path form (:data:`GOOGLE_ROOT`).

    Raises:
        RuntimeError: Orthanc is missing, exits, or does not answer within 30 s.
    """
    if (why := missing()) is not None:
        raise RuntimeError(why)
    work = work.resolve()  # (Orthanc reads relative paths against the configuration file's directory)
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, object] = {
        "Name": "cohortdb-test", "StorageDirectory": str(work / "db"), "IndexDirectory": str(work / "db"),
        "HttpPort": port, "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD}, "DicomServerEnabled": False, "OrthancExplorerEnabled": False,
        "SaveJobs": False, "StableAge": 1, "Plugins": [PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Host": f"127.0.0.1:{port}",
                     "StudiesMetadata": "Full", "SeriesMetadata": "Full"},
    }
    root = GOOGLE_ROOT if token else "/dicom-web"
    if token:
        (work / "token.lua").write_text(_TOKEN_FILTER % TOKEN)
        config.update(AuthenticationEnabled=False, RegisteredUsers={}, LuaScripts=[str(work / "token.lua")])
        config["DicomWeb"]["Root"] = root + "/"  # type: ignore[index]
    (work / "orthanc.json").write_text(json.dumps(config))
    log_path = work / "orthanc.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([ORTHANC, str(work / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    server = Orthanc(work, port, process, log_path, root=root, token=token)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {process.returncode}: {server.log()}")
        try:
            if requests.get(f"{server.url}/system", auth=server.auth, headers=server.headers, timeout=1).ok:
                return server
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"Orthanc did not answer within 30 s: {server.log()}")
        time.sleep(0.05)
