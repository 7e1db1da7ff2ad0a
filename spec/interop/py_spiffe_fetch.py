"""Fetches from a Workload API with the official Python client (py-spiffe) and
prints what it got as JSON, for spec/interop/py_spiffe_spec.rb."""
import base64
import json
import sys

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from spiffe import JwtSvid, TrustDomain, WorkloadApiClient


def b64(data):
    return base64.b64encode(data).decode()


def main(socket, audience):
    out = {}
    with WorkloadApiClient(socket_path="unix://" + socket, default_timeout=10) as client:
        svid = client.fetch_x509_svid()
        out["spiffe_id"] = str(svid.spiffe_id)
        out["chain"] = [b64(cert.public_bytes(Encoding.DER)) for cert in svid.cert_chain]
        out["hint"] = svid.hint if hasattr(svid, "hint") else None
        bundles = client.fetch_x509_bundles()
        td = TrustDomain(svid.spiffe_id.trust_domain.name)
        bundle = bundles.get_bundle_for_trust_domain(td)
        out["x509_roots"] = [b64(c.public_bytes(Encoding.DER)) for c in bundle.x509_authorities]
        jwt = client.fetch_jwt_svid(audience={audience})
        out["jwt_token"] = jwt.token
        jwt_bundles = client.fetch_jwt_bundles()
        jwt_bundle = jwt_bundles.get_bundle_for_trust_domain(td)
        verified = JwtSvid.parse_and_validate(jwt.token, jwt_bundle, {audience})
        out["jwt_verified_subject"] = str(verified.spiffe_id)
        out["jwt_keys"] = {
            kid: b64(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))
            for kid, key in jwt_bundle.jwt_authorities.items()
        }
        out["validated"] = str(client.validate_jwt_svid(jwt.token, audience).spiffe_id)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
