"""Start and stop the emulator: a moto server over TLS on a free loopback port, one process per rehearsal."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from datalake_config.cli import DEFAULT_TARGET_ROLE
from lakeops.errors import LakeopsError

STARTUP_TIMEOUT_S = 60
OPERATOR_USER = "lakeops-operator"


class Emulator:
    """A context manager: `with Emulator(workdir, account) as emu:` starts it; leaving stops it, always.

    Glue job runs started in it execute with `glue_python` (the Glue runtime, which brings pyspark; by
    default the server's `LAKEOPS_GLUE_PYTHON` or its own Python) and keep their files under `workdir/glue`;
    `glue_minute_s` is how long a minute of a job's Timeout lasts (60; tests make timeouts fire sooner).
    `deliver_events` turns on the trigger chain (the server's `--deliver-events`): S3 and Step Functions events
    reach EventBridge rules, their state machine targets start executions, and state machines execute.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        default_account: str,
        region: str,
        glue_python: str | None = None,
        glue_minute_s: float = 60.0,
        deliver_events: bool = False,
    ) -> None:
        self.workdir = workdir.resolve()
        self.default_account = default_account
        self.region = region
        self.glue_python = glue_python
        self.glue_minute_s = glue_minute_s
        self.deliver_events = deliver_events
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.cert = self.workdir / "emulator-cert.pem"
        self.key = self.workdir / "emulator-key.pem"
        self.log = self.workdir / "emulator.log"
        self._previous_sigterm: object = None
        self.access_key = ""
        self.secret_key = ""

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        _write_self_signed_cert(self.cert, self.key)
        self.port = _free_port()
        # The switch is this object's: an inherited LAKEOPS_DELIVER_EVENTS must not turn it on behind its back.
        env = {k: v for k, v in os.environ.items() if k not in ("MOTO_ACCOUNT_ID", "LAKEOPS_DELIVER_EVENTS")}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lakeops.emulator.server",
                    "--port",
                    str(self.port),
                    "--cert",
                    str(self.cert),
                    "--key",
                    str(self.key),
                    "--glue-workdir",
                    str(self.glue_workdir),
                    "--glue-minute-seconds",
                    str(self.glue_minute_s),
                    *(["--glue-python", self.glue_python] if self.glue_python else []),
                    *(["--deliver-events"] if self.deliver_events else []),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it by PID
            )
        # A SIGTERM to the rehearsal must still stop the emulator: turn it into an exception.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        self._wait_until_ready()
        self._provision_operator()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)  # type: ignore[arg-type]
            self._previous_sigterm = None

    @property
    def glue_workdir(self) -> Path:
        """Where Glue job runs keep their scripts, logs and bookmarks."""
        return self.workdir / "glue"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    # --- what clients need ---------------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        # `localhost`, not 127.0.0.1: moto routes virtual-host style S3 requests for localhost names.
        return f"https://localhost:{self.port}"

    def client_env(self) -> dict[str, str]:
        """Environment for boto3 and the CDK CLI (Node) to reach the emulator and trust its certificate."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_CA_BUNDLE": str(self.cert),
            "NODE_EXTRA_CA_CERTS": str(self.cert),
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def account_clients(self, account: str, session_name: str, role: str = DEFAULT_TARGET_ROLE) -> Callable[[str], Any]:
        """A boto3 client factory acting in `account` through its `role`, assumed by the operator (as a deployment
        or a test acts in a target account)."""
        import boto3

        operator = boto3.Session(aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)
        sts = operator.client("sts", region_name=self.region, endpoint_url=self.endpoint_url, verify=str(self.cert))
        credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{role}", RoleSessionName=session_name)[
            "Credentials"
        ]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )

        def client(service: str) -> Any:
            return session.client(
                service, region_name=self.region, endpoint_url=self.endpoint_url, verify=str(self.cert)
            )

        return client

    def _provision_operator(self) -> None:
        """Credentials that belong to the deployment account, as an operator's would.

        moto maps an access key to the account it was created in; every other account is reached the
        way the real tools reach it: STS AssumeRole (the CDK CLI's bootstrap roles, lakeops' target role).
        """
        import boto3

        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="emulator-setup",
            aws_secret_access_key="emulator-setup",  # noqa: S106 (moto accepts any key; not a secret)
            verify=str(self.cert),
        )

        def in_deployment_account(request: object, **_: object) -> None:
            request.headers["x-moto-account-id"] = self.default_account  # type: ignore[attr-defined]

        iam.meta.events.register("before-send.iam.*", in_deployment_account)
        iam.create_user(UserName=OPERATOR_USER)
        key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]

    def reset(self) -> None:
        self._request("POST", "/moto-api/reset")

    def event_deliveries(self) -> list[dict[str, object]]:
        """What EventBridge did with each event for a state machine target, in order: the rule, the target,
        the input, and `outcome` started (with `execution`), denied or failed (with `reason`). Empty unless
        `deliver_events` is on (`lakeops.emulator.events`)."""
        from lakeops.emulator.events import DELIVERIES_PATH

        answer = json.loads(self._request("GET", DELIVERIES_PATH))
        found: list[dict[str, object]] = answer["deliveries"]
        return found

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise LakeopsError(f"the emulator exited during start-up:\n{self._log_tail()}")
            try:
                self._request("GET", "/moto-api/data.json")
                return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise LakeopsError(f"the emulator did not answer within {STARTUP_TIMEOUT_S}s:\n{self._log_tail()}")

    def _request(self, method: str, path: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.cert))
        request = urllib.request.Request(f"{self.endpoint_url}{path}", method=method)  # noqa: S310 (our own https URL)
        with urllib.request.urlopen(request, context=context, timeout=5) as response:  # noqa: S310
            body: bytes = response.read()
            return body

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no emulator log)"


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_self_signed_cert(cert_path: Path, key_path: Path) -> None:
    """A throwaway certificate for `localhost`, made per run: nothing long-lived is written or committed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
