"""The answers `attrib serve` documents in its OpenAPI schema: every operation has a JSON schema for its 200
and error answers, and real answers (the CLI's JSON objects, evidence included) validate against the schema
the server publishes; a key renamed on either side fails."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="attrib serve needs the serve extra: pip install 'attrib[serve]'")
jsonschema = pytest.importorskip("jsonschema", reason="the schema checks need jsonschema (the dev extra)")

from conftest import make_images  # noqa: E402
from evidence_files import A1111, png_with_text  # noqa: E402
from test_serve import TOKEN, client, own_gallery, served, upload  # noqa: E402,F401 -- fixtures

AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOCUMENTED = {  # the answers each operation documents besides 200
    ("get", "/v1/health"): {401, 403},
    ("get", "/v1/generators"): {400, 401, 403, 503},
    ("post", "/v1/identify"): {400, 401, 403, 409, 413, 422, 503},
    ("post", "/v1/verify"): {400, 401, 403, 404, 409, 413, 422, 503},
    ("post", "/v1/enroll"): {400, 401, 403, 413, 422, 503, 507},
    ("delete", "/v1/generators/{name}"): {400, 401, 403, 404, 422, 503, 507},
}


def answer_schema(openapi: dict, method: str, path: str, status: int) -> dict:
    """The JSON schema of one documented answer, with the components its references point into."""
    content = openapi["paths"][path][method]["responses"][str(status)]["content"]["application/json"]
    return {**content["schema"], "components": openapi["components"]}


def problems(openapi: dict, method: str, path: str, status: int, body) -> list[str]:
    """Why ``body`` does not fit the schema published for the operation's ``status`` answer."""
    validator = jsonschema.Draft202012Validator(answer_schema(openapi, method, path, status))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]


def component(openapi: dict, schema: dict) -> dict:
    """The model a ``$ref`` schema names."""
    return openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]


