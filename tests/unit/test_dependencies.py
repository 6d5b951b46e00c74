"""What the environment must not hold, and the chart libraries agreeing on a Vega-Lite version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

import pytest


@pytest.mark.parametrize("name", ["numpy", "pandas"])
def test_numpy_and_pandas_are_not_installed(name: str) -> None:
    """The report builds its charts from plain lists of dicts; neither may creep in."""
    with pytest.raises(PackageNotFoundError):
        distribution(name)


@pytest.mark.parametrize("name", ["fastapi", "pydantic"])
def test_fastapi_and_pydantic_are_not_installed(name: str) -> None:
    """The server's front is plain Starlette: FastAPI and pydantic cost every start of the bundled
    server half a second of imports (docs/server.md, "Start-up")."""
    with pytest.raises(PackageNotFoundError):
        distribution(name)


def test_the_renderer_renders_the_vega_lite_version_the_specifications_use() -> None:
    import altair as alt
    import vl_convert

    from export_tally.render.report.charts import vega_lite_version

    spec = alt.Chart(alt.Data(values=[{"x": 1}])).mark_point().encode(x="x:Q").to_dict()  # type: ignore[no-untyped-call]
    version = vega_lite_version(spec)
    assert alt.SCHEMA_VERSION.startswith(f"v{version}.")
    assert version in vl_convert.get_vegalite_versions()


def test_a_specification_without_a_version_is_refused() -> None:
    from export_tally.render.report.charts import vega_lite_version

    with pytest.raises(ValueError, match=r"\$schema"):
        vega_lite_version({"mark": "point"})
