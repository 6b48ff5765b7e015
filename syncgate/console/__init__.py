"""The operator console under /console: server-rendered pages over the admin API's services."""

from fastapi import APIRouter

from syncgate.console import health, home, segments, settings, signin

router = APIRouter()
for module in (signin, home, segments, health, settings):
    router.include_router(module.router)
router.include_router(signin.fallback)  # last: only paths no other console route serves

__all__ = ["router"]