def keys_renamed(value, path=()):
    """Each copy of ``value`` with one key of its dicts renamed (outside the open-ended ones), and where."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key not in ("detail", "per_extractor") or not isinstance(inner, dict):
                yield (*path, key), {(f"{key}_renamed" if k == key else k): v for k, v in value.items()}
            for where, changed in keys_renamed(inner, (*path, key)):
                yield where, {**value, key: changed}
    elif isinstance(value, list) and value:
        for where, changed in keys_renamed(value[0], (*path, 0)):
            yield where, [changed, *value[1:]]


@pytest.fixture(scope="module")
def openapi(served):
    with client(served[0]) as http:
        return http.get("/openapi.json").json()


@pytest.fixture
def conforms(openapi):
    def check(method: str, path: str, answer, status: int) -> dict:
        assert answer.status_code == status, answer.text
        assert problems(openapi, method, path, status, answer.json()) == []
        return answer.json()

    return check


def test_every_operation_documents_each_answer_with_a_schema(openapi):
    operations = {(method, path): operation for path, item in openapi["paths"].items()
                  for method, operation in item.items()}
    assert set(operations) == set(DOCUMENTED)
    for (method, path), operation in operations.items():
        statuses = {int(s) for s in operation["responses"]}
        assert statuses == {200} | DOCUMENTED[method, path], (method, path)
        for status in statuses:
            schema = answer_schema(openapi, method, path, status)
            named = [component(openapi, s) for s in schema.get("anyOf", [schema])]
            assert all(n.get("additionalProperties") is False and n["required"] for n in named), (method, path)
            if status >= 400:
                assert all("detail" in n["required"] for n in named), (method, path, status)
            assert all(p.get("description") for n in named for p in n["properties"].values()), (method, path, status)


def test_identify_and_verify_answers_fit_their_schemas(served, tmp_path, conforms, openapi):
    gallery, queries = served
    said = tmp_path / "said.png"  # a file that names its generator in its generation parameters
    said.write_bytes(png_with_text(parameters=A1111))
    with client(gallery) as http:
        known = conforms("post", "/v1/identify", http.post("/v1/identify", files=upload(*queries, said)), 200)
        decided = [r["decision_level"] for r in known["results"]]
        assert decided[:3] == ["generator"] * 3 and decided[3] == "unknown"
        assert known["results"][4]["evidence"] and known["results"][4]["provenance"]["agreement"]["generator"]
        assert all(c["exemplars"] for r in known["results"] for c in r["explain"]["candidates"])
        for where, renamed in keys_renamed(known):
            assert problems(openapi, "post", "/v1/identify", 200, renamed), f"a renamed {where} still fits"
        verified = conforms("post", "/v1/verify", http.post("/v1/verify", files=upload(*queries, said),
                                                            data={"generator": "red"}), 200)
        assert [r["match"] for r in verified["results"]] == [True, True, False, False, False]
        assert verified["results"][4]["evidence"]
        conforms("post", "/v1/verify", http.post("/v1/verify", files=upload(queries[0]),
                                                 data={"generator": "purple"}), 404)


def test_unreadable_images_and_refused_requests_fit_their_schemas(served, conforms):
    gallery, queries = served
    bad = [*upload(queries[0]), ("files", ("bad.png", b"this is not a picture", "image/png"))]
    with client(gallery) as http:
        identified = conforms("post", "/v1/identify", http.post("/v1/identify", files=bad), 422)
        assert identified["results"][1]["error"] == identified["detail"]
        verified = conforms("post", "/v1/verify", http.post("/v1/verify", files=bad, data={"generator": "red"}), 422)
        assert verified["results"][1]["error"] == verified["detail"]
        invalid = conforms("post", "/v1/identify", http.post("/v1/identify", data={"top_k": "0"}), 422)
        assert {tuple(p["loc"]) for p in invalid["detail"]} == {("body", "files"), ("body", "top_k")}
        conforms("post", "/v1/enroll", http.post("/v1/enroll", files=bad, data={"generator": "x"}), 403)
    with client(gallery, max_image_pixels=100) as http:
        conforms("post", "/v1/identify", http.post("/v1/identify", files=upload(queries[0])), 413)
    with client(gallery, token=TOKEN, auth_reads=True) as http:
        conforms("get", "/v1/health", http.get("/v1/health"), 401)
        conforms("get", "/v1/generators", http.get("/v1/generators", headers={"Authorization": "Bearer no"}), 401)


def test_writes_lists_and_health_fit_their_schemas(own_gallery, tmp_path, conforms):
    gray = make_images(tmp_path / "gray", "gray", 6, seed=11)
    with client(own_gallery, token=TOKEN) as http:
        enrolled = conforms("post", "/v1/enroll", http.post("/v1/enroll", files=upload(*gray), headers=AUTH,
                                                            data={"generator": "gray", "family": "test"}), 200)
        assert len(enrolled["added"]) == 6
        again = [*upload(gray[0]), ("files", ("bad.png", b"not a picture", "image/png"))]
        failed = conforms("post", "/v1/enroll", http.post("/v1/enroll", files=again, headers=AUTH,
                                                          data={"generator": "gray"}), 422)
        assert failed["skipped"] and failed["failed"][0]["error"] == failed["detail"]
        listed = conforms("get", "/v1/generators", http.get("/v1/generators"), 200)
        assert {g["name"]: g["family"] for g in listed["generators"]}["gray"] == "test"
        assert conforms("get", "/v1/health", http.get("/v1/health"), 200)["status"] == "ok"
        removed = conforms("delete", "/v1/generators/{name}", http.delete("/v1/generators/gray", headers=AUTH), 200)
        assert removed == {"removed": "gray", "samples": 6}
        conforms("delete", "/v1/generators/{name}", http.delete("/v1/generators/gray", headers=AUTH), 404)
        conforms("delete", "/v1/generators/{name}", http.delete("/v1/generators/red"), 401)
    with client(tmp_path / "empty", extractor="colormean") as http:
        conforms("post", "/v1/identify", http.post("/v1/identify", files=upload(gray[0])), 409)


def test_fuzzed_answers_fit_the_published_schema(own_gallery):
    import schemathesis
    from fastapi.testclient import TestClient
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

    from attrib.serve import ServeSettings, create_app

    app = create_app(own_gallery, ServeSettings(token=TOKEN))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    with TestClient(app):
        for operation in schema.get_all_operations():
            @given(case=operation.ok().as_strategy())
            @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            def fuzz(case):
                case.call_and_validate(headers=AUTH, checks=checks)

            fuzz()
