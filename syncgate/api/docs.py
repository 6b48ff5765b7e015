"""/docs (Swagger UI) and /redoc from assets installed with the service: no CDN, so the API
explorer works offline. The assets (and their licences) come from `fastapi-standalone-docs`."""

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/static"
ASSETS_DIR = Path(str(files("fastapi_standalone_docs") / "static"))

router = APIRouter(include_in_schema=False)


def _openapi_url(request: Request) -> str:
    return str(request.scope.get("root_path", "")) + (request.app.openapi_url or "")


def _asset(request: Request, path: str) -> str:
    return f"{request.scope.get('root_path', '')}{ASSETS_URL}/{path}"


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} API",
        swagger_js_url=_asset(request, "swagger/swagger-ui-bundle.js"),
        swagger_css_url=_asset(request, "swagger/swagger-ui.css"),
        swagger_favicon_url=_asset(request, "fastapi/favicon.png"),
        # The public validator would be called with our schema: stay on this host.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} API",
        redoc_js_url=_asset(request, "redoc/redoc.standalone.js"),
        redoc_favicon_url=_asset(request, "fastapi/favicon.png"),
        with_google_fonts=False,
    )


def install_docs(app: FastAPI) -> None:
    """Serve the API explorer and its assets; the app must be created with docs_url=None."""
    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
