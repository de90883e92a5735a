"""A live offpay-issuer on loopback ports for the binding tests, and its admin API."""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Admin:
    """The issuer's admin API, as a back office would call it."""

    def __init__(self, url, token):
        self.url, self.token = url, token

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("authorization", "Bearer " + self.token)
        if data is not None:
            req.add_header("content-type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def instrument(self, currency, minor):
        made = json.loads(self.call("POST", "/admin/v1/instruments", {"currency": currency}))
        iid = made["instrument"]["id"]
        self.call("POST", f"/admin/v1/instruments/{iid}/funding",
                  {"amount_minor": minor, "reference": "test-funding"})
        return iid, made["credential"]

    def instrument_state(self, iid):
        return json.loads(self.call("GET", f"/admin/v1/instruments/{iid}"))

    def certify(self, merchant_id, key, name):
        mid = merchant_id.ljust(8).encode().hex()
        return self.call("POST", "/admin/v1/merchants", {
            "merchant_id": mid, "merchant_key": bytes(key).hex(),
            "display_name": name, "days": 30})

    def credits(self):
        return json.loads(self.call("GET", "/admin/v1/credits"))


@pytest.fixture
def issuer(tmp_path):
    """Starts target/debug/offpay-issuer (built by scripts/bindings.sh) and stops it after."""
    binary = os.environ.get("OFFPAY_ISSUER_BIN", "target/debug/offpay-issuer")
    public, admin = _free_port(), _free_port()
    data = tmp_path / "issuer"
    log = open(tmp_path / "issuer.log", "wb")
    proc = subprocess.Popen(
        [binary, "serve", "--data", str(data), "--listen", f"127.0.0.1:{public}",
         "--admin-listen", f"127.0.0.1:{admin}"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{public}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except (urllib.error.URLError, ConnectionError):
                if proc.poll() is not None:
                    raise RuntimeError((tmp_path / "issuer.log").read_text())
                time.sleep(0.05)
        token = (data / "admin.token").read_text().strip()
        yield url, Admin(f"http://127.0.0.1:{admin}", token)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
