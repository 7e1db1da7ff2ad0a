"""Talks to a Workload API with the official Python client (py-spiffe) and
prints what it got as JSON, for the interop and attestation specs.

  py_spiffe_fetch.py fetch SOCKET AUDIENCE   identity, chain, bundles, JWT
  py_spiffe_fetch.py stream SOCKET COUNT     leaf serials of COUNT streamed updates
  py_spiffe_fetch.py whoami SOCKET           the default SPIFFE ID, or the error
"""
import base64
import json
import sys
import threading

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from spiffe import JwtSvid, TrustDomain, WorkloadApiClient


def b64(data):
    return base64.b64encode(data).decode()


def client(socket):
    return WorkloadApiClient(socket_path="unix://" + socket, default_timeout=10)


def fetch(socket, audience):
    out = {}
    with client(socket) as api:
        svid = api.fetch_x509_svid()
        out["spiffe_id"] = str(svid.spiffe_id)
        out["chain"] = [b64(cert.public_bytes(Encoding.DER)) for cert in svid.cert_chain]
        td = TrustDomain(svid.spiffe_id.trust_domain.name)
        bundle = api.fetch_x509_bundles().get_bundle_for_trust_domain(td)
        out["x509_roots"] = [b64(c.public_bytes(Encoding.DER)) for c in bundle.x509_authorities]
        jwt = api.fetch_jwt_svid(audience={audience})
        out["jwt_token"] = jwt.token
        jwt_bundle = api.fetch_jwt_bundles().get_bundle_for_trust_domain(td)
        verified = JwtSvid.parse_and_validate(jwt.token, jwt_bundle, {audience})
        out["jwt_verified_subject"] = str(verified.spiffe_id)
        out["jwt_keys"] = {
            kid: b64(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
            for kid, key in jwt_bundle.jwt_authorities.items()
        }
        out["validated"] = str(api.validate_jwt_svid(jwt.token, audience).spiffe_id)
    return out


def stream(socket, count):
    serials, errors, done = [], [], threading.Event()

    def on_success(context):
        serials.append(str(context.default_svid.leaf.serial_number))
        if len(serials) >= count:
            done.set()

    def on_error(error):
        errors.append(str(error))

    with client(socket) as api:
        handle = api.stream_x509_contexts(on_success=on_success, on_error=on_error, retry_connect=False)
        done.wait(timeout=15)
        handle.cancel()
    return {"serials": serials, "errors": errors}


def whoami(socket):
    try:
        with client(socket) as api:
            return {"spiffe_id": str(api.fetch_x509_svid().spiffe_id)}
    except Exception as error:  # the spec asserts on the error text
        return {"error": type(error).__name__, "message": str(error)}


if __name__ == "__main__":
    mode, socket = sys.argv[1], sys.argv[2]
    if mode == "fetch":
        result = fetch(socket, sys.argv[3])
    elif mode == "stream":
        result = stream(socket, int(sys.argv[3]))
    else:
        result = whoami(socket)
    print(json.dumps(result))
