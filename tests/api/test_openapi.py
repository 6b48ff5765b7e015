"""The OpenAPI document explains every operation (summary, description, request and response
examples), and /docs and /redoc load only assets this service serves itself (offline)."""

import re
from typing import Any

import httpx
from fastapi.routing import APIRoute

from syncgate.config import Settings
from syncgate.main import create_app


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def _has_example(document: dict[str, Any], media: dict[str, Any]) -> bool:
    if "example" in media or media.get("examples"):
        return True
    schema = _resolve(document, media.get("schema", {}))
    return "example" in schema or bool(schema.get("examples"))


def test_every_operation_has_a_summary_a_description_and_examples() -> None:
    app = create_app(Settings(_env_file=None), run_worker=False)
    document = app.openapi()
    # FastAPI makes a summary up from the function's name: only an explicit one explains.
    missing = [
        f"{route.methods} {route.path}: explicit summary"
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema and not route.summary
    ]
    operations = 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            operations += 1
            name = f"{method.upper()} {path}"
            if not operation.get("description"):
                missing.append(f"{name}: description")
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                if not _has_example(document, media):
                    missing.append(f"{name}: request {media_type} example")
            answered = [code for code in operation["responses"] if code.startswith("2")]
            assert answered, name
            for code in answered:
                for media_type, media in operation["responses"][code].get("content", {}).items():
                    if not _has_example(document, media):
                        missing.append(f"{name}: {code} {media_type} example")
    assert operations >= 32
    assert not missing, "\n".join(missing)


def test_the_webhook_bodies_are_documented() -> None:
    paths = create_app(Settings(_env_file=None), run_worker=False).openapi()["paths"]
    hubspot = paths["/webhooks/hubspot"]["post"]["requestBody"]["content"]["application/json"]
    assert hubspot["schema"]["type"] == "array" and hubspot["example"][0]["subscriptionType"]
    salesforce = paths["/webhooks/salesforce"]["post"]
    assert "<notifications" in salesforce["requestBody"]["content"]["text/xml"]["example"]
    assert "<Ack>true</Ack>" in salesforce["responses"]["200"]["content"]["text/xml"]["example"]


async def test_the_api_explorers_load_only_local_assets(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        response = await client.get(page)
        assert response.status_code == 200
        html = response.text
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        urls += re.findall(r"""(?:Url|url)\s*:\s*["']([^"']+)["']""", html)
        assert urls, html
        assert "://" not in html.replace("http://www.w3.org", ""), html
        for url in urls:
            assert url.startswith("/"), url
            assert (await client.get(url)).status_code == 200, url
