"""The server's ASGI app, assembled by `create_app` from its route modules (`export_api_routes.py`,
and FHIR Bulk Data's `fhir_routes.py`) and the fault injection it installs (`faults.py`);
importing this module starts nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from export_server.bodies import Bodies
from export_server.export_api_routes import EXPORT_API_ERRORS, api_doc_routes, export_api_routes
from export_server.faults import FaultConfig, FaultInjector, FaultMiddleware
from export_server.fhir_access import SmartAuthority
from export_server.fhir_config import FhirConfig
from export_server.fhir_outcome import http_error_response, is_fhir_path
from export_server.fhir_routes import FHIR_FAULTS, FhirApi
from export_server.pool import GeneratorPool


@dataclass(frozen=True)
class ServerConfig:
    """Everything that changes how the server answers."""

    faults: FaultConfig = field(default_factory=FaultConfig)
    ranges: bool = True
    fhir: FhirConfig = field(default_factory=FhirConfig)


async def _http_error(request: Request, exc: Exception) -> Response:
    """404, 405 and the like, with a JSON `detail` (FastAPI's answer, not Starlette's text);
    under /fhir an OperationOutcome, as every FHIR error."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if is_fhir_path(path):
        return http_error_response(exc.status_code, request.method, path, dict(exc.headers or {}))
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)


def create_app(
    config: ServerConfig | None = None, bodies: Bodies | None = None,
    smart: SmartAuthority | None = None,
) -> Starlette:  # fmt: skip
    """The export server's ASGI app: the CSV export API, and FHIR Bulk Data under /fhir.

    `bodies` serves the CSV bodies (default: one generator process, no cache). The app's lifespan
    starts and stops it, so run the app with lifespan events (uvicorn does). `smart`, when given,
    guards the FHIR routes (SMART Backend Services).
    """
    config = config or ServerConfig()
    source = bodies or Bodies(GeneratorPool(1))
    injector = FaultInjector(config.faults)
    fhir = FhirApi(config.fhir, source, config.faults, smart)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await source.start()
        try:
            yield
        finally:
            await fhir.close()
            await source.close()

    routes: list[BaseRoute] = [
        *export_api_routes(source, ranges=config.ranges),
        *api_doc_routes(),
        *fhir.routes(),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(FaultMiddleware, injector=injector, routed=[FHIR_FAULTS])],
        exception_handlers={HTTPException: _http_error, **EXPORT_API_ERRORS},
        lifespan=lifespan,
    )
