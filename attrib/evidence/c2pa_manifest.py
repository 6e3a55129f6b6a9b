"""C2PA manifest stores (Content Credentials) through ``c2pa-python``, imported only when the
file's bytes show a store (:mod:`.containers`). Remote manifests and OCSP are never fetched.

``verified``: ``valid`` when the signature validates and the signer chains to the trust list
given; ``untrusted`` when the signature validates but no trust list was given or the signer is
not on it; ``invalid`` when validation fails (``detail["failures"]`` has the C2PA status codes)
or the store cannot be parsed."""

from __future__ import annotations

import functools
import io
import json
from typing import TYPE_CHECKING, Any

from ..errors import EvidenceError
from .containers import manifest_store_format
from .item import Evidence
from .names import GeneratorNames
from .item import Verified
from .source import C2PA_TRUST_OPTION, EvidenceSource

if TYPE_CHECKING:
    import c2pa

KIND = "c2pa"
MAX_INGREDIENTS = 10
UNTRUSTED_CODE = "signingCredential.untrusted"
_STATES: dict[str, Verified] = {"Trusted": "valid", "Valid": "untrusted"}


@functools.lru_cache(maxsize=4)
def _context(trust_pem: str | None) -> c2pa.Context:
    import c2pa

    settings: dict[str, Any] = {"verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust_pem is not None:
        settings["trust"] = {"trust_anchors": trust_pem}
    try:
        return c2pa.Context.from_dict(settings)
    except c2pa.C2paError as exc:
        raise EvidenceError(f"the C2PA trust list cannot be used: {exc}") from None


def _object(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _agent_name(agent: Any) -> str | None:
    if isinstance(agent, dict):
        agent = agent.get("name")
    return str(agent) if agent else None


def manifest_actions(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The active manifest's actions: action, softwareAgent (its name) and digitalSourceType."""
    actions = []
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict) or not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        data = _object(assertion.get("data"))
        for action in data.get("actions") or []:
            if isinstance(action, dict):
                actions.append({"action": action.get("action"), "softwareAgent": _agent_name(action.get("softwareAgent")),
                                "digitalSourceType": action.get("digitalSourceType")})
    return actions


def _claim_generator(manifest: dict[str, Any]) -> str:
    info = manifest.get("claim_generator_info")
    if isinstance(info, list) and info:
        parts = [" ".join(str(i.get(k)) for k in ("name", "version") if isinstance(i, dict) and i.get(k))
                 for i in info]
        return "; ".join(p for p in parts if p)
    return str(manifest.get("claim_generator") or "")


def _failures(store: dict[str, Any]) -> list[str]:
    results = store.get("validation_results")
    active = results.get("activeManifest") if isinstance(results, dict) else None
    if isinstance(active, dict) and isinstance(active.get("failure"), list):
        codes = [f.get("code") for f in active["failure"] if isinstance(f, dict)]
    else:
        codes = [s.get("code") for s in store.get("validation_status") or [] if isinstance(s, dict)]
    return [str(c) for c in codes if c and c != UNTRUSTED_CODE]


def _claim_text(generator_text: str, actions: list[dict[str, Any]], signer: str | None, issuer: str | None) -> str:
    """``claim generator ChatGPT; c2pa.created by DALL·E (trainedAlgorithmicMedia); signed by X (Org)``."""
    parts = [f"claim generator {generator_text or '?'}"]
    for action in actions[:5]:
        source_type = str(action["digitalSourceType"] or "").rsplit("/", 1)[-1]
        parts.append(f"{action['action']} by {action['softwareAgent'] or '?'}" + (f" ({source_type})" if source_type else ""))
    if signer:
        parts.append(f"signed by {signer}" + (f" ({issuer})" if issuer and issuer != signer else ""))
    return "; ".join(parts)


def _trust_phrase(verified: str, trust_list: bool) -> str:
    if verified == "valid":
        return "signer on the trust list"
    if verified == "untrusted":
        return "signer not on the trust list" if trust_list else "signer not verified against a trust list"
    return "validation failed"


def manifest_evidence(store: dict[str, Any], trust_list: bool, names: GeneratorNames) -> Evidence:
    """One item for a parsed manifest store (the JSON of ``c2pa.Reader.json()``)."""
    manifests = _object(store.get("manifests"))
    active = store.get("active_manifest")
    manifest = (manifests.get(active) if isinstance(active, str) else None) or {}
    state = store.get("validation_state")
    verified: Verified = _STATES.get(state, "invalid") if isinstance(state, str) else "invalid"
    actions = manifest_actions(manifest)
    generator_text = _claim_generator(manifest)
    agents = [a["softwareAgent"] for a in actions if a["softwareAgent"]]
    rule = next(filter(None, (names.match(text, KIND) for text in (*agents, generator_text))), None)
    stated = [names.source_type(a["digitalSourceType"]) for a in actions if a["digitalSourceType"]]
    says = [ai for _, ai in filter(None, stated) if ai is not None]
    ai = True if True in says else (False if says else (True if rule else None))
    signature = _object(manifest.get("signature_info"))
    signer = signature.get("common_name") or signature.get("issuer")
    ingredients = [{k: i.get(k) for k in ("title", "relationship", "format")}
                   for i in (manifest.get("ingredients") or [])[:MAX_INGREDIENTS] if isinstance(i, dict)]
    claim = _claim_text(generator_text, actions, signer, signature.get("issuer"))
    detail = {
        "claim_generator": generator_text, "signer": signer, "issuer": signature.get("issuer"),
        "signed_at": signature.get("time"), "alg": signature.get("alg"), "actions": actions[:20],
        "ingredients": ingredients, "validation_state": state, "trust_list": trust_list,
        "trust": _trust_phrase(verified, trust_list), "failures": _failures(store) if verified == "invalid" else [],
        "title": manifest.get("title"),
    }
    return Evidence(kind=KIND, claim=claim, generator=rule.generator if rule else None,
                    label=rule.label if rule else None, ai_generated=ai, verified=verified, detail=detail)


class C2paReader:
    """C2PA manifest stores (Content Credentials), validated with c2pa-python (attrib[c2pa])."""

    name = "c2pa"

    def read(self, source: EvidenceSource) -> list[Evidence]:
        mime = manifest_store_format(source.data)
        if mime is None:
            return []
        try:
            import c2pa
        except ImportError:
            return [Evidence.failure(KIND, "the file carries a C2PA manifest store; install attrib[c2pa] "
                                           "(c2pa-python) to read and validate it")]
        trust_pem = source.options.get(C2PA_TRUST_OPTION)
        try:
            with c2pa.Reader(mime, io.BytesIO(source.data), context=_context(trust_pem)) as reader:
                store = json.loads(reader.json())
        except c2pa.C2paError as exc:
            return [Evidence(kind=KIND, verified="invalid", error=f"C2PA manifest store cannot be read: {exc}",
                             detail={"format": mime})]
        return [manifest_evidence(store, trust_pem is not None, source.names)]
